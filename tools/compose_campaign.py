"""Long runs of the composition campaign: random numpy programs through every symgrad
transform and composition, against torch.func (float64), float32 dtypes, memory and
input checks.

    PYTHONPATH=. python tools/compose_campaign.py --programs 200 --seed 0 [--checks grad,hvp]

Programs come from tests/compose_programs.py, checks from tests/compose_checks.py (the test
suite runs a fixed-seed slice of the same, tests/test_transforms_campaign.py). Each failure
prints the program's numpy source, the check's name and the error, and the run ends with a
count of programs, checks run and failures per check.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from compose_checks import (CHECKS, FLOAT32_CHECKS, SMALL_ONLY, Case,  # noqa: E402
                            run_check, run_float32)
from compose_programs import generate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checks", default=",".join(CHECKS))
    parser.add_argument("--float32", action="store_true", help="also the float32 checks")
    parser.add_argument("--verbose", action="store_true", help="print full tracebacks")
    args = parser.parse_args()
    names = args.checks.split(",")
    failures: dict[str, list] = collections.defaultdict(list)
    ran = 0
    start = time.time()
    for k in range(args.programs):
        seed = args.seed + k
        program, inputs = generate(np.random.default_rng(seed))
        jobs = [(n, np.float64) for n in names] + (
            [(n, np.float32) for n in FLOAT32_CHECKS if n in names] if args.float32 else [])
        for name, dtype in jobs:
            if name in SMALL_ONLY and inputs[0].size > SMALL_ONLY[name]:
                continue
            case = Case(program, inputs, np.random.default_rng(1000 + seed), dtype)
            ran += 1
            try:
                (run_check if dtype == np.float64 else run_float32)(name, case)
            except Exception as error:  # noqa: BLE001 - a campaign reports every failure
                label = name + ("" if dtype == np.float64 else "/float32")
                failures[label].append(seed)
                print(f"--- FAIL {label} seed={seed}: {type(error).__name__}: "
                      f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}")
                print(program.source(stop=name == "stop_gradient"))
                if args.verbose:
                    traceback.print_exc()
    print(f"{args.programs} programs, {ran} checks in {time.time() - start:.0f} s; "
          f"failures: {dict((k, len(v)) for k, v in failures.items()) or 'none'}")
    for label, seeds in sorted(failures.items()):
        print(f"  {label}: seeds {seeds[:20]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
