"""Validation of results documents: size, encoding, strict JSON, schema, file name, fingerprint,
items, and recomputation of every score and probe summary from what the document holds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from benchmark import SCHEMA_VERSION
from benchmark import probe_stats as ps
from benchmark.data import Pair, load_pairs, prompt_sets_sha256
from benchmark.errors import BenchmarkError
from benchmark.jsonio import StrictJSONError, loads_strict
from benchmark.metrics import compute_scores
from benchmark.ids import is_valid_model_id, submission_name
from benchmark.results import schema_errors

MAX_FILE_BYTES = 10 * 1024 * 1024
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Verdict:
    path: str
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        return f"{self.path}: {'OK' if self.ok else self.problem}"


def shipped_split(split: str, data_dir: str | None) -> tuple[tuple[Pair, ...], str]:
    pairs = tuple(load_pairs(split, Path(data_dir) if data_dir else None))
    return pairs, prompt_sets_sha256(pairs)


class ShippedSplits:
    """The shipped prompt sets one validation run checks against, loaded at most once per split.
    The caller owns it (one per CLI call or leaderboard load), so a long-running process never
    checks against prompt sets it read before they changed."""

    def __init__(self, data_dir: str | None = None):
        self.data_dir = data_dir
        self._loaded: dict[str, tuple[tuple[Pair, ...], str]] = {}

    def get(self, split: str) -> tuple[tuple[Pair, ...], str]:
        if split not in self._loaded:
            self._loaded[split] = shipped_split(split, self.data_dir)
        return self._loaded[split]


def _compare(expected: Any, found: Any, path: str) -> str | None:
    """First place where `found` (from the file) differs from `expected` (recomputed)."""
    if isinstance(expected, dict):
        if not isinstance(found, dict):
            return f"{path} should be an object"
        for key in expected:
            if key not in found:
                return f"{path}.{key} is missing"
        for key in found:
            if key not in expected:
                return f"{path}.{key} is not a recomputable field"
        for key in expected:
            problem = _compare(expected[key], found[key], f"{path}.{key}")
            if problem:
                return problem
        return None
    if isinstance(expected, (list, tuple)):
        if not isinstance(found, list) or len(found) != len(expected):
            return f"{path} has the wrong shape"
        for i, (e, f) in enumerate(zip(expected, found)):
            problem = _compare(e, f, f"{path}[{i}]")
            if problem:
                return problem
        return None
    if expected is None or found is None:
        return None if expected is found else f"{path}: {found!r} in the file, recomputed {expected!r}"
    if isinstance(expected, bool) or isinstance(found, bool):
        return None if expected == found else f"{path}: {found!r} in the file, recomputed {expected!r}"
    if isinstance(expected, (int, float)):
        if not isinstance(found, (int, float)) or not math.isfinite(found) or abs(expected - found) > TOLERANCE:
            return f"{path}: {found!r} in the file, recomputed {expected!r}"
        return None
    return None if expected == found else f"{path}: {found!r} in the file, recomputed {expected!r}"


def _interval_problem(where: str, value, interval, cosine: bool = False) -> str | None:
    """A CI must sit with its estimate: null together, lo ≤ hi, and the estimate inside. For a
    cosine of resampled means the percentile interval is shrunk towards 0 (each resample adds noise
    to both means, which inflates their norms), so there the estimate may also lie beyond the
    interval on the side away from 0, never between it and 0 or on the other side."""
    if value is None:
        return None if interval is None else f"{where}_ci95 is set but {where} is null"
    if interval is None:
        return None
    lo, hi = interval
    inside = lo - TOLERANCE <= value <= hi + TOLERANCE
    beyond = cosine and ((value > hi and value > 0) or (value < lo and value < 0))
    if lo > hi or not (inside or beyond):
        return f"{where}_ci95 {interval} does not hold its estimate {value!r}"
    return None


def _recomputed(where: str, found, expected) -> str | None:
    if expected is None or found is None:
        return None if expected is found else f"{where}: {found!r} in the file, recomputed {expected!r}"
    if abs(found - expected) > TOLERANCE:
        return f"{where}: {found!r} in the file, recomputed {expected!r}"
    return None


def _check_effects(where: str, entry: dict, baseline: dict) -> str | None:
    for side in ("helpful", "harmless"):
        effect = entry[side]
        problem = _interval_problem(f"{where}.{side}.margin_effect", effect["margin_effect"],
                                    effect["margin_effect_ci95"]) or _recomputed(
            f"{where}.{side}.accuracy_delta", effect["accuracy_delta"],
            effect["accuracy"] - baseline[side]["accuracy"])
        if problem:
            return problem
    return None


def _check_depths(probe: dict) -> str | None:
    n_blocks = probe["n_blocks"]
    plan = [(d.layer, list(d.rhos), d.readout, d.in_tension_index) for d in ps.depth_plan(n_blocks)]
    found = [(d["layer"], d["rhos"], d["readout"], d["in_tension_index"]) for d in probe["depths"]]
    if found != plan:
        return (f"probe.depths: layers {[d[0] for d in found]} are not the distinct layers of the nine "
                f"depths for L={n_blocks}")
    for d in probe["depths"]:
        where = f"probe.depths[layer {d['layer']}]"
        problem = (_recomputed(f"{where}.rho", d["rho"], d["layer"] / n_blocks)
                   or _interval_problem(f"{where}.direction_cosine", d["direction_cosine"], d["direction_cosine_ci95"],
                                        cosine=True)
                   or _interval_problem(f"{where}.raw_cosine", d["raw_cosine"], d["raw_cosine_ci95"], cosine=True))
        if problem:
            return problem
    late = [d["direction_cosine"] for d in probe["depths"] if d["in_tension_index"]]
    expected = -sum(late) / len(late) if late and all(c is not None for c in late) else None
    problem = _recomputed("probe.tension_index (minus the mean direction_cosine over the tension layers)",
                          probe["tension_index"], expected)
    interval = probe["tension_index_ci95"]
    if problem is None and interval is not None and (probe["tension_index"] is None or interval[0] > interval[1]):
        # a mean of cosines each shrunk by its own factor: only its order is checkable
        problem = "probe.tension_index_ci95 is not an interval [lo, hi] beside its estimate"
    return problem


def _check_neurons(probe: dict) -> str | None:
    neurons, units_per_block = probe["neurons"], probe["units_per_block"]
    total = probe["total_units"]
    k_per_block = [ps.block_k(m) for m in units_per_block]
    blocks = [(b["block"], b["units"], b["k"]) for b in neurons["per_block"]]
    if blocks != [(i, m, k) for i, (m, k) in enumerate(zip(units_per_block, k_per_block))]:
        return "probe.neurons.per_block does not list every block with k_b = max(1, ceil(0.005 m_b))"
    if neurons["k"] != sum(k_per_block):
        return f"probe.neurons.k: {neurons['k']} in the file, sum of k_b is {sum(k_per_block)}"
    sets = {}
    for side in ("helpful", "harmless"):
        units = neurons[side]
        if units != sorted(set(units)) or any(u >= total for u in units):
            return f"probe.neurons.{side} must list distinct unit indices below total_units, sorted"
        sets[side] = np.array(units, dtype=np.int64)
        if ps.per_block_counts(sets[side], units_per_block) != k_per_block:
            return f"probe.neurons.{side} does not hold k_b units in every block"
    shared = np.intersect1d(sets["helpful"], sets["harmless"])
    counts = ps.per_block_counts(shared, units_per_block)
    if [b["helpful"] for b in neurons["per_block"]] != k_per_block or [b["harmless"] for b in neurons["per_block"]] \
            != k_per_block or [b["shared"] for b in neurons["per_block"]] != counts:
        return "probe.neurons.per_block counts do not match the neuron sets"
    summary = ps.overlap_summary(sets["helpful"], sets["harmless"], units_per_block, k_per_block)
    if neurons["shared"] != summary.overlap:
        return f"probe.neurons.shared: {neurons['shared']} in the file, the sets share {summary.overlap}"
    for key in ("shared_fraction", "jaccard", "expected_overlap", "jaccard_chance", "jaccard_chance_corrected",
                "overlap_p"):
        problem = _recomputed(f"probe.neurons.{key}", neurons[key], getattr(summary, key))
        if problem:
            return problem
    return None


def _check_ablations(probe: dict) -> str | None:
    ablations, neurons = probe["ablations"], probe["neurons"]
    baseline = ablations["baseline"]
    names = [c["name"] for c in ablations["conditions"]]
    expected_names = ["helpful_neurons", "harmless_neurons"] + (["shared_neurons"] if neurons["shared"] else [])
    if names != expected_names:
        return (f"probe.ablations.conditions must be {', '.join(expected_names)} "
                "(shared_neurons exactly when the sets overlap)")
    conditions = {c["name"]: c for c in ablations["conditions"]}
    sizes = {"helpful_neurons": neurons["k"], "harmless_neurons": neurons["k"], "shared_neurons": neurons["shared"]}
    for c in ablations["conditions"]:
        if c["units"] != sizes[c["name"]]:
            return f"probe.ablations: {c['name']} ablates {c['units']} units, its set has {sizes[c['name']]}"
        problem = _check_effects(f"probe.ablations.{c['name']}", c, baseline)
        if problem:
            return problem
    method, null = ablations["null_method"], ablations["null"]
    linear = method == "attribution"
    if null["sets"] < (ps.NULL_SETS if linear else ps.EXACT_NULL_SETS):
        return f"probe.ablations.null: {null['sets']} random sets are too few for null_method {method}"
    if not linear and (ablations["attribution_r"] is not None or ablations["dose"] is not None
                       or ablations["interference_linear"] is not None):
        return "probe.ablations: an exact null has no attribution_r, interference_linear or dose curve"
    effects = (conditions["helpful_neurons"]["harmless"]["margin_effect"],
               conditions["harmless_neurons"]["helpful"]["margin_effect"])
    expected = None
    if None not in effects and null["helpful_mean"] is not None and null["harmless_mean"] is not None:
        expected = ((effects[0] - null["harmless_mean"]) + (effects[1] - null["helpful_mean"])) / 2
    problem = _recomputed("probe.ablations.interference", ablations["interference"], expected)
    if problem:
        return problem
    p_value = ablations["interference_p"]
    if (p_value is None) != (ablations["interference"] is None) or \
            (p_value is not None and p_value < 1 / (null["sets"] + 1) - TOLERANCE):
        return "probe.ablations.interference_p must be set with interference, and at least 1/(sets + 1)"
    if linear:
        dose = ablations["dose"] or []
        fractions = [float(f) for f in ps.DOSE_FRACTIONS]
        if [d["fraction"] for d in dose] != fractions:
            return "probe.ablations.dose must hold the fractions 0.005, 0.02 and 0.1"
        for d, fraction in zip(dose, ps.DOSE_FRACTIONS):
            if d["units"] != sum(ps.block_k(m, fraction) for m in probe["units_per_block"]):
                return f"probe.ablations.dose[{d['fraction']}].units is not the sum of k_b at that fraction"
            if d["interference_p"] is not None and d["interference_p"] < 1 / (null["sets"] + 1) - TOLERANCE:
                return f"probe.ablations.dose[{d['fraction']}].interference_p is below 1/(sets + 1)"
    return None


def _check_paper(probe: dict) -> str | None:
    paper = probe["paper"]
    if paper is None:
        return None
    total = probe["total_units"]
    if paper["units_per_block"] != probe["units_per_block"] or paper["total_units"] != total:
        return "probe.paper: its unit layout differs from the probe's"
    if paper["k"] != ps.paper_k(total):
        return f"probe.paper.k: {paper['k']} in the file, 10% of {total} units is {ps.paper_k(total)}"
    sets = {}
    for side in ("helpful", "harmless"):
        try:
            sets[side] = ps.unpack_units(paper[f"{side}_set"], total)
        except ValueError as exc:
            return f"probe.paper.{side}_set is not a bitmap of {total} units ({exc})"
        if len(sets[side]) != paper["k"]:
            return f"probe.paper.{side}_set holds {len(sets[side])} units, not k = {paper['k']}"
    overlap = ps.set_overlap(sets["helpful"], sets["harmless"], total)
    if paper["overlap"] != overlap.overlap:
        return f"probe.paper.overlap: {paper['overlap']} in the file, the sets share {overlap.overlap}"
    for key in ("jaccard", "jaccard_chance", "jaccard_chance_corrected"):
        problem = _recomputed(f"probe.paper.{key}", paper[key], getattr(overlap, key))
        if problem:
            return problem
    conditions = paper["ablations"]["conditions"]
    if [c["name"] for c in conditions] != ["helpful_set", "harmless_set"] or \
            any(c["units"] != paper["k"] for c in conditions):
        return "probe.paper.ablations: conditions must be helpful_set and harmless_set, k units each"
    for c in conditions:
        problem = _check_effects(f"probe.paper.ablations.{c['name']}", c, paper["ablations"]["baseline"])
        if problem:
            return problem
    return None


def check_probe(probe: dict) -> str | None:
    """Internal consistency of the probe block (version 2; its ranges are in the schema): every
    number that can be recomputed from the others is, and every CI sits with its estimate."""
    if probe["n_blocks"] != len(probe["units_per_block"]) or sum(probe["units_per_block"]) != probe["total_units"]:
        return "probe.units_per_block does not cover total_units over n_blocks"
    problem = _check_depths(probe)
    if problem:
        return problem
    detail = probe["transfer_detail"]
    parts = [detail["helpful_to_harmless"], detail["harmless_to_helpful"]]
    problem = (_recomputed("probe.transfer (the mean of transfer_detail)", probe["transfer"],
                           None if None in parts else sum(parts) / 2)
               or _interval_problem("probe.transfer", probe["transfer"], probe["transfer_ci95"])
               or _interval_problem("probe.transfer_detail.helpful_to_harmless", parts[0],
                                    detail["helpful_to_harmless_ci95"])
               or _interval_problem("probe.transfer_detail.harmless_to_helpful", parts[1],
                                    detail["harmless_to_helpful_ci95"]))
    for name in ("gradient_conflict", "gradient_conflict_rotation", "refusal_flip"):
        problem = problem or _interval_problem(f"probe.{name}", probe[name], probe[f"{name}_ci95"], cosine=True)
    return problem or _check_neurons(probe) or _check_ablations(probe) or _check_paper(probe)


def check_document(doc: Any, data_dir: str | None = None, splits: ShippedSplits | None = None) -> str | None:
    """The first problem with an in-memory document, or None when it is valid."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        return (f"schema_version {version!r} is not supported (this validator reads {SCHEMA_VERSION}); "
                "re-run tension-bench evaluate")
    errors = schema_errors(doc)
    if errors:
        return f"schema: {errors[0]}"
    model_id = doc["model"]["id"]
    if not is_valid_model_id(model_id):
        return f"model.id {model_id!r} is not a valid Hub repo id"
    if model_id.startswith("local/"):
        return (f"model.id {model_id!r} is a local folder's id; re-run evaluate with --model-id ORG/NAME "
                "to name the model a submission is filed under")
    if not doc["benchmark"]["complete"]:
        return "a partial run (--limit/--subsets) is not a submission; evaluate the whole split"
    if doc["model"].get("head") == "seeded":
        return "model.head is 'seeded': a random head's rewards mean nothing and are not a submission"
    split = doc["benchmark"]["split"]
    try:
        pairs, fingerprint = (splits or ShippedSplits(data_dir)).get(split)
    except BenchmarkError as exc:
        return f"cannot load the shipped {split} split: {exc}"
    if doc["benchmark"]["prompt_sets_sha256"] != fingerprint:
        return (f"benchmark.prompt_sets_sha256 is not the shipped {split} prompt-set version "
                "(a partial --limit/--subsets run, or an outdated benchmark)")
    seen: dict[str, dict] = {}
    for item in doc["items"]:
        if item["id"] in seen:
            return f"items: {item['id']} appears twice"
        seen[item["id"]] = item
    known = {p.id for p in pairs}
    unknown = sorted(set(seen) - known)
    if unknown:
        return f"items: {unknown[0]} is not an item of the {split} split"
    missing = sorted(known - set(seen))
    if missing:
        return f"items: {missing[0]} is missing ({len(missing)} missing in all)"
    if doc["benchmark"]["n_pairs"] != len(pairs):
        return f"benchmark.n_pairs: {doc['benchmark']['n_pairs']} in the file, {len(pairs)} items"
    for item in doc["items"]:
        if not (math.isfinite(item["chosen"]) and math.isfinite(item["rejected"])):
            return f"items: {item['id']} has a non-finite reward"
    rewards = {i["id"]: (float(i["chosen"]), float(i["rejected"])) for i in doc["items"]}
    problem = _compare(compute_scores(list(pairs), rewards), doc["scores"], "scores")
    if problem:
        return problem
    if doc["probe"] is not None:
        return check_probe(doc["probe"])
    return None


