"""Validation of results documents: size, encoding, strict JSON, schema, file name, fingerprint,
items, and recomputation of every score and probe summary from what the document holds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from benchmark import SCHEMA_VERSION
from benchmark.data import Pair, load_pairs, prompt_sets_sha256
from benchmark.errors import BenchmarkError
from benchmark.jsonio import StrictJSONError, loads_strict
from benchmark.metrics import compute_scores
from benchmark.ids import is_valid_model_id, submission_name
from benchmark.results import schema_errors

MAX_FILE_BYTES = 10 * 1024 * 1024
TOLERANCE = 1e-6
RHOS = [k / 8 for k in range(9)]
LATE_RHOS = (0.5, 0.625, 0.75, 0.875, 1.0)


@dataclass(frozen=True)
class Verdict:
    path: str
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        return f"{self.path}: {'OK' if self.ok else self.problem}"


@lru_cache(maxsize=8)
def shipped_split(split: str, data_dir: str | None) -> tuple[tuple[Pair, ...], str]:
    pairs = tuple(load_pairs(split, Path(data_dir) if data_dir else None))
    return pairs, prompt_sets_sha256(pairs)


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


def check_probe(probe: dict) -> str | None:
    """Shape and internal consistency of the probe block (its ranges are in the schema)."""
    depths = probe["depths"]
    if [d["rho"] for d in depths] != RHOS:
        return "probe.depths: depths must be the fixed nine (0, 0.125, ..., 1)"
    layers = [d["layer"] for d in depths]
    if layers[0] != 0 or layers[-1] != probe["n_blocks"] or layers != sorted(layers):
        return f"probe.depths: layers {layers} do not map 0..{probe['n_blocks']} in order"
    late = [d["direction_cosine"] for d in depths if d["rho"] in LATE_RHOS]
    if probe["tension_index"] is not None:
        if any(c is None for c in late):
            return "probe.tension_index is set but a late-depth direction_cosine is null"
        if abs(-sum(late) / len(late) - probe["tension_index"]) > TOLERANCE:
            return "probe.tension_index does not equal minus the mean late-depth direction_cosine"
    detail = probe["transfer_detail"]
    parts = [detail.get("helpful_to_harmless"), detail.get("harmless_to_helpful")]
    if probe["transfer"] is not None:
        if any(p is None for p in parts) or abs(sum(parts) / 2 - probe["transfer"]) > TOLERANCE:
            return "probe.transfer is not the mean of transfer_detail"
    neurons, total = probe["neurons"], probe["total_units"]
    k = neurons["k"]
    helpful, harmless = set(neurons["helpful"]), set(neurons["harmless"])
    if len(neurons["helpful"]) != k or len(neurons["harmless"]) != k:
        return "probe.neurons: helpful and harmless must each list k units"
    if k > total or any(u >= total for u in helpful | harmless):
        return "probe.neurons: unit index beyond total_units"
    shared = len(helpful & harmless)
    p = k / total
    expected = {
        "shared": shared, "shared_fraction": shared / k, "jaccard": shared / len(helpful | harmless),
        "jaccard_chance": p / (2 - p),
    }
    expected["jaccard_chance_corrected"] = (expected["jaccard"] - expected["jaccard_chance"]) / (1 - expected["jaccard_chance"])
    for key, value in expected.items():
        if abs(neurons[key] - value) > TOLERANCE:
            return f"probe.neurons.{key}: {neurons[key]!r} in the file, recomputed {value!r}"
    blocks = neurons["per_block"]
    if sum(b["units"] for b in blocks) != total or len(blocks) != probe["n_blocks"]:
        return "probe.neurons.per_block does not cover total_units over n_blocks"
    if sum(b["helpful"] for b in blocks) != k or sum(b["harmless"] for b in blocks) != k \
            or sum(b["shared"] for b in blocks) != shared:
        return "probe.neurons.per_block counts do not add up to the neuron sets"
    ablations = probe["ablations"]
    base = ablations["baseline"]
    conditions = {c["name"]: c for c in ablations["conditions"]}
    for c in ablations["conditions"]:
        for side in ("helpful", "harmless"):
            if abs(c[f"{side}_accuracy"] - base[f"{side}_accuracy"] - c[f"{side}_delta"]) > TOLERANCE:
                return f"probe.ablations: {c['name']} {side}_delta is not accuracy minus baseline"
    if not {"helpful_neurons", "harmless_neurons", "random"} <= set(conditions):
        return "probe.ablations: conditions must include helpful_neurons, harmless_neurons and random"
    if ("shared_neurons" in conditions) != (shared > 0):
        return "probe.ablations: a shared_neurons condition exists exactly when the sets overlap"
    rand = conditions["random"]
    interference = ((conditions["helpful_neurons"]["harmless_delta"] - rand["harmless_delta"])
                    + (conditions["harmless_neurons"]["helpful_delta"] - rand["helpful_delta"])) / 2
    if abs(interference - ablations["interference"]) > TOLERANCE:
        return f"probe.ablations.interference: {ablations['interference']!r} in the file, recomputed {interference!r}"
    return None


def check_document(doc: Any, data_dir: str | None = None) -> str | None:
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
        pairs, fingerprint = shipped_split(split, data_dir)
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


def validate_file(path: Path, data_dir: str | None = None, require_name: bool = False) -> Verdict:
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
        problem = check_document(doc, data_dir)
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
