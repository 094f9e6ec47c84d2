"""`tension-bench evaluate`: prompt sets → adapter → engine (+ probe hooks) → metrics → probe →
results document, written atomically."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmark import PROBE_VERSION, __version__
from benchmark.checkpoint import DEFAULT_CACHE_ROOT, RunCache
from benchmark.data import Pair, load_pairs, prompt_sets_sha256
from benchmark.engine import build_text_table, encode_texts, rewards_by_pair, score_encoded
from benchmark.errors import BenchmarkError
from benchmark.metrics import compute_scores
from benchmark.results import build_document, command_line, default_output, device_description, schema_errors, versions


@dataclass
class EvaluateOptions:
    model: str
    model_id: str | None = None
    revision: str | None = None
    kind: str = "classifier"
    ref_model: str | None = None
    ref_free: bool = False
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | str = "auto"
    max_length: int | None = None
    trust_remote_code: bool = False
    allow_pickle: bool = False
    attn_implementation: str | None = None
    limit: int | None = None
    subsets: Sequence[str] | None = None
    probe: bool = True
    output: Path | str | None = None     # "-": write the JSON to stdout
    force: bool = False                 # replace a results file that holds more than this run will
    split: str = "test"
    data_dir: Path | None = None
    seed: int = 0
    progress: bool = True
    cache_dir: Path | None = None
    activation_budget_bytes: int | None = None
    reference: bool = False
    resume: bool = True
    device_map: str | None = None
    seeded_head: bool = False
    anchors: Sequence[str] | None = None
    anchors_dir: Path | None = None
    anchor_responses: Path | None = None
    argv: Sequence[str] | None = None
    extra_model: dict = field(default_factory=dict)


def limit_pairs(pairs: Sequence[Pair], limit: int | None) -> list[Pair]:
    """The first `limit` pairs of each subset (borderline: of each pair type), by id."""
    if not limit:
        return list(pairs)
    if limit < 1:
        raise BenchmarkError("--limit must be a positive number of pairs per subset")
    kept, seen = [], {}
    for pair in pairs:
        seen[pair.metric_key] = seen.get(pair.metric_key, 0) + 1
        if seen[pair.metric_key] <= limit:
            kept.append(pair)
    return kept


def check_writable(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchmarkError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise BenchmarkError(f"output {path} is a folder; give a file name")
    if not os.access(folder, os.W_OK):
        raise BenchmarkError(f"output folder {folder} is not writable")


def _holds_more(path: Path, complete: bool, probe: bool) -> str | None:
    """What an existing results file at `path` has that this run would lose, if anything."""
    from benchmark.jsonio import loads_strict

    try:
        existing = loads_strict(path.read_text(encoding="utf-8"))
        had_complete = existing["benchmark"].get("complete", True)
        had_probe = existing.get("probe") is not None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None    # not a results document we can read: nothing of ours to protect
    if had_complete and not complete:
        return "a full run, and this run is partial (--limit/--subsets)"
    if had_probe and not probe:
        return "a run with the probe, and this run has --no-probe"
    return None


def check_output(path: Path, complete: bool, probe: bool, force: bool) -> None:
    """Refuse, before any work, an output that cannot be written or that would silently replace a
    results file holding more than this run will produce."""
    from benchmark.jsonio import check_replaceable

    check_writable(path)
    check_replaceable(path)
    if path.is_file() and not force:
        lost = _holds_more(path, complete, probe)
        if lost:
            raise BenchmarkError(f"{path} holds {lost}; choose another --output, or pass --force to replace it")


def run_evaluation(opts: EvaluateOptions) -> tuple[dict | None, Path | None]:
    """Run one evaluation and write its document; a data-parallel worker rank returns (None, None)."""
    import torch

    from benchmark.distributed import barrier, finish, init_world
    from benchmark.models import load_adapter
    from benchmark.models.loading import resolve_source

    started = time.perf_counter()
    world = init_world()
    if world.distributed and opts.device in ("auto", "cuda") and torch.cuda.is_available():
        opts.device = f"cuda:{world.local_rank}"
    resolve_source(opts.model, opts.model_id, opts.revision)   # a bad --model fails before any work
    selected = load_pairs(opts.split, opts.data_dir, opts.subsets)
    pairs = limit_pairs(selected, opts.limit)
    complete = not opts.subsets and len(pairs) == len(selected)
    to_stdout = opts.output is not None and str(opts.output) == "-"
    if opts.output is not None and not to_stdout:
        check_output(Path(opts.output), complete, opts.probe, opts.force)
    if opts.batch_size != "auto" and int(opts.batch_size) < 1:
        raise BenchmarkError("--batch-size must be a positive number or auto")
    adapter = load_adapter(opts.model, kind=opts.kind, model_id=opts.model_id, revision=opts.revision,
                           device=opts.device, dtype=opts.dtype, trust_remote_code=opts.trust_remote_code,
                           allow_pickle=opts.allow_pickle, attn_implementation=opts.attn_implementation,
                           ref_model=opts.ref_model, ref_free=opts.ref_free, seed=opts.seed,
                           device_map=opts.device_map, seeded_head=opts.seeded_head)
    output = Path(opts.output) if opts.output is not None else default_output(adapter.info.id, not complete)
    if opts.output is None:   # an explicit --output was checked before any work
        check_output(output, complete, opts.probe, opts.force)
    max_length = opts.max_length or min(adapter.max_positions, 4096)
    if max_length < 8:
        raise BenchmarkError("--max-length must be at least 8 tokens")

    table = build_text_table(pairs)
    encoded = encode_texts(adapter, table.texts, max_length)
    fingerprint = prompt_sets_sha256(pairs)
    cache = None
    if opts.resume or world.distributed:   # ranks meet in the run cache, so data parallel needs one
        material = {"model": opts.model, "model_id": adapter.info.id, "revision": opts.revision, "kind": opts.kind,
                    "ref_model": opts.ref_model, "ref_free": opts.ref_free, "dtype": adapter.info.dtype,
                    "device": adapter.device.type, "max_length": max_length, "batch_size": opts.batch_size,
                    "split": opts.split, "prompt_sets_sha256": fingerprint,
                    "probe": PROBE_VERSION if opts.probe else False,   # a probe change must not resume
                    "attn_implementation": opts.attn_implementation, "seed": opts.seed, "version": __version__}
        root = opts.cache_dir or DEFAULT_CACHE_ROOT
        if world.is_main:
            cache = RunCache(root, material, len(encoded), fresh=not opts.resume)
        barrier(world)                      # rank 0 has created (or reset) the folder
        if not world.is_main:
            cache = RunCache(root, material, len(encoded))
        if cache.resumed and opts.progress and world.is_main:
            print(f"resuming: {len(cache.done_batches)} finished batches found in {cache.dir}", file=sys.stderr)
    capture = None
    if opts.probe:
        from benchmark.probe import DEFAULT_BUDGET_BYTES, ActivationCapture
        from benchmark.probe_stats import is_select_prompt

        capture = ActivationCapture(adapter.probe_sites(), [len(e.input_ids) for e in encoded],
                                    [is_select_prompt(prompt) for prompt, _ in table.texts], cache_dir=opts.cache_dir,
                                    budget_bytes=opts.activation_budget_bytes or DEFAULT_BUDGET_BYTES,
                                    storage=cache)
    try:
        result = score_encoded(adapter, encoded, opts.batch_size, observer=capture,
                               progress=opts.progress and world.is_main, checkpoint=cache,
                               shard=(world.rank, world.size))
    finally:
        if capture is not None:
            capture.close()
    if world.distributed:
        barrier(world)                      # every rank's batches are in the run cache now
        if not world.is_main:
            finish(world)
            return None, None
        result.rewards = np.array(cache.rewards, dtype=np.float64)
        result.nan_texts = [int(i) for i in np.flatnonzero(np.isnan(result.rewards))]
        finish(world)
    if result.nan_texts:
        first = result.nan_texts[0]
        raise BenchmarkError(f"{len(result.nan_texts)} texts got a NaN reward (first: text {first}); "
                             "the model or dtype is broken (try --dtype float32); nothing was written")
    rewards = rewards_by_pair(pairs, table, result.rewards)
    scores = compute_scores(pairs, rewards)

    probe_block, probe_seconds = None, 0.0
    if capture is not None:
        from benchmark.probe import ModelRunner, analyse

        probe_started = time.perf_counter()
        runner = ModelRunner(adapter, encoded, opts.batch_size, progress=opts.progress)
        chosen_of = {p.id: int(c) for p, c in zip(pairs, table.chosen_index)}
        rejected_of = {p.id: int(r) for p, r in zip(pairs, table.rejected_index)}
        try:
            probe_block = analyse(capture, runner, pairs, chosen_of, rejected_of, result.rewards, adapter.head(),
                                  reward_token=adapter.reward_token)
        finally:
            capture.discard()
        probe_seconds = time.perf_counter() - probe_started

    anchors = None
    if opts.anchors:
        from benchmark.anchors import score_anchors

        anchors = score_anchors(adapter, list(opts.anchors), anchors_dir=opts.anchors_dir,
                                anchor_responses=opts.anchor_responses, batch_size=opts.batch_size,
                                max_length=max_length, progress=opts.progress)
        for name, entry in anchors.items():
            if entry.get("status") == "not_scored":
                print(f"note: anchor {name} not scored: {entry.get('reason')}", file=sys.stderr)

    info = adapter.info
    if opts.reference:
        info.extra["reference"] = True
    run = {
        "device": device_description(adapter.device), "versions": versions(),
        "batch_size": opts.batch_size if opts.batch_size == "auto" else int(opts.batch_size),
        "max_length": int(max_length), "seed": opts.seed, "duration_s": round(time.perf_counter() - started, 3),
        "scoring_s": round(result.seconds, 3), "probe_s": round(probe_seconds, 3),
        "truncated": int(result.truncated), "n_texts": len(encoded), "nan_rewards": 0,
        "oom_retries": result.oom_retries, "resumed_texts": result.resumed_texts,
        "empty_responses": sum(1 for _, response in table.texts if not response.strip()),
        "trust_remote_code": opts.trust_remote_code, "allow_pickle": opts.allow_pickle,
        "attn_implementation": opts.attn_implementation, "command": command_line(opts.argv),
        "processes": world.size,
    }
    doc = build_document(model=info, pairs=pairs, split=opts.split, fingerprint=fingerprint,
                         rewards=rewards, scores=scores, probe=probe_block, run=run, anchors=anchors,
                         complete=complete)
    problems = schema_errors(doc)
    if problems:  # a bug on our side: never write a document the validator would reject
        raise BenchmarkError(f"internal error: the results document fails its schema ({problems[0]})")
    if to_stdout:
        from benchmark.jsonio import dump_json

        sys.stdout.write(dump_json(doc))
        sys.stdout.flush()
    else:
        from benchmark.results import write_document

        write_document(output, doc)
    if cache is not None:
        cache.finish()
    return doc, None if to_stdout else output
