"""The results document (DESIGN §6): build it from a run, check it against the schema, write it
atomically. It is the only contract between the runner, the validator and the app."""

from __future__ import annotations

import datetime as _dt
import platform
import shlex
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, TypedDict

from benchmark import BENCHMARK_NAME, PROBE_VERSION, SCHEMA_VERSION, __version__
from benchmark.data import Pair, load_schema
from benchmark.ids import submission_name
from benchmark.jsonio import atomic_write_json
from benchmark.records import ModelInfo


# ---------------------------------------------------------------------------------------------
# The contract, typed once (DESIGN §6). The JSON schema stays the arbiter; these types are what
# every producer (metrics, probe, evaluate) and reader (validate, leaderboard, report, the app)
# agrees on in code. Optional keys are marked NotRequired by using total=False subclasses.

Interval = list[float]   # [lo, hi], a 95% percentile bootstrap interval


class SubsetScore(TypedDict):
    accuracy: float
    ci95: Interval
    n: int
    ties: int


class CategoryScore(TypedDict):
    accuracy: float
    ci95: Interval
    n: int


class TwinCounts(TypedDict):
    n: int
    both_won: int


class Scores(TypedDict):
    """`scores` (DESIGN §4); every value is recomputed from `items` by `validate`."""
    helpful: Optional[float]
    harmless: Optional[float]
    balance: Optional[float]
    lean: Optional[float]
    over_refusal: Optional[float]
    under_refusal: Optional[float]
    contrast: Optional[float]
    refusal_context: Optional[float]
    n_pairs: int
    ties: int
    tie_rate: float
    ci95: dict[str, Interval]
    subsets: dict[str, SubsetScore]
    categories: dict[str, CategoryScore]
    twins: TwinCounts


class BenchmarkBlock(TypedDict):
    name: str
    version: str
    split: str
    prompt_sets_sha256: str
    n_pairs: int
    complete: bool
    probe_version: str


class _ModelRequired(TypedDict):
    id: str
    revision: Optional[str]
    kind: str
    architecture: str
    n_parameters: int
    dtype: str
    chat_template_sha256: Optional[str]


class ModelBlock(_ModelRequired, total=False):
    license: Optional[str]
    head: str
    input_format: str
    ref_model: Optional[str]
    reference: bool
    baseline: bool          # a calibration row (plugin:baseline-*): shown apart, never ranked


RunBlock = dict[str, Any]      # provenance (`run`): see `run_block` below for its keys
Probe = dict[str, Any]         # `probe` (DESIGN §5): built by benchmark.probe, shape in the schema


class Item(TypedDict):
    id: str
    chosen: float
    rejected: float


class _DocumentRequired(TypedDict):
    schema_version: str
    benchmark: BenchmarkBlock
    model: ModelBlock
    run: RunBlock
    scores: Scores
    probe: Optional[Probe]
    items: list[Item]


class ResultsDocument(_DocumentRequired, total=False):
    anchors: dict[str, dict]


@lru_cache(maxsize=1)
def results_validator():
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema("results.schema.json"),
                                           format_checker=jsonschema.FormatChecker())


def schema_errors(doc) -> list[str]:
    """Schema problems as 'path: message' lines, most specific first."""
    errors = sorted(results_validator().iter_errors(doc), key=lambda e: (-len(list(e.absolute_path)), e.message))
    out = []
    for error in errors:
        path = "/".join(str(p) for p in error.absolute_path) or "document"
        message = error.message if len(error.message) < 160 else error.message[:157] + "..."
        out.append(f"{path}: {message}")
    return out


def versions() -> dict[str, str | None]:
    import importlib.metadata as md

    found: dict[str, str | None] = {"python": platform.python_version(), "tension-bench": __version__}
    for name in ("torch", "transformers", "datasets", "numpy", "tokenizers", "accelerate"):
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = None
    return found


def device_description(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.machine()}:{torch.get_num_threads()} threads"


def command_line(argv: Sequence[str] | None = None) -> str:
    return "tension-bench " + shlex.join(list(argv if argv is not None else sys.argv[1:]))


def run_block(*, device, batch_size, max_length: int, seed: int, duration_s: float, scoring_s: float,
              probe_s: float, truncated: int, n_texts: int, oom_retries: int, resumed_texts: int,
              empty_responses: int, trust_remote_code: bool, allow_pickle: bool, attn_implementation: str | None,
              argv: Sequence[str] | None, processes: int) -> RunBlock:
    """The `run` block (provenance): where, with what, how long, and what was cut or retried."""
    return {
        "device": device_description(device), "versions": versions(),
        "batch_size": batch_size if batch_size == "auto" else int(batch_size),
        "max_length": int(max_length), "seed": seed, "duration_s": round(duration_s, 3),
        "scoring_s": round(scoring_s, 3), "probe_s": round(probe_s, 3),
        "truncated": int(truncated), "n_texts": n_texts, "nan_rewards": 0,
        "oom_retries": oom_retries, "resumed_texts": resumed_texts, "empty_responses": empty_responses,
        "trust_remote_code": trust_remote_code, "allow_pickle": allow_pickle,
        "attn_implementation": attn_implementation, "command": command_line(argv), "processes": processes,
    }


def default_output(model_id: str, partial: bool = False) -> Path:
    """results/<org>__<name>.json; a partial run gets <org>__<name>.partial.json so that it never
    replaces a full one."""
    name = submission_name(model_id)
    return Path("results") / (name[:-len(".json")] + ".partial.json" if partial else name)


def build_document(*, model: ModelInfo, pairs: Sequence[Pair], split: str, fingerprint: str,
                   rewards: Mapping[str, tuple[float, float]], scores: Scores, probe: Probe | None,
                   run: RunBlock, anchors: dict | None = None, complete: bool = True) -> ResultsDocument:
    model_block = {
        "id": model.id, "revision": model.revision, "kind": model.kind, "architecture": model.architecture,
        "n_parameters": int(model.n_parameters), "dtype": model.dtype,
        "chat_template_sha256": model.chat_template_sha256, "license": model.license, "head": model.head,
        **({"input_format": model.input_format} if model.input_format else {}),
        **model.extra,
    }
    doc = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": {"name": BENCHMARK_NAME, "version": __version__, "split": split,
                      "prompt_sets_sha256": fingerprint, "n_pairs": len(pairs), "complete": complete,
                      "probe_version": PROBE_VERSION},
        "model": model_block,
        "run": {"date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(), **run},
        "scores": scores,
        "probe": probe,
        "items": [{"id": p.id, "chosen": rewards[p.id][0], "rejected": rewards[p.id][1]} for p in pairs],
    }
    if anchors:
        doc["anchors"] = anchors
    return doc


def write_document(path: Path, doc: dict) -> None:
    atomic_write_json(path, doc)
