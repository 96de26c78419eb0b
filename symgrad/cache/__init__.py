"""The disk cache: the key (`key.py`, a digest of every source file and template), the store
(`store.py`: atomic, signed, checked loads), its files (`files.py`) and signing (`signing.py`).

The public internal entry point of the stage (for the tests, the CLI and the tools), each
name imported from its module on first use:

- the modules `store`, `signing` and `key` themselves, for a test that patches one where its
  code reads a name (a size limit, the atomic write, the signature check);
- the store: `DiskCache`, `CacheWarning` (a damaged entry, rebuilt), `entry_parts` (the
  files of an entry, as signed), `sha256_text`, `import_source` (a checked module loaded);
- signing: `sign_entry(parts)`, `user_key()`;
- the key: `key_parts(graph, transform, backend)`, its `COMPONENTS`,
  `toolchain_components()`, `installed_version(distribution)`.
"""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, modules=("store", "signing", "key"), names={
    "store": ("DiskCache", "CacheWarning", "entry_parts", "sha256_text", "import_source"),
    "signing": ("sign_entry", "user_key"),
    "key": ("key_parts", "COMPONENTS", "toolchain_components", "installed_version"),
})
