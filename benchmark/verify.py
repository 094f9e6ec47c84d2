"""`tension-bench verify`: re-score a seeded, stratified sample of a results file's pairs with the
settings the file records, and compare both rewards of each sampled pair within a tolerance.

What a maintainer runs before adding a model to maintainers/verified.json: a GPU minute, not a full
re-run. The sample's seed is the sha256 of the file's bytes (salted with --salt when the maintainer
wants a sample nobody could compute in advance), so the submitter cannot choose which pairs are
checked. Loading and scoring are evaluate's own: `load_adapter` and the engine.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from benchmark import SCHEMA_VERSION
from benchmark.data import Pair, load_pairs, prompt_sets_sha256
from benchmark.errors import BenchmarkError
from benchmark.jsonio import StrictJSONError, loads_strict
from benchmark.records import ModelInfo

DEFAULT_SAMPLE = 64
NAMED_MISMATCHES = 5     # mismatching pairs the verdict line names


@dataclass(frozen=True)
class Tolerance:
    """A recorded reward matches its re-scored value r when they differ by at most
    atol + rtol·max(|r|, s), s the standard deviation of the re-scored sample's rewards. Both r and
    s are the maintainer's numbers: a submitter cannot widen the tolerance with huge rewards, and a
    model whose rewards sit near 0 is judged on its own scale."""
    atol: float
    rtol: float
    label: str                  # "<dtype>/<cpu|gpu>"

    def allows(self, recorded: float, rescored: float, scale: float = 0.0) -> bool:
        return abs(recorded - rescored) <= self.atol + self.rtol * max(abs(rescored), scale)

    def describe(self) -> str:
        return f"{self.label} tolerance {self.atol:g} + {self.rtol:g}·max(|r|, s)"


# (dtype, where it ran) → (atol, rtol); "gpu" when the file's run or this one used a GPU. The sample
# is re-scored in other batches than the original run (other padding widths and kernel choices, so
# another summation order): float32 on CPU moves a reward by ~1e-6, GPU kernels chosen per shape by
# ~1e-4; half precisions keep 8 (bfloat16) or 11 (float16) significant bits per activation, and the
# rounding grows with depth. submissions/README.md documents this table and what was measured.
TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    ("float32", "cpu"): (1e-4, 1e-4),
    ("float32", "gpu"): (1e-3, 1e-3),
    ("float16", "cpu"): (1e-3, 1e-2),
    ("float16", "gpu"): (2e-3, 2e-2),
    ("bfloat16", "cpu"): (2e-3, 3e-2),
    ("bfloat16", "gpu"): (5e-3, 5e-2),
}


def tolerance_for(dtype: str, recorded_device: str, device_type: str) -> Tolerance:
    where = "cpu" if recorded_device.startswith("cpu") and device_type == "cpu" else "gpu"
    if (dtype, where) not in TOLERANCES:
        raise BenchmarkError(f"no verification tolerance for dtype {dtype!r}; "
                             f"known: {', '.join(sorted({d for d, _ in TOLERANCES}))}")
    atol, rtol = TOLERANCES[(dtype, where)]
    return Tolerance(atol, rtol, f"{dtype}/{where}")


@dataclass(frozen=True)
class RecordedRun:
    """What a results file records about how its rewards were produced: the settings verify reuses
    (loading, encoding) and the facts it checks on the model it loads."""
    model_id: str
    revision: str | None
    kind: str                       # model.kind: classifier | dpo | dpo-ref-free | plugin:NAME
    ref_model: str | None
    dtype: str
    architecture: str
    n_parameters: int
    chat_template_sha256: str | None
    head: str                       # trained | seeded (a seeded head is rebuilt from run.seed)
    input_format: str | None        # how texts were rendered (chat_template, text_pair, ...), if recorded
    device: str                     # run.device, e.g. "cpu:x86_64:8 threads" or "cuda:NVIDIA H100"
    max_length: int
    batch_size: int | str
    seed: int
    attn_implementation: str | None
    trust_remote_code: bool
    allow_pickle: bool
    split: str
    prompt_sets_sha256: str


def recorded_run(doc: dict) -> RecordedRun:
    model, run, bench = doc["model"], doc["run"], doc["benchmark"]
    return RecordedRun(
        model_id=model["id"], revision=model.get("revision"), kind=model["kind"], ref_model=model.get("ref_model"),
        dtype=model["dtype"], architecture=model["architecture"], n_parameters=int(model["n_parameters"]),
        chat_template_sha256=model.get("chat_template_sha256"), head=model.get("head", "trained"),
        input_format=model.get("input_format"),
        device=run["device"], max_length=int(run["max_length"]), batch_size=run["batch_size"],
        seed=int(run["seed"]), attn_implementation=run.get("attn_implementation"),
        trust_remote_code=bool(run.get("trust_remote_code")), allow_pickle=bool(run.get("allow_pickle")),
        split=bench["split"], prompt_sets_sha256=bench["prompt_sets_sha256"])


# --- the sample ------------------------------------------------------------------------------

def sample_seed(raw: bytes, salt: str = "") -> str:
    """16 hex digits of sha256 over the file's bytes (then over that digest and the salt)."""
    digest = hashlib.sha256(raw).hexdigest()
    if salt:
        digest = hashlib.sha256(f"{digest}:{salt}".encode("utf-8")).hexdigest()
    return digest[:16]


