"""The leaderboard's data: read and validate the submissions once into a Board (the table, the
documents, their per-item rewards and the shipped prompt pairs they were scored on).

Torch-free; the views are derived in table.py and figures.py, the page text is in about.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmark.data import Pair
from benchmark.errors import BenchmarkError
from benchmark.leaderboard import COLUMNS, build_table, load_submissions
from benchmark.validate import ShippedSplits

RESULTS_REPO_VARIABLE = "TENSION_BENCH_RESULTS_REPO"
DATA_DIR_VARIABLE = "TENSION_BENCH_DATA_DIR"


# --- loading ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    folder: Path | None
    results_repo: str | None = None     # the Hub dataset the folder came from
    problem: str | None = None          # why the dataset could not be used (then: the local folder)


@dataclass(frozen=True)
class Board:
    table: pd.DataFrame                                  # benchmark.leaderboard.build_table, by balance
    documents: dict[str, dict] = field(default_factory=dict)    # file → document without `items`
    rewards: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)  # file → pair id → rewards
    pairs: dict[str, dict[str, Pair]] = field(default_factory=dict)     # split → pair id → shipped pair
    skipped: tuple[tuple[str, str], ...] = ()
    problem: str | None = None                           # the whole folder could not be read
    source: Source = Source(None)
    folder: Path | None = None

    def file_of(self, model: str | None) -> str | None:
        rows = self.table.loc[self.table["model"] == model, "file"] if model else []
        return str(rows.iloc[0]) if len(rows) else None

    def document_of(self, model: str | None) -> dict | None:
        name = self.file_of(model)
        return self.documents.get(name) if name else None

    def rewards_of(self, model: str | None) -> dict[str, tuple[float, float]]:
        name = self.file_of(model)
        return self.rewards.get(name, {}) if name else {}

    def pairs_of(self, model: str | None) -> dict[str, Pair]:
        """The shipped pairs of the split the model was scored on, by id."""
        doc = self.document_of(model)
        return self.pairs.get(doc["benchmark"]["split"], {}) if doc else {}

    @property
    def models(self) -> list[str]:
        return [str(m) for m in self.table["model"]]

    @property
    def probed_models(self) -> list[str]:
        return [m for m in self.models if (self.document_of(m) or {}).get("probe")]


def empty_table() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="int64" if name == "parameters" else "object") for name in COLUMNS})


def default_data_dir(explicit: str | os.PathLike | None = None) -> str | None:
    if explicit is not None:
        return str(explicit)
    return os.environ.get(DATA_DIR_VARIABLE) or None


def resolve_source(default_folder: Path, explicit: Path | None = None) -> Source:
    """An explicit folder wins; else the results dataset named by TENSION_BENCH_RESULTS_REPO; else
    (or when the download fails) the submissions folder shipped beside the app."""
    if explicit is not None:
        return Source(Path(explicit))
    repo = os.environ.get(RESULTS_REPO_VARIABLE, "").strip()
    if not repo:
        return Source(default_folder)
    try:
        from benchmark.hub import download_submissions

        return Source(download_submissions(repo), results_repo=repo)
    except BenchmarkError as exc:
        return Source(default_folder, problem=str(exc))
    except Exception as exc:  # the page must come up whatever the Hub does
        return Source(default_folder, problem=f"{type(exc).__name__}: {str(exc)[:160]}")


def load_board(source: Source, data_dir: str | None = None, verified_path: str | Path | None = None) -> Board:
    """Never raises: an unreadable folder gives an empty board that says why. The verified marks
    come from maintainers/verified.json beside the app (or `verified_path`), whatever the source."""
    folder = source.folder
    try:
        splits = ShippedSplits(data_dir)
        submissions = (load_submissions(folder, data_dir=data_dir, verified_path=verified_path, splits=splits)
                       if folder is not None else None)
        if submissions is None:
            return Board(empty_table(), source=source)
        table = build_table(submissions) if submissions.documents else empty_table()
    except Exception as exc:  # hostile or broken input must never take the page down
        return Board(empty_table(), problem=f"{type(exc).__name__}: {str(exc)[:160]}", source=source, folder=folder)
    documents, rewards = {}, {}
    for name, doc in submissions.documents.items():
        documents[name] = {key: value for key, value in doc.items() if key != "items"}
        rewards[name] = {str(i["id"]): (float(i["chosen"]), float(i["rejected"])) for i in doc.get("items") or []}
    pairs = {}
    for split in sorted({doc["benchmark"]["split"] for doc in documents.values()}):
        try:
            pairs[split] = {pair.id: pair for pair in splits.get(split)[0]}
        except Exception:  # the pair texts are a display extra; the scores themselves were validated
            pairs[split] = {}
    return Board(table, documents, rewards, pairs, tuple(submissions.skipped), source=source, folder=folder)


def results_file_url(repo: str | None, file_name: str) -> str | None:
    if not repo:
        return None
    from benchmark.hub import hub_endpoint

    return f"{hub_endpoint()}/datasets/{repo}/blob/main/submissions/{file_name}"
