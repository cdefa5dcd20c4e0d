"""Command line: ``python -m modbal_lib {book,bench,report,claims,features,assignments,gpucheck} ...``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from modbal_lib import book, claims, gpucheck
from modbal_lib.assignments import find_assignments, generate
from modbal_lib.bench import run
from modbal_lib.data import DATASETS
from modbal_lib.data.files import DatasetFileError
from modbal_lib.encoders import ENCODER_SETS
from modbal_lib.experiments import check_comparison, parse_option, train_option_hints
from modbal_lib.features import Extraction, precompute
from modbal_lib.methods import option_hints
from modbal_lib.presets import PRESETS
from modbal_lib.report import write
from modbal_lib.utils import cache_dir, check_environment, parse_bool


def _book(args: argparse.Namespace) -> int:
    if args.cell_timeout is not None and args.cell_timeout < 1:
        raise ValueError(f"book --cell-timeout: expected a positive number of seconds, got {args.cell_timeout}")
    build_dir = Path(args.build_dir) if args.build_dir else book.ROOT / "_build"
    try:
        report = book.build(fast=args.fast, build_dir=build_dir, cell_timeout=args.cell_timeout)
    except (book.ChapterError, book.site.SiteError) as error:  # the chapter and cell, or the website's warnings
        print(f"error: {error}", file=sys.stderr)
        return 1
    for slug, status in report:
        print(f"{slug:40s} {status}")
    print(f"book: {build_dir / 'executed'}/*.ipynb and {build_dir / 'html' / 'index.html'}")
    return 0


def _parse_pairs(text: str | None) -> dict[str, str]:
    """"image=efficientnet_lite0,text=minilm" -> {"image": "efficientnet_lite0", "text": "minilm"}."""
    if not text:
        return {}
    pairs = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _encoders(text: str | None) -> dict[str, str] | str | None:
    """An encoder set name ("offline", "balgrad", "clip") or per-modality pairs "image=pixels,text=minilm"."""

    if text in ENCODER_SETS:
        return text
    return _parse_pairs(text) or None


def _literal(value: str):
    """Numbers and booleans from the command line (``--dataset-options``); anything else stays a string.
    Method options are typed by the method itself (``experiments.parse_option``)."""
    lowered = value.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _at_least(low: int):
    """An argparse type: an integer >= ``low`` (``--seeds 0`` is refused at once, not after the data loads)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value
    return parse


def _method_options(options: list[str], methods: list[str]) -> dict[str, dict]:
    """``--option LABEL.KEY=VALUE`` (repeatable) -> {label: {key: value}}, each value typed as the method
    (or ``train``) declares the option; unknown labels and keys are left for ``experiments.check_comparison``
    to refuse with the accepted names."""
    labels = {entry.partition("=")[0]: entry.partition("=")[2] or entry.partition("=")[0] for entry in methods}
    parsed: dict[str, dict] = {}
    for option in options:
        target, sep, value = option.partition("=")
        label, dot, key = target.partition(".")
        if not (sep and dot and label and key):
            raise ValueError(f"--option expects LABEL.KEY=VALUE (e.g. balgrad.gamma=0.5), got {option!r}")
        hints = {**train_option_hints(), **(option_hints(labels[label]) if label in labels else {})}
        parsed.setdefault(label, {})[key] = parse_option(value, hints[key], f"--option {target}") if key in hints else value
    return parsed


