"""The disk cache: the key (`key.py`, a digest of every source file and template), the store
(`store.py`: atomic, signed, checked loads), its files (`files.py`) and signing (`signing.py`).
"""