def validate_file(path: Path, data_dir: str | None = None, require_name: bool = False,
                  splits: ShippedSplits | None = None) -> Verdict:
    """Never raises for a bad file: every problem becomes the verdict's one line."""
    shown = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return Verdict(shown, f"file is {size / 1e6:.1f} MB, over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit")
        raw = path.read_bytes()
    except OSError as exc:
        return Verdict(shown, f"cannot read: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Verdict(shown, f"not UTF-8 (byte {exc.start})")
    try:
        doc = loads_strict(text)
    except StrictJSONError as exc:
        return Verdict(shown, f"invalid JSON: {exc}")
    except ValueError as exc:
        return Verdict(shown, f"malformed JSON: {str(exc).splitlines()[0]}")
    except RecursionError:
        return Verdict(shown, "malformed JSON: nested too deeply")
    try:
        problem = check_document(doc, data_dir, splits)
    except RecursionError:
        problem = "document nested too deeply"
    except Exception as exc:  # the validator must never crash on hostile input
        problem = f"could not be checked ({type(exc).__name__}: {str(exc)[:120]})"
    if problem is None and require_name:
        expected = submission_name(doc["model"]["id"])
        if path.name != expected:
            problem = f"file name must be {expected} for model.id {doc['model']['id']!r}"
    return Verdict(shown, problem)


def collect_files(paths: Iterable[str | Path]) -> list[tuple[Path, bool]]:
    """Expand folders into their *.json files; files found in a folder must be named after model.id."""
    found: list[tuple[Path, bool]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend((p, True) for p in sorted(path.glob("*.json")) if not p.is_symlink())
        elif path.exists():
            found.append((path, True))   # the same checks as CI's folder run, file name included
        else:
            raise BenchmarkError(f"{path} does not exist")
    return found