def _rank(seed: str, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode("utf-8")).hexdigest()


def allocate(sizes: Mapping[str, int], size: int, seed: str) -> dict[str, int]:
    """Pairs to draw per stratum: one each while `size` allows, the rest in proportion to what is
    left of each stratum (largest remainders, ties by key); all of them when `size` covers all."""
    if size >= sum(sizes.values()):
        return dict(sizes)
    if size < len(sizes):   # fewer draws than strata: the strata the seed ranks first get one
        first = set(sorted(sizes, key=lambda k: _rank(seed, k))[:size])
        return {k: int(k in first) for k in sizes}
    spare = {k: n - 1 for k, n in sizes.items()}
    rest, spare_total = size - len(sizes), sum(spare.values())
    exact = {k: rest * spare[k] / spare_total for k in sizes}
    quota = {k: 1 + math.floor(exact[k]) for k in sizes}
    leftover = size - sum(quota.values())
    for k in sorted(sizes, key=lambda k: (-(exact[k] - math.floor(exact[k])), k))[:leftover]:
        quota[k] += 1
    return quota


def draw_sample(pairs: Sequence[Pair], size: int, seed: str) -> list[Pair]:
    """`size` pairs stratified by metric key (subset; borderline by pair type); within a stratum the
    pairs whose sha256(seed:id) ranks first. Deterministic for a seed, by id."""
    strata: dict[str, list[Pair]] = {}
    for pair in pairs:
        strata.setdefault(pair.metric_key, []).append(pair)
    quota = allocate({key: len(members) for key, members in strata.items()}, size, seed)
    drawn = [p for key, members in strata.items()
             for p in sorted(members, key=lambda p: _rank(seed, p.id))[:quota[key]]]
    return sorted(drawn, key=lambda p: p.id)


# --- comparing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mismatch:
    id: str
    side: str                   # "chosen" | "rejected"
    recorded: float
    rescored: float


def reward_scale(rewards: Sequence[float]) -> float:
    """Standard deviation of the re-scored rewards (0 for fewer than two finite ones)."""
    finite = [r for r in rewards if math.isfinite(r)]
    if len(finite) < 2:
        return 0.0
    mean = sum(finite) / len(finite)
    return math.sqrt(sum((r - mean) ** 2 for r in finite) / len(finite))


def compare(recorded: Mapping[str, tuple[float, float]], rescored: Mapping[str, tuple[float, float]],
            ids: Sequence[str], tolerance: Tolerance) -> tuple[list[Mismatch], float]:
    """Every reward outside the tolerance, in `ids` order, and the largest absolute difference."""
    mismatches, largest = [], 0.0
    scale = reward_scale([r for pair_id in ids for r in rescored[pair_id]])
    for pair_id in ids:
        for side, old, new in zip(("chosen", "rejected"), recorded[pair_id], rescored[pair_id]):
            difference = abs(old - new)
            largest = max(largest, difference) if not math.isnan(difference) else math.inf
            if not tolerance.allows(old, new, scale):
                mismatches.append(Mismatch(pair_id, side, old, new))
    return mismatches, largest


