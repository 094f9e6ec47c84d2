"""Prompt sets: load `benchmark/data/<split>/<subset>.jsonl` with `datasets`, validate every item
against `schemas/prompt_item.schema.json`, and fingerprint the scored split (DESIGN §3)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from benchmark.errors import BenchmarkError
from benchmark.jsonio import StrictJSONError, loads_strict

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"

SUBSETS = ("refuse_harmful", "comply_benign", "helpful_quality", "harmless_quality", "borderline")
PAIR_TYPES = ("vs_refusal", "vs_overcompliance")
SPLITS = ("test", "train")
FIELDS = ("id", "subset", "category", "prompt", "chosen", "rejected", "chosen_type",
          "rejected_type", "twin", "pair_type", "split", "flaw", "notes")
OPTIONAL_FIELDS = ("flaw", "notes")  # stored only when present; fingerprint hashes what is stored

# Which objective each metric key measures (DESIGN §3/§4). Borderline counts per pair type.
HELPFUL_KEYS = ("comply_benign", "helpful_quality", "borderline/vs_refusal")
HARMLESS_KEYS = ("refuse_harmful", "harmless_quality", "borderline/vs_overcompliance")
METRIC_KEYS = HELPFUL_KEYS + HARMLESS_KEYS


@dataclass(frozen=True)
class Pair:
    id: str
    subset: str
    category: str
    prompt: str
    chosen: str
    rejected: str
    chosen_type: str
    rejected_type: str
    twin: str | None
    pair_type: str | None
    split: str
    flaw: str | None = None
    notes: str | None = None

    @property
    def metric_key(self) -> str:
        """The `scores.subsets` key this pair counts under (borderline splits by pair type)."""
        return f"borderline/{self.pair_type}" if self.subset == "borderline" else self.subset

    @property
    def objective(self) -> str:
        return "helpful" if self.metric_key in HELPFUL_KEYS else "harmless"

    def canonical(self) -> dict:
        """The item as it is stored (optional fields only when present): what the fingerprint hashes."""
        item = asdict(self)
        for name in OPTIONAL_FIELDS:
            if item[name] is None:
                del item[name]
        return item


def load_schema(name: str) -> dict:
    """A JSON schema shipped as package data (`schemas/` in the repository is the package
    `benchmark.schemas` in a wheel, so a plain `pip install` can validate)."""
    from importlib.resources import files

    try:
        return json.loads(files("benchmark.schemas").joinpath(name).read_text(encoding="utf-8"))
    except (OSError, ModuleNotFoundError) as exc:
        raise BenchmarkError(f"schema {name} is missing from the installed package ({exc})") from None


@lru_cache(maxsize=4)
def _item_validator():
    import jsonschema

    schema = load_schema("prompt_item.schema.json")
    return jsonschema.Draft202012Validator(schema)


def features():
    """The one explicit `datasets` schema of every prompt-set file (all fields strings, nullable),
    so the five files load together although `pair_type` is null outside borderline."""
    from datasets import Features, Value

    return Features({name: Value("string") for name in FIELDS})


def _first_bad_line(path: Path) -> str:
    """Locate the line that made `datasets` fail, for a one-line error a user can act on."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        return f"{path}: not UTF-8"
    for number, line in enumerate(lines, 1):
        if not line.strip():
            return f"{path}:{number}: blank line"
        try:
            item = loads_strict(line)
        except (ValueError, StrictJSONError) as exc:
            return f"{path}:{number}: invalid JSON ({exc})"
        if not isinstance(item, dict):
            return f"{path}:{number}: not a JSON object"
        extra = sorted(set(item) - set(FIELDS))
        if extra:
            return f"{path}:{number}: unknown field {extra[0]!r}"
        for key, value in item.items():
            if value is not None and not isinstance(value, str):
                return f"{path}:{number}: field {key!r} must be a string"
    return f"{path}: could not be read"


def split_files(split: str, data_dir: Path | None = None) -> dict[str, Path]:
    if split not in SPLITS:
        raise BenchmarkError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    folder = Path(data_dir or DATA_DIR) / split
    files = {path.stem: path for path in sorted(folder.glob("*.jsonl"))}
    if not files:
        raise BenchmarkError(f"no prompt sets found in {folder}")
    unknown = sorted(set(files) - set(SUBSETS))
    if unknown:
        raise BenchmarkError(f"{files[unknown[0]]}: file name is not a subset ({', '.join(SUBSETS)})")
    return files


