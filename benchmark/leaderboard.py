"""Submissions → one pandas table. Every file goes through the validator; an invalid one is
skipped with its reason, never fatal. Torch-free: the app imports this module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.results import ResultsDocument
from benchmark.validate import ShippedSplits, validate_file
from benchmark.verified_list import is_verified, read_verified

COLUMNS = ["model", "kind", "parameters", "balance", "helpful", "harmless", "lean", "over_refusal",
           "under_refusal", "contrast", "refusal_context", "tension_index", "shared_fraction", "interference",
           "gradient_conflict", "reference", "baseline", "verified", "balance_ci", "file"]


@dataclass
class Submissions:
    documents: dict[str, dict]          # file name → document
    skipped: list[tuple[str, str]]      # (file name, reason)
    verified: set[str]                  # model ids whose file's revision is on the verified list


def load_submissions(folder: str | Path, data_dir: str | None = None,
                     verified_path: str | Path | None = None, splits: ShippedSplits | None = None) -> Submissions:
    """The verified list comes from maintainers/verified.json (or `verified_path`), never from the
    submissions folder: a submission cannot vouch for itself. Pass `splits` to reuse the prompt sets
    the validation loads (the app shows their texts)."""
    folder = Path(folder)
    documents, skipped = {}, []
    splits = splits if splits is not None else ShippedSplits(data_dir)
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            if path.is_symlink():
                skipped.append((path.name, "symbolic links are not read"))
                continue
            verdict = validate_file(path, require_name=True, splits=splits)
            if verdict.ok:
                documents[path.name] = json.loads(path.read_text(encoding="utf-8"))
            else:
                skipped.append((path.name, verdict.problem))
    try:
        records = read_verified(verified_path)
    except BenchmarkError as exc:     # a broken list marks nobody, and says why
        records = []
        skipped.append(("maintainers/verified.json", str(exc)))
    verified = {doc["model"]["id"] for doc in documents.values()
                if is_verified(records, doc["model"]["id"], doc["model"].get("revision"))}
    return Submissions(documents, skipped, verified)


def is_baseline(doc: ResultsDocument) -> bool:
    """A calibration row (chance or a trivial strategy): listed, never ranked among the models."""
    return doc["model"].get("baseline") is True


def row_for(name: str, doc: ResultsDocument, verified: set[str]) -> dict:
    scores, probe = doc["scores"], doc.get("probe") or {}
    ci = scores.get("ci95", {}).get("balance")
    return {
        "model": doc["model"]["id"],
        "kind": doc["model"]["kind"],
        "parameters": int(doc["model"]["n_parameters"]),
        "balance": scores["balance"], "helpful": scores["helpful"], "harmless": scores["harmless"],
        "lean": scores["lean"], "over_refusal": scores["over_refusal"], "under_refusal": scores["under_refusal"],
        "contrast": scores["contrast"], "refusal_context": scores.get("refusal_context"),
        "tension_index": probe.get("tension_index"),
        "shared_fraction": (probe.get("neurons") or {}).get("shared_fraction"),
        "interference": (probe.get("ablations") or {}).get("interference"),
        "gradient_conflict": probe.get("gradient_conflict"),
        "reference": bool(doc["model"].get("reference", False)),
        "baseline": is_baseline(doc),
        "verified": doc["model"]["id"] in verified,
        "balance_ci": f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "",
        "file": name,
    }


def build_table(submissions: Submissions) -> pd.DataFrame:
    rows = [row_for(name, doc, submissions.verified) for name, doc in submissions.documents.items()]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["parameters"] = table["parameters"].astype("int64")
    # Models by balance; the calibration rows after them, apart, so no baseline takes a model's place.
    return table.sort_values(["baseline", "balance", "model"], ascending=[True, False, True],
                             na_position="last").reset_index(drop=True)