def model_mismatch(info: ModelInfo, run: RecordedRun) -> str | None:
    """The first fact of the file's `model` block the loaded model contradicts."""
    for name, recorded, loaded in (
            ("kind", run.kind, info.kind), ("architecture", run.architecture, info.architecture),
            ("n_parameters", run.n_parameters, info.n_parameters), ("dtype", run.dtype, info.dtype),
            ("chat_template_sha256", run.chat_template_sha256, info.chat_template_sha256),
            ("head", run.head, info.head),
            ("input_format", run.input_format, getattr(info, "input_format", None))):
        if recorded != loaded and not (name == "input_format" and recorded is None):
            return f"model.{name} is {recorded!r} in the file, {loaded!r} in the model loaded"
    return None


@dataclass(frozen=True)
class Verification:
    path: str
    n_pairs: int
    sample: tuple[str, ...]         # the sampled pair ids, sorted
    seed: str
    tolerance: Tolerance | None
    largest_difference: float = 0.0
    mismatches: tuple[Mismatch, ...] = ()
    problem: str | None = None      # the model loaded is not the one the file describes

    @property
    def ok(self) -> bool:
        return self.problem is None and not self.mismatches

    def line(self) -> str:
        if self.problem is not None:
            return f"{self.path}: NOT verified: {self.problem}"
        if self.ok:
            return (f"{self.path}: verified: {len(self.sample)} of {self.n_pairs} pairs re-scored (sample seed "
                    f"{self.seed}), largest difference {self.largest_difference:.2g}, within the "
                    f"{self.tolerance.describe()}")
        named, seen = [], set()
        for m in self.mismatches:
            if m.id not in seen and len(named) < NAMED_MISMATCHES:
                seen.add(m.id)
                named.append(f"{m.id} {m.side} {m.recorded:.6g} in the file, {m.rescored:.6g} re-scored")
        pairs = len({m.id for m in self.mismatches})
        return (f"{self.path}: NOT verified: {pairs} of {len(self.sample)} sampled pairs (of {self.n_pairs}; "
                f"sample seed {self.seed}) disagree beyond the "
                f"{self.tolerance.describe()}: " + "; ".join(named))


# --- the run ---------------------------------------------------------------------------------

@dataclass
class VerifyOptions:
    file: Path
    model: str
    revision: str | None = None         # default: the file's model.revision
    sample: int = DEFAULT_SAMPLE
    kind: str | None = None             # default: from the file's model.kind
    ref_model: str | None = None        # default: the file's model.ref_model (a Hub id)
    device: str = "auto"
    batch_size: int | str | None = None  # default: the file's run.batch_size
    device_map: str | None = None
    trust_remote_code: bool = False     # never taken from the file: the maintainer decides
    allow_pickle: bool = False
    salt: str = ""
    data_dir: Path | None = None
    progress: bool = True


def read_document(path: Path) -> tuple[bytes, dict]:
    """The file's bytes (the seed) and its document, checked against the results schema."""
    from benchmark.results import schema_errors
    from benchmark.validate import MAX_FILE_BYTES

    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise BenchmarkError(f"{path} is over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit")
        raw = path.read_bytes()
        doc = loads_strict(raw.decode("utf-8"))
    except OSError as exc:
        raise BenchmarkError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, StrictJSONError, ValueError, RecursionError) as exc:
        raise BenchmarkError(f"{path} is not a results document ({type(exc).__name__}: {str(exc)[:100]})") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        version = doc.get("schema_version") if isinstance(doc, dict) else None
        raise BenchmarkError(f"{path}: schema_version {version!r} is not {SCHEMA_VERSION}; "
                             "verify it with the tension-bench version that wrote it")
    errors = schema_errors(doc)
    if errors:
        raise BenchmarkError(f"{path}: schema: {errors[0]}")
    return raw, doc


