"""`tension-bench evaluate`: prompt sets → adapter → engine (+ probe hooks) → metrics → probe →
results document, written atomically."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmark.checkpoint import DEFAULT_CACHE_ROOT, RunCache, run_material
from benchmark.data import Pair, load_pairs, prompt_sets_sha256
from benchmark.engine import build_text_table, encode_texts, rewards_by_pair, score_encoded
from benchmark.errors import BenchmarkError
from benchmark.metrics import compute_scores
from benchmark.results import build_document, default_output, run_block, schema_errors


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


@dataclass
class Prepared:
    """What the prepare stage hands to the others: the world, the model, the pairs and their texts."""
    world: object
    adapter: object
    pairs: list[Pair]
    complete: bool
    output: Path | None          # None: the document goes to stdout (--output -)
    max_length: int
    table: object
    encoded: list
    fingerprint: str
    cache: RunCache | None
    started: float
    scored: np.ndarray | None = None     # texts the scoring pass runs (the probe's pass scores the rest)
    held_out: object = None              # benchmark.probe.HeldOut, once the probe's pass has run


def prepare(opts: EvaluateOptions) -> Prepared:
    """Check the inputs (before any work), load the prompt sets and the model, encode the texts and
    open the run cache."""
    import torch

    from benchmark.distributed import barrier, init_world
    from benchmark.models import load_adapter
    from benchmark.models.loading import resolve_source

    started = time.perf_counter()
    world = init_world()
    device = opts.device
    if world.distributed and device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{world.local_rank}"
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
                           device=device, dtype=opts.dtype, trust_remote_code=opts.trust_remote_code,
                           allow_pickle=opts.allow_pickle, attn_implementation=opts.attn_implementation,
                           ref_model=opts.ref_model, ref_free=opts.ref_free, seed=opts.seed,
                           device_map=opts.device_map, seeded_head=opts.seeded_head)
    output = None if to_stdout else (Path(opts.output) if opts.output is not None
                                     else default_output(adapter.info.id, not complete))
    if opts.output is None:   # an explicit --output was checked before any work
        check_output(output, complete, opts.probe, opts.force)
    max_length = opts.max_length or min(adapter.max_positions, 4096)
    if max_length < 8:
        raise BenchmarkError("--max-length must be at least 8 tokens")
    table = build_text_table(pairs)
    encoded = encode_texts(adapter, table.texts, max_length)
    fingerprint = prompt_sets_sha256(pairs)
    scored = np.arange(len(encoded))
    if opts.probe:   # the probe runs its ablation texts forward with gradients anyway: that pass scores them
        from benchmark.probe import held_out_texts

        scored = np.setdiff1d(scored, held_out_texts(pairs, table))
    cache = None
    if opts.resume or world.distributed:   # ranks meet in the run cache, so data parallel needs one
        material = run_material(model=opts.model, model_id=adapter.info.id, revision=opts.revision, kind=opts.kind,
                                ref_model=opts.ref_model, ref_free=opts.ref_free, dtype=adapter.info.dtype,
                                device=adapter.device.type, max_length=max_length, batch_size=opts.batch_size,
                                split=opts.split, prompt_sets_sha256=fingerprint, probe=opts.probe,
                                attn_implementation=opts.attn_implementation, seed=opts.seed)
        root = opts.cache_dir or DEFAULT_CACHE_ROOT
        if world.is_main:
            cache = RunCache(root, material, len(scored), fresh=not opts.resume)
        barrier(world)                      # rank 0 has created (or reset) the folder
        if not world.is_main:
            cache = RunCache(root, material, len(scored))
        if cache.resumed and opts.progress and world.is_main:
            print(f"resuming: {len(cache.done_batches)} finished batches found in {cache.dir}", file=sys.stderr)
    return Prepared(world, adapter, pairs, complete, output, max_length, table, encoded, fingerprint, cache, started,
                    scored=scored)


def open_capture(opts: EvaluateOptions, prep: Prepared):
    """The probe's activation hooks for the scoring pass (None with --no-probe)."""
    if not opts.probe:
        return None
    from benchmark.probe import DEFAULT_BUDGET_BYTES, ActivationCapture
    from benchmark.probe_stats import is_select_prompt

    return ActivationCapture(prep.adapter.probe_sites(), [len(e.input_ids) for e in prep.encoded],
                             [is_select_prompt(prompt) for prompt, _ in prep.table.texts], cache_dir=opts.cache_dir,
                             budget_bytes=opts.activation_budget_bytes or DEFAULT_BUDGET_BYTES, storage=prep.cache)