def load_pairs(split: str = "test", data_dir: Path | None = None,
               subsets: Sequence[str] | None = None) -> list[Pair]:
    """Load and validate a split with `datasets`; pairs come back sorted by id."""
    import datasets

    unknown = [s for s in subsets or () if s not in SUBSETS]
    if unknown:
        raise BenchmarkError(f"unknown subset {unknown[0]!r}; choose from {', '.join(SUBSETS)}")
    files = split_files(split, data_dir)
    if subsets:
        missing = [s for s in subsets if s not in files]
        if missing:
            raise BenchmarkError(f"subset {missing[0]!r} has no file in the {split} split")
        files = {s: files[s] for s in subsets}
    datasets.disable_progress_bars()
    try:
        loaded = datasets.load_dataset(
            "json", data_files={name: str(path) for name, path in files.items()},
            features=features())
    except Exception:  # datasets raises many types for malformed files; find the line ourselves
        for path in files.values():
            message = _first_bad_line(path)
            if not message.endswith("could not be read"):
                raise BenchmarkError(message) from None
        raise BenchmarkError(f"{next(iter(files.values())).parent}: prompt sets could not be read") from None
    validator = _item_validator()
    pairs: list[Pair] = []
    for subset, rows in loaded.items():
        for row in rows:
            item = {k: v for k, v in row.items() if not (k in OPTIONAL_FIELDS and v is None)}
            error = next(iter(validator.iter_errors(item)), None)
            if error is not None:
                where = "/".join(map(str, error.absolute_path)) or "item"
                raise BenchmarkError(f"{files[subset]}: {item.get('id')}: {where}: {error.message}")
            if item["subset"] != subset:
                raise BenchmarkError(f"{files[subset]}: {item['id']}: subset {item['subset']!r} in the {subset} file")
            if item["split"] != split:
                raise BenchmarkError(f"{files[subset]}: {item['id']}: split {item['split']!r} in the {split} folder")
            pairs.append(Pair(**item))
    pairs.sort(key=lambda p: p.id)
    check_pairs(pairs, whole_split=not subsets)
    return pairs


def check_pairs(pairs: Sequence[Pair], whole_split: bool = True) -> None:
    """Cross-item rules the schema cannot express: unique ids, reciprocal twins, borderline siblings."""
    by_id: dict[str, Pair] = {}
    for pair in pairs:
        if pair.id in by_id:
            raise BenchmarkError(f"duplicate item id {pair.id}")
        by_id[pair.id] = pair
    for pair in pairs:
        if pair.twin is not None and whole_split:
            twin = by_id.get(pair.twin)
            if twin is None or twin.twin != pair.id:
                raise BenchmarkError(f"{pair.id}: twin {pair.twin} does not point back")
            if {pair.subset, twin.subset} != {"refuse_harmful", "comply_benign"}:
                raise BenchmarkError(f"{pair.id}: a twin pairs refuse_harmful with comply_benign")
            harmful, benign = (pair, twin) if pair.subset == "refuse_harmful" else (twin, pair)
            if harmful.chosen != benign.rejected:
                raise BenchmarkError(f"{harmful.id}: twins must share one refusal string "
                                     f"({harmful.id} chosen differs from {benign.id} rejected)")
        if pair.subset == "borderline":
            sibling = by_id.get(pair.id[:-1] + ("o" if pair.id.endswith("r") else "r"))
            if sibling is not None and (sibling.prompt != pair.prompt or sibling.chosen != pair.chosen):
                raise BenchmarkError(f"{pair.id}: borderline pair types must share prompt and chosen")


def prompt_sets_sha256(pairs: Iterable[Pair]) -> str:
    """sha256 over canonical JSON (sorted keys, UTF-8, one line per item, items sorted by id)."""
    digest = hashlib.sha256()
    for pair in sorted(pairs, key=lambda p: p.id):
        line = json.dumps(pair.canonical(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def id_hash(item_id: str) -> str:
    return hashlib.sha256(item_id.encode("utf-8")).hexdigest()


def is_select_half(item_id: str) -> bool:
    """DESIGN §5: the parity of the first hex digit of sha256(id); even goes to `select`."""
    return int(id_hash(item_id)[0], 16) % 2 == 0
