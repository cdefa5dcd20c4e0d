"""Command line: ``python -m modbal_lib {book,bench,features} ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _book(args: argparse.Namespace) -> int:
    from modbal_lib.book import build

    for slug, status in build(fast=args.fast):
        print(f"{slug:40s} {status}")
    print("book: _build/executed/*.ipynb and _build/html/index.html")
    return 0


def _parse_pairs(text: str | None) -> dict[str, str]:
    """"image=efficientnet_lite0,text=minilm" -> {"image": "efficientnet_lite0", "text": "minilm"}."""
    if not text:
        return {}
    pairs = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected key=value, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _literal(value: str):
    """Numbers and booleans from the command line; anything else stays a string."""
    lowered = value.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _bench(args: argparse.Namespace) -> int:
    from modbal_lib.bench import run

    method_options: dict[str, dict] = {}
    for option in args.option:
        target, sep, value = option.partition("=")
        method, dot, key = target.partition(".")
        if not (sep and dot):
            raise SystemExit(f"--option expects METHOD.KEY=VALUE, got {option!r}")
        method_options.setdefault(method, {})[key] = _literal(value)
    normalize = {m: _literal(v) for m, v in _parse_pairs(args.normalize).items()}
    results = run(
        args.dataset,
        [m.strip() for m in args.methods.split(",") if m.strip()],
        list(range(args.seeds)),
        args.out,
        epochs=args.epochs,
        fast=args.fast,
        encoders=_parse_pairs(args.encoders) or None,
        normalize=normalize or None,
        dataset_options={k: _literal(v) for k, v in _parse_pairs(args.dataset_options).items()},
        method_options=method_options,
        **({"device": args.device} if args.device else {}),
    )
    print((Path(args.out) / "results.md").read_text())
    print(f"{len(results['methods'])} methods x {len(results['seeds'])} seeds in {results['wall_seconds']:.0f} s -> {args.out}/results.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modbal_lib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    book = commands.add_parser("book", help="execute every chapter and render the HTML book")
    book.add_argument("--fast", action="store_true", help="fast mode (what CI runs)")
    book.set_defaults(run=_book)

    bench = commands.add_parser("bench", help="train and evaluate methods x seeds under the impairment protocol")
    bench.add_argument("--dataset", required=True, help="emoji, seesaw, food101, hateful_memes, mmimdb, cremad")
    bench.add_argument("--methods", required=True, help="comma-separated, e.g. joint,unimodal_image,balgrad")
    bench.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    bench.add_argument("--epochs", type=int, default=None, help="default: per dataset")
    bench.add_argument("--fast", action="store_true", help="a quarter of the epochs (CI)")
    bench.add_argument("--out", required=True, help="output folder for results.json and results.md")
    bench.add_argument("--encoders", help="per modality, e.g. image=pixels,text=minilm")
    bench.add_argument("--normalize", help="per modality L2 normalisation, e.g. image=true")
    bench.add_argument("--dataset-options", help="loader options, e.g. modalities=3")
    bench.add_argument("--option", action="append", default=[], help="METHOD.KEY=VALUE, e.g. balgrad.gamma=0.5")
    bench.add_argument("--device", help="cpu, cuda, ... (default: CUDA when present)")
    bench.set_defaults(run=_bench)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
