"""``python -m collector.dashboards [--check] [DIR]``: write (or check) the dashboard JSON.

DIR defaults to the repository's ``dashboards/`` folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.dashboards import stale, write

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "dashboards"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collector.dashboards")
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a file is missing or out of date, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        old = stale(args.directory)
        for path in old:
            sys.stderr.write(f"out of date: {path} (run python -m collector.dashboards)\n")
        return 1 if old else 0
    for path in write(args.directory):
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