def pairs_of(doc: dict, data_dir: Path | None = None) -> list[Pair]:
    """The prompt-set pairs behind the file's items, after checking that they are the texts the file
    was scored on (its fingerprint covers exactly its items, also for a --limit run)."""
    split = doc["benchmark"]["split"]
    by_id = {p.id: p for p in load_pairs(split, data_dir)}
    ids = [item["id"] for item in doc["items"]]
    if len(set(ids)) != len(ids):
        raise BenchmarkError("items: a pair appears twice")
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise BenchmarkError(f"items: {unknown[0]} is not a pair of this tension-bench's {split} split")
    pairs = [by_id[i] for i in ids]
    if prompt_sets_sha256(pairs) != doc["benchmark"]["prompt_sets_sha256"]:
        raise BenchmarkError("benchmark.prompt_sets_sha256 does not match this tension-bench's texts for the "
                             f"file's items; verify with the version that scored it ({doc['benchmark']['version']})")
    return pairs


def adapter_settings(run: RecordedRun, opts: VerifyOptions) -> dict:
    """load_adapter's arguments: the file's settings; only what cannot be recorded (local paths)
    or must stay the maintainer's decision (remote code, pickle) comes from the options."""
    for flag, recorded, given in (("--trust-remote-code", run.trust_remote_code, opts.trust_remote_code),
                                  ("--allow-pickle", run.allow_pickle, opts.allow_pickle)):
        if recorded and not given:
            raise BenchmarkError(f"the file was scored with {flag}; pass {flag} if you trust {opts.model} "
                                 "(verify never takes it from the file)")
    kind = opts.kind or ("dpo" if run.kind in ("dpo", "dpo-ref-free") else run.kind)
    ref_free = kind == "dpo" and run.kind == "dpo-ref-free"
    ref_model = None
    if kind == "dpo" and not ref_free:
        ref_model = opts.ref_model or run.ref_model
        if not ref_model or ref_model.startswith("local/"):
            raise BenchmarkError(f"the file's reference model {run.ref_model!r} is not a Hub id; "
                                 "pass --ref-model PATH")
    return dict(kind=kind, model_id=run.model_id, revision=opts.revision or run.revision, device=opts.device,
                dtype=run.dtype, trust_remote_code=opts.trust_remote_code, allow_pickle=opts.allow_pickle,
                attn_implementation=run.attn_implementation, ref_model=ref_model, ref_free=ref_free,
                seed=run.seed, device_map=opts.device_map,
                **({"seeded_head": True} if run.head == "seeded" else {}))


def rescore(adapter, pairs: Sequence[Pair], max_length: int, batch_size: int | str,
            progress: bool) -> dict[str, tuple[float, float]]:
    """Both rewards of each pair, through the engine evaluate uses."""
    from benchmark.engine import score_pairs

    return score_pairs(adapter, pairs, max_length, batch_size, progress=progress, desc="re-scoring").rewards


def run_verification(opts: VerifyOptions) -> Verification:
    from benchmark.models import load_adapter

    path = Path(opts.file)
    raw, doc = read_document(path)
    run = recorded_run(doc)
    settings = adapter_settings(run, opts)
    pairs = pairs_of(doc, opts.data_dir)
    seed = sample_seed(raw, opts.salt)
    sample = draw_sample(pairs, opts.sample, seed)
    ids = tuple(p.id for p in sample)
    adapter = load_adapter(opts.model, **settings)
    tolerance = tolerance_for(run.dtype, run.device, adapter.device.type)
    problem = model_mismatch(adapter.info, run)
    if problem is not None:
        return Verification(str(path), len(pairs), ids, seed, tolerance,
                            problem=f"the model loaded is not the one the file describes: {problem}")
    rescored = rescore(adapter, sample, run.max_length, opts.batch_size or run.batch_size, opts.progress)
    recorded = {item["id"]: (float(item["chosen"]), float(item["rejected"])) for item in doc["items"]}
    mismatches, largest = compare(recorded, rescored, ids, tolerance)
    return Verification(str(path), len(pairs), ids, seed, tolerance, largest, tuple(mismatches))