def score(opts: EvaluateOptions, prep: Prepared, capture):
    """Score every distinct text once (this rank's share when data parallel); None on a worker rank.
    A NaN reward stops the run before anything is written."""
    from benchmark.distributed import barrier, finish

    world = prep.world
    try:
        result = score_encoded(prep.adapter, [prep.encoded[i] for i in prep.scored], opts.batch_size,
                               observer=capture.rows(prep.scored) if capture is not None else None,
                               progress=opts.progress and world.is_main, checkpoint=prep.cache,
                               shard=(world.rank, world.size))
    finally:
        if capture is not None:
            capture.close()
    if world.distributed:
        barrier(world)                      # every rank's batches are in the run cache now
        if not world.is_main:
            finish(world)
            return None
        result.rewards = np.array(prep.cache.rewards, dtype=np.float64)
        finish(world)
    rewards = np.full(len(prep.encoded), np.nan)
    rewards[prep.scored] = result.rewards
    if capture is not None:
        from benchmark.probe import ModelRunner, score_held_out

        held_out = np.setdiff1d(np.arange(len(prep.encoded)), prep.scored)
        runner = ModelRunner(prep.adapter, prep.encoded, opts.batch_size, progress=opts.progress)
        prep.held_out = score_held_out(capture, runner, prep.pairs, prep.table, held_out)
        rewards[held_out] = prep.held_out.rewards
    result.rewards, result.truncated = rewards, sum(e.truncated for e in prep.encoded)
    result.nan_texts = [int(i) for i in np.flatnonzero(np.isnan(result.rewards))]
    if result.nan_texts:
        first = result.nan_texts[0]
        raise BenchmarkError(f"{len(result.nan_texts)} texts got a NaN reward (first: text {first}); "
                             "the model or dtype is broken (try --dtype float32); nothing was written")
    return result


def probe(opts: EvaluateOptions, prep: Prepared, capture, result) -> tuple[dict | None, float]:
    """The activation-tension probe over the captured activations: (probe block, seconds)."""
    if capture is None:
        return None, 0.0
    from benchmark.probe import ModelRunner, analyse

    started = time.perf_counter()
    runner = ModelRunner(prep.adapter, prep.encoded, opts.batch_size, progress=opts.progress)
    chosen_of = {p.id: int(c) for p, c in zip(prep.pairs, prep.table.chosen_index)}
    rejected_of = {p.id: int(r) for p, r in zip(prep.pairs, prep.table.rejected_index)}
    try:
        block = analyse(capture, runner, prep.pairs, chosen_of, rejected_of, result.rewards, prep.adapter.head(),
                        reward_token=prep.adapter.reward_token, held_out=prep.held_out)
    finally:
        capture.discard()
    # the held-out pass (attribution patching, which also scored the ablation texts) is probe time
    return block, time.perf_counter() - started + (prep.held_out.seconds if prep.held_out else 0.0)


def anchors(opts: EvaluateOptions, prep: Prepared) -> dict | None:
    """External anchor sets, scored with the same adapter (reported beside, never in, `scores`)."""
    if not opts.anchors:
        return None
    from benchmark.anchors import score_anchors

    block = score_anchors(prep.adapter, list(opts.anchors), anchors_dir=opts.anchors_dir,
                          anchor_responses=opts.anchor_responses, batch_size=opts.batch_size,
                          max_length=prep.max_length, progress=opts.progress)
    for name, entry in block.items():
        if entry.get("status") == "not_scored":
            print(f"note: anchor {name} not scored: {entry.get('reason')}", file=sys.stderr)
    return block


def assemble(opts: EvaluateOptions, prep: Prepared, result, probe_block: dict | None, probe_seconds: float,
             anchor_block: dict | None) -> dict:
    """The results document, checked against the schema (a failure here is a bug on our side)."""
    info = prep.adapter.info
    if opts.reference:
        info = replace(info, extra={**info.extra, "reference": True})
    rewards = rewards_by_pair(prep.pairs, prep.table, result.rewards)
    run = run_block(
        device=prep.adapter.device, batch_size=opts.batch_size, max_length=prep.max_length, seed=opts.seed,
        duration_s=time.perf_counter() - prep.started, scoring_s=result.seconds, probe_s=probe_seconds,
        truncated=result.truncated, n_texts=len(prep.encoded), oom_retries=result.oom_retries,
        resumed_texts=result.resumed_texts,
        empty_responses=sum(1 for _, response in prep.table.texts if not response.strip()),
        trust_remote_code=opts.trust_remote_code, allow_pickle=opts.allow_pickle,
        attn_implementation=opts.attn_implementation, argv=opts.argv, processes=prep.world.size)
    doc = build_document(model=info, pairs=prep.pairs, split=opts.split, fingerprint=prep.fingerprint,
                         rewards=rewards, scores=compute_scores(prep.pairs, rewards), probe=probe_block, run=run,
                         anchors=anchor_block, complete=prep.complete)
    problems = schema_errors(doc)
    if problems:  # never write a document the validator would reject
        raise BenchmarkError(f"internal error: the results document fails its schema ({problems[0]})")
    return doc


def write(prep: Prepared, doc: dict) -> None:
    """Atomically to the output file, or to stdout for --output -; then close the run cache."""
    if prep.output is None:
        from benchmark.jsonio import dump_json

        sys.stdout.write(dump_json(doc))
        sys.stdout.flush()
    else:
        from benchmark.results import write_document

        write_document(prep.output, doc)
    if prep.cache is not None:
        prep.cache.finish()


def run_evaluation(opts: EvaluateOptions) -> tuple[dict | None, Path | None]:
    """prepare → score → probe → anchors → assemble → write. Returns (document, output path; None
    for stdout); a data-parallel worker rank returns (None, None)."""
    prep = prepare(opts)
    capture = open_capture(opts, prep)
    result = score(opts, prep, capture)
    if result is None:
        return None, None
    probe_block, probe_seconds = probe(opts, prep, capture, result)
    anchor_block = anchors(opts, prep)
    doc = assemble(opts, prep, result, probe_block, probe_seconds, anchor_block)
    write(prep, doc)
    return doc, prep.output
