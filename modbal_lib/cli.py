"""Command line: ``python -m modbal_lib {book,bench,features} ...``."""

from __future__ import annotations

import argparse
import sys


def _book(args: argparse.Namespace) -> int:
    from modbal_lib.book import build

    for slug, status in build(fast=args.fast):
        print(f"{slug:40s} {status}")
    print("book: _build/executed/*.ipynb and _build/html/index.html")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modbal_lib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    book = commands.add_parser("book", help="execute every chapter and render the HTML book")
    book.add_argument("--fast", action="store_true", help="fast mode (what CI runs)")
    book.set_defaults(run=_book)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
