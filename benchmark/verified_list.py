"""The maintainers' verified list, `maintainers/verified.json` (schema `schemas/verified.schema.json`):
which model revisions a maintainer re-scored, when, how and by whom. Torch-free: the app reads it.

It lives outside `submissions/` so that a submission pull request cannot mark its own model
verified (CI rejects a submission PR that touches `maintainers/`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from benchmark.data import load_schema
from benchmark.errors import BenchmarkError
from benchmark.ids import is_valid_model_id
from benchmark.jsonio import StrictJSONError, loads_strict

# Beside the package in a clone and in the Space bundle alike (`publish` copies it there).
VERIFIED_PATH = Path(__file__).resolve().parent.parent / "maintainers" / "verified.json"
MAX_LIST_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Rescored:
    """What the maintainer re-scored: the whole run, or `tension-bench verify`'s seeded sample."""
    method: str                  # "full re-run" | "spot re-score"
    sample: int | None = None    # pairs re-scored (spot re-score)
    seed: str | None = None      # the sample's seed as `verify` prints it
    salt: str | None = None


@dataclass(frozen=True)
class VerifiedRecord:
    model_id: str
    revision: str | None         # the results file's model.revision (None: none was recorded)
    date: str                    # YYYY-MM-DD
    rescored: Rescored
    by: str
    tension_bench_version: str


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema("verified.schema.json"),
                                           format_checker=jsonschema.FormatChecker())


def parse_verified(doc) -> list[VerifiedRecord]:
    """Records from a parsed list; BenchmarkError naming the first schema problem."""
    error = next(iter(sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))), None)
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "list"
        raise BenchmarkError(f"{where}: {error.message[:160]}")
    records = []
    for index, entry in enumerate(doc):
        if not is_valid_model_id(entry["model_id"]):
            raise BenchmarkError(f"{index}/model_id: {entry['model_id']!r} is not a Hub repo id ORG/NAME")
        records.append(VerifiedRecord(
            model_id=entry["model_id"], revision=entry["revision"], date=entry["date"],
            rescored=Rescored(**entry["rescored"]), by=entry["by"],
            tension_bench_version=entry["tension_bench_version"]))
    return records


def read_verified(path: str | Path | None = None) -> list[VerifiedRecord]:
    """The list at `path` (default maintainers/verified.json); a missing file is an empty list, a
    broken one a BenchmarkError (never a partly trusted list)."""
    path = Path(path) if path is not None else VERIFIED_PATH
    if not path.is_file():
        return []
    try:
        if path.is_symlink():
            raise BenchmarkError("a symbolic link is not read")
        raw = path.read_bytes()
        if len(raw) > MAX_LIST_BYTES:
            raise BenchmarkError(f"over {MAX_LIST_BYTES // 1024} KB")
        return parse_verified(loads_strict(raw.decode("utf-8")))
    except BenchmarkError as exc:
        raise BenchmarkError(f"verified list {path}: {exc}") from None
    except (OSError, UnicodeDecodeError, StrictJSONError, ValueError, RecursionError) as exc:
        raise BenchmarkError(f"verified list {path}: cannot be read ({type(exc).__name__}: {str(exc)[:120]})") from None


def is_verified(records: Iterable[VerifiedRecord], model_id: str, revision: str | None) -> bool:
    """A results file counts as verified when a record names its model id and its revision (a
    different revision of the same model was not re-scored)."""
    return any(r.model_id == model_id and r.revision == revision for r in records)
