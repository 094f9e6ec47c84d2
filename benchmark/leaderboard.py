"""Submissions → one pandas table. Every file goes through the validator; an invalid one is
skipped with its reason, never fatal. Torch-free: the app imports this module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.validate import validate_file

VERIFIED_FILE = "verified.txt"

COLUMNS = ["model", "kind", "parameters", "balance", "helpful", "harmless", "lean", "over_refusal",
           "under_refusal", "contrast", "tension_index", "shared_fraction", "interference",
           "gradient_conflict", "reference", "verified", "balance_ci", "file"]


@dataclass
class Submissions:
    documents: dict[str, dict]          # file name → document
    skipped: list[tuple[str, str]]      # (file name, reason)
    verified: set[str]


def read_verified(folder: Path) -> set[str]:
    path = folder / VERIFIED_FILE
    if not path.is_file():
        return set()
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def load_submissions(folder: str | Path, data_dir: str | None = None) -> Submissions:
    folder = Path(folder)
    documents, skipped = {}, []
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            if path.is_symlink():
                skipped.append((path.name, "symbolic links are not read"))
                continue
            verdict = validate_file(path, data_dir=data_dir, require_name=True)
            if verdict.ok:
                documents[path.name] = json.loads(path.read_text(encoding="utf-8"))
            else:
                skipped.append((path.name, verdict.problem))
    return Submissions(documents, skipped, read_verified(folder) if folder.is_dir() else set())


def row_for(name: str, doc: dict, verified: set[str]) -> dict:
    scores, probe = doc["scores"], doc.get("probe") or {}
    ci = scores.get("ci95", {}).get("balance")
    return {
        "model": doc["model"]["id"],
        "kind": doc["model"]["kind"],
        "parameters": int(doc["model"]["n_parameters"]),
        "balance": scores["balance"], "helpful": scores["helpful"], "harmless": scores["harmless"],
        "lean": scores["lean"], "over_refusal": scores["over_refusal"], "under_refusal": scores["under_refusal"],
        "contrast": scores["contrast"],
        "tension_index": probe.get("tension_index"),
        "shared_fraction": (probe.get("neurons") or {}).get("shared_fraction"),
        "interference": (probe.get("ablations") or {}).get("interference"),
        "gradient_conflict": probe.get("gradient_conflict"),
        "reference": bool(doc["model"].get("reference", False)),
        "verified": doc["model"]["id"] in verified,
        "balance_ci": f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "",
        "file": name,
    }


def build_table(submissions: Submissions) -> pd.DataFrame:
    rows = [row_for(name, doc, submissions.verified) for name, doc in submissions.documents.items()]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["parameters"] = table["parameters"].astype("int64")
    return table.sort_values(["balance", "model"], ascending=[False, True], na_position="last").reset_index(drop=True)
