"""``python -m collector.outputs.dashboards [--check] [DIR] [--docs FILE]``: write (or check) the
dashboard JSON and their description.

DIR defaults to the repository's ``dashboards/`` folder, FILE to ``docs/dashboards.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.outputs.dashboards import stale, write
from collector.outputs.dashboards.docs import render_docs

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_DIR = ROOT / "dashboards"
DEFAULT_DOCS = ROOT / "docs" / "dashboards.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collector.outputs.dashboards")
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a file is missing or out of date, write nothing")
    args = parser.parse_args(argv)
    docs: Path = args.docs
    if args.check:
        old = stale(args.directory)
        if not docs.is_file() or docs.read_text(encoding="utf-8") != render_docs():
            old.append(docs)
        for path in old:
            sys.stderr.write(f"out of date: {path} (run python -m collector.outputs.dashboards)\n")
        return 1 if old else 0
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(render_docs(), encoding="utf-8")
    for path in [*write(args.directory), docs]:
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