def _bench(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    method_options = _method_options(args.option, methods)
    check_comparison(methods, method_options, {"epochs": args.epochs or 1})
    normalize = {m: parse_bool(v, f"--normalize {m}") for m, v in _parse_pairs(args.normalize).items()}
    results = run(
        args.dataset,
        methods,
        list(range(args.seeds)),
        args.out,
        epochs=args.epochs,
        fast=args.fast,
        encoders=_encoders(args.encoders),
        normalize=normalize or None,
        dataset_options={k: _literal(v) for k, v in _parse_pairs(args.dataset_options).items()},
        method_options=method_options,
        preset=args.preset,
        **({"device": args.device} if args.device else {}),
    )
    print((Path(args.out) / "results.md").read_text())
    print(f"{len(results['methods'])} methods x {len(results['seeds'])} seeds in {results['wall_seconds']:.0f} s -> {args.out}/results.json")
    return 0


def _report(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    report = write(
        args.out,
        "python -m modbal_lib " + shlex.join(args.argv),
        datasets=[d.strip() for d in args.datasets.split(",") if d.strip()],
        methods=methods,
        seeds=list(range(args.seeds)),
        epochs=args.epochs,
        fast=args.fast,
        dataset_options={k: _literal(v) for k, v in _parse_pairs(args.dataset_options).items()},
        **({"device": args.device} if args.device else {}),
    )
    print(f"report: {report}")
    return 0


def _claims(args: argparse.Namespace) -> int:
    epochs = {"emoji": args.epochs, "seesaw": args.epochs} if args.epochs else {}
    ledger = claims.Ledger(fast=args.fast, seeds=tuple(range(args.seeds)) if args.seeds else (), epochs=epochs)
    path = claims.write(args.out, ledger, "python -m modbal_lib " + shlex.join(args.argv))
    print(f"claims: {path}")
    return 0


def _features(args: argparse.Namespace) -> int:
    if args.precision:
        os.environ["MODBAL_PRECISION"] = args.precision
    try:
        how = Extraction(batch_size=args.batch_size, workers=args.workers, chunk_rows=args.chunk_rows)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        records = precompute(
            args.dataset,
            tuple(split.strip() for split in args.splits.split(",") if split.strip()),
            encoders=_encoders(args.encoders),
            impairments=args.impairments,
            seeds=tuple(range(args.seeds)),
            device=args.device,
            how=how,
            **{k: _literal(v) for k, v in _parse_pairs(args.dataset_options).items()},
        )
    except (DatasetFileError, ImportError) as error:  # rerunning cannot help until the file or package is fixed
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished chunks and feature sets are kept; the same command resumes", file=sys.stderr)
        return 130
    for record in records:
        if record["impairment"] is not None:
            continue
        line = f"{args.dataset} {record['split']:5s} {record['modality']}: {record['encoder']} {list(record['shape'])} "
        line += record["status"]
        if record["status"] in ("extracted", "rebuilt"):
            line += f" in {record['seconds']:.1f} s ({record['shape'][0] / record['seconds']:.0f}/s)"
        elif record["status"] == "resumed":
            line += f" from the chunks an earlier run saved, in {record['seconds']:.1f} s"
        same = (record["split"], record["modality"])
        impaired = [r for r in records if r["impairment"] and (r["split"], r["modality"]) == same]
        if impaired:
            extracted = sum(r["status"] in ("extracted", "resumed", "rebuilt") for r in impaired)
            line += f"; + {len(impaired)} impaired test sets ({extracted} extracted)"
        print(line)
    print(f"feature cache: {cache_dir() / 'features'}")
    return 0


def _gpucheck(args: argparse.Namespace) -> int:
    results = gpucheck.run(args.out, small=args.small, device=args.device)
    print(gpucheck.markdown(results))
    print(f"gpucheck: {Path(args.out) / 'gpucheck.json'} and gpucheck.md")
    return 0


def _assignments(args: argparse.Namespace) -> int:
    masters = find_assignments()
    unknown = set(args.names) - {m.stem for m in masters}
    if unknown:
        raise ValueError(f"unknown assignment(s) {sorted(unknown)}; expected some of {[m.stem for m in masters]}")
    for master in masters:
        if args.names and master.stem not in args.names:
            continue
        print(f"{master.stem}: otter assign{'' if args.no_run_tests else ' (and grading the solutions)'} ...", flush=True)
        generated = generate(master, Path(args.out), run_tests=not args.no_run_tests)
        print(f"  hand out:   {generated.student}\n  autograder: {generated.autograder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modbal_lib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    book = commands.add_parser("book", help="execute every chapter and render the HTML book")
    book.add_argument("--fast", action="store_true", help="fast mode (what CI runs)")
    book.add_argument("--build-dir", help="where executed/ and html/ go (default: _build; make test uses _build/fast)")
    book.add_argument("--cell-timeout", type=int,
                      help="seconds one cell may run before the build fails (default: modbal_lib.book.CELL_TIMEOUT, "
                      "by mode)")
    book.set_defaults(run=_book)

    bench = commands.add_parser("bench", help="train and evaluate methods x seeds under the impairment protocol")
    bench.add_argument("--dataset", required=True, help="emoji, seesaw, food101, hateful_memes, mmimdb, cremad")
    bench.add_argument("--methods", required=True, help="comma-separated, e.g. joint,unimodal_image,balgrad; LABEL=METHOD for a variant, "
                       "e.g. go_only=goal with --option go_only.adaptive_leveraging=false")
    bench.add_argument("--seeds", type=_at_least(1), default=3, help="number of seeds (0..N-1)")
    bench.add_argument("--epochs", type=_at_least(1), default=None, help="default: per dataset")
    bench.add_argument("--fast", action="store_true", help="a quarter of the epochs (CI)")
    bench.add_argument("--out", required=True, help="output folder for results.json and results.md")
    bench.add_argument("--encoders", help="per modality, e.g. image=pixels,text=minilm, or a set: offline, balgrad, clip")
    bench.add_argument("--normalize", help="per modality L2 normalisation, e.g. image=true")
    bench.add_argument("--dataset-options", help="loader options, e.g. modalities=3")
    bench.add_argument("--option", action="append", default=[], help="METHOD.KEY=VALUE, e.g. balgrad.gamma=0.5")
    bench.add_argument("--device", help="cpu, cuda, ... (default: CUDA when present)")
    bench.add_argument("--preset", choices=sorted(PRESETS),
                       help="a paper's training settings (modbal_lib.presets); explicit flags win")
    bench.set_defaults(run=_bench)

    report = commands.add_parser(
        "report", help="bench every method on the embedded datasets and write REPORT.md (tables, figures, reading)")
    report.add_argument("--out", default="results", help="output folder (default: results)")
    report.add_argument("--datasets", default="emoji,seesaw", help="comma-separated (default: emoji,seesaw)")
    report.add_argument("--methods", help="comma-separated (default: unimodal_<m> for each modality, joint, "
                        "joint_unimodal_heads, ogm_ge, mslr, pcgrad, balgrad, cggm, goal)")
    report.add_argument("--seeds", type=_at_least(1), default=5, help="number of seeds (0..N-1; default 5)")
    report.add_argument("--epochs", type=_at_least(1), default=None, help="default: per dataset")
    report.add_argument("--fast", action="store_true", help="a quarter of the epochs (CI)")
    report.add_argument("--dataset-options", help="loader options for every dataset, e.g. num_samples=600")
    report.add_argument("--device", help="cpu, cuda, ... (default: CUDA when present)")
    report.set_defaults(run=_report)

    ledger = commands.add_parser(
        "claims", help="test the papers' claims (modbal_lib.claims) and write CLAIMS.md and claims.json")
    ledger.add_argument("--out", default="results", help="output folder (default: results)")
    ledger.add_argument("--seeds", type=_at_least(1), default=None, help="number of seeds (default 5; fast 2)")
    ledger.add_argument("--epochs", type=_at_least(1), default=None, help="default: the report's (emoji 40, seesaw 30; fast: 1)")
    ledger.add_argument("--fast", action="store_true", help="reduced size (CI): the verdicts may be 'too few seeds'")
    ledger.set_defaults(run=_claims)

    features = commands.add_parser(
        "features", help="extract features into the cache that bench and load_features read (resumable)")
    features.add_argument("--dataset", required=True, help="emoji, seesaw, food101, hateful_memes, mmimdb, cremad")
    features.add_argument("--splits", default="train,val,test", help="comma-separated (default: all three)")
    features.add_argument("--encoders", help="offline (default), balgrad, clip, or per modality: image=...,text=...")
    features.add_argument("--impairments", action="store_true",
                          help="also the test split's missing and noisy versions of each modality (the protocol)")
    features.add_argument("--seeds", type=_at_least(1), default=3, help="noisy test sets for seeds 0..N-1 (as bench --seeds)")
    features.add_argument("--batch-size", type=_at_least(1), default=64, help="inputs per network call")
    features.add_argument("--workers", type=_at_least(0), default=min(4, os.cpu_count() or 1),
                          help="DataLoader processes reading image/audio/video files (0: in this process)")
    features.add_argument("--chunk-rows", type=_at_least(1), default=256,  # Extraction's default
                          help="rows per resumable chunk, a multiple of --batch-size (default 256)")
    features.add_argument("--device", help="cpu, cuda, ... (default: CUDA when present)")
    features.add_argument("--precision", choices=["fp16", "bf16", "fp32"],
                          help="autocast on CUDA (default fp16); sets MODBAL_PRECISION: run bench with the same value")
    features.add_argument("--dataset-options", help="loader options, e.g. val_size=1000")
    features.set_defaults(run=_features)

    assignments = commands.add_parser(
        "assignments", help="student versions and autograders of the graded assignments (Otter-Grader)")
    assignments.add_argument("names", nargs="*", help="assignments to generate (default: all), e.g. a1_projection")
    assignments.add_argument("--out", default="dist/assignments", help="output folder (default: dist/assignments)")
    assignments.add_argument("--no-run-tests", action="store_true",
                             help="skip grading the solutions with the new autograder (faster; not for release)")
    assignments.set_defaults(run=_assignments)

    check = commands.add_parser(
        "gpucheck", help="measure feature extraction, each method's step and mixed precision on this device")
    check.add_argument("--out", default="results/gpucheck", help="output folder (default: results/gpucheck)")
    check.add_argument("--small", action="store_true", help="small sizes: seconds on a CPU (what the tests run)")
    check.add_argument("--device", help="cpu, cuda, cuda:N (default: CUDA when present)")
    check.set_defaults(run=_gpucheck)

    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # the command as typed, for the report's header
    try:
        for warning in check_environment(tuple(DATASETS)):
            print(f"warning: {warning}", file=sys.stderr)
        return args.run(args)
    except ValueError as error:  # bad input: one line naming the argument, the file or the variable
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
