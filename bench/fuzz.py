"""The fuzz suite (tests/security/test_fuzz_*.py) with many examples: a long hunt.

.venv/bin/python bench/fuzz.py [--examples 10000] [--only codec|escpos|printer_status|rest]
                               [pytest args...]

The test command runs the same tests with hypothesis's ``fuzz-ci`` profile (about a
minute in all); this selects ``fuzz-long`` with ``--examples`` per test (scaled by each
test's weight). A failure prints the smallest input hypothesis found and a
``@reproduce_failure`` blob: add the input to the test as an ``@example`` with the fix.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "security"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--examples", type=int, default=10_000, help="examples per test (x its weight)"
    )
    parser.add_argument("--only", action="append", default=[], help="a suite: codec, escpos, …")
    args, pytest_args = parser.parse_known_args()
    names = args.only or [p.stem.removeprefix("test_fuzz_") for p in SUITE.glob("test_fuzz_*.py")]
    files = [str(SUITE / f"test_fuzz_{name}.py") for name in sorted(names)]
    env = {
        **os.environ,
        "PASSLINE_FUZZ_PROFILE": "fuzz-long",
        "PASSLINE_FUZZ_EXAMPLES": str(args.examples),
    }
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "timeout=0"]
    command += ["-q", "--hypothesis-show-statistics", *files, *pytest_args]
    print(f"fuzz: {len(files)} suites, {args.examples} examples per test", flush=True)
    started = time.monotonic()
    code = subprocess.call(command, cwd=ROOT, env=env)
    print(f"fuzz: {'ok' if code == 0 else 'FAILED'} in {time.monotonic() - started:.0f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
