"""The leaderboard's tables as plain data: the filtered and formatted board (calibration rows
marked and unranked), the CSV, the model page's score tables, and where a model loses pairs.

Torch-free and statistics-free: every number and interval is read from the results documents.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from benchmark.data import HARMLESS_KEYS, HELPFUL_KEYS, Pair
from benchmark.leaderboard import COLUMNS

if __package__:
    from leaderboard_app.figures import pareto_frontier, tradeoff_points
else:  # the Space bundle: figures.py sits beside this file
    from figures import pareto_frontier, tradeoff_points  # type: ignore[no-redef]

FLOAT_COLUMNS = ["balance", "helpful", "harmless", "lean", "over_refusal", "under_refusal", "contrast",
                 "refusal_context", "tension_index", "shared_fraction", "interference", "gradient_conflict"]
DISPLAY_COLUMNS = ["rank", "model", "kind", "parameters", "balance", "balance_ci", "helpful", "harmless", "lean",
                   "over_refusal", "under_refusal", "contrast", "refusal_context", "tension_index",
                   "shared_fraction", "interference", "gradient_conflict", "reference", "baseline", "verified"]
PARAMETER_RANGES = {            # key → [low, high) in parameters; labels are in about.SIZE_CHOICES
    "any": (0, math.inf), "lt1b": (0, 1e9), "1b-10b": (1e9, 1e10), "10b-100b": (1e10, 1e11),
    "ge100b": (1e11, math.inf),
}
BASELINE_MARK = "baseline"
MISSING = "–"
ALL = "all"


# --- leaderboard table -----------------------------------------------------------------------

def ranked(table: pd.DataFrame) -> pd.DataFrame:
    """The board with a `rank` column: models numbered 1… in board order (by balance); calibration
    rows get none, so filtering never renumbers a model and a baseline never takes a place."""
    out = table.copy()
    is_model = ~out["baseline"].fillna(False).astype(bool) if "baseline" in out else pd.Series(True, index=out.index)
    rank = pd.Series(math.nan, index=out.index, dtype="float64")
    rank[is_model] = range(1, int(is_model.sum()) + 1)
    out.insert(0, "rank", rank)
    return out


def filter_table(table: pd.DataFrame, search: str | None = "", kinds: Sequence[str] | None = None,
                 size: str | None = "any", verified_only: bool = False) -> pd.DataFrame:
    mask = pd.Series(True, index=table.index)
    needle = (search or "").strip()
    if needle:
        mask &= table["model"].astype(str).str.contains(needle, case=False, regex=False)
    if kinds:
        mask &= table["kind"].isin(list(kinds))
    low, high = PARAMETER_RANGES.get(size or "any", PARAMETER_RANGES["any"])
    mask &= (table["parameters"] >= low) & (table["parameters"] < high)
    if verified_only:
        mask &= table["verified"].astype(bool)
    return table[mask].reset_index(drop=True)


def human_parameters(count) -> str:
    if count is None or (isinstance(count, float) and math.isnan(count)):
        return MISSING
    count = float(count)
    for divisor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= divisor:
            value = count / divisor
            return f"{value:.3g}{suffix}" if value < 1000 else f"{value:.0f}{suffix}"
    return f"{count:.0f}"


def three(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:.3f}"


def _rank(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0f}"


def display_table(table: pd.DataFrame, labels: dict[str, str]):
    """The table as the page shows it: numbers stay numbers (so columns sort numerically) and are
    displayed with 3 decimals; parameters display as 1.2B; flags as ✓; calibration rows are marked
    `baseline` and carry no rank."""
    if "rank" not in table:
        table = ranked(table)
    shown = table.reindex(columns=DISPLAY_COLUMNS).copy()
    for column in FLOAT_COLUMNS + ["rank"]:
        shown[column] = pd.to_numeric(shown[column], errors="coerce").astype("float64")
    shown["parameters"] = pd.to_numeric(shown["parameters"], errors="coerce").astype("float64")
    for flag in ("reference", "verified"):
        shown[flag] = ["✓" if bool(v) else "" for v in shown[flag]]
    shown["baseline"] = [BASELINE_MARK if v is True or (isinstance(v, (bool, int)) and bool(v)) else ""
                         for v in shown["baseline"]]
    shown["model"] = shown["model"].astype(str)
    shown["kind"] = shown["kind"].astype(str)
    shown["balance_ci"] = shown["balance_ci"].fillna("").astype(str)
    shown = shown.rename(columns=labels)
    formats = {labels.get(c, c): three for c in FLOAT_COLUMNS}
    formats[labels.get("parameters", "parameters")] = human_parameters
    formats[labels.get("rank", "rank")] = _rank
    return shown.style.format(formats)


def datatypes() -> list[str]:
    numeric = set(FLOAT_COLUMNS) | {"parameters", "rank"}
    return ["number" if column in numeric else "str" for column in DISPLAY_COLUMNS]


def csv_text(table: pd.DataFrame) -> str:
    return table.reindex(columns=[c for c in COLUMNS if c != "file"]).to_csv(index=False)


def write_once(folder: Path, name: str, text: str) -> str:
    """Write `text` to folder/<hash>/name (once) and return the path: gradio serves it from there."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    path = Path(folder) / digest / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")   # sessions may write the same file at once
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    return str(path)


def frontier_table(table: pd.DataFrame) -> pd.DataFrame:
    names = pareto_frontier(tradeoff_points(table))
    rows = table[table["model"].isin(names)]
    return pd.DataFrame({"model": rows["model"].astype(str),
                         "helpful": [three(v) for v in rows["helpful"]],
                         "harmless": [three(v) for v in rows["harmless"]],
                         "balance": [three(v) for v in rows["balance"]]}).reset_index(drop=True)


CALIBRATION_COLUMNS = ["model", "helpful", "harmless", "balance", "refusal_context"]


def calibration_table(table: pd.DataFrame) -> pd.DataFrame:
    """The calibration rows' scores as their results files give them (where trivial strategies land)."""
    rows = table[table["baseline"].fillna(False).astype(bool)] if "baseline" in table else table.iloc[:0]
    return pd.DataFrame({"model": rows["model"].astype(str),
                         **{c: [three(v) for v in rows[c]] for c in CALIBRATION_COLUMNS[1:]}},
                        columns=CALIBRATION_COLUMNS).reset_index(drop=True)


# --- probe ablations ----------------------------------------------------------------------

def _effect(entry: dict | None) -> str:
    """A margin effect (in unablated-margin SDs) with its interval."""
    if not entry or entry.get("margin_effect") is None:
        return MISSING
    interval = entry.get("margin_effect_ci95")
    return f"{entry['margin_effect']:+.3f}" + (f" [{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval else "")


ABLATION_COLUMNS = ["condition", "units", "helpful_effect", "harmless_effect", "helpful_accuracy_delta",
                    "harmless_accuracy_delta"]


def ablation_table(doc: dict | None, condition_labels: dict[str, str]) -> tuple[pd.DataFrame, dict | None]:
    """Exact ablations (margin effects with CIs, accuracy changes), the random-unit null, and the
    paper's zero-ablations; the summary carries interference with its p-value and reading."""
    from benchmark.report import p_reading

    probe = (doc or {}).get("probe")
    if not probe:
        return pd.DataFrame(columns=ABLATION_COLUMNS), None
    ablations = probe["ablations"]
    label = lambda name: condition_labels.get(name, name)  # noqa: E731
    rows = [{"condition": label("baseline"), "units": "0",
             "helpful_effect": f"accuracy {three(ablations['baseline']['helpful']['accuracy'])}",
             "harmless_effect": f"accuracy {three(ablations['baseline']['harmless']['accuracy'])}",
             "helpful_accuracy_delta": _signed(0.0), "harmless_accuracy_delta": _signed(0.0)}]
    for c in ablations["conditions"]:
        rows.append({"condition": label(c["name"]), "units": str(c["units"]), "helpful_effect": _effect(c["helpful"]),
                     "harmless_effect": _effect(c["harmless"]),
                     "helpful_accuracy_delta": _signed(c["helpful"]["accuracy_delta"]),
                     "harmless_accuracy_delta": _signed(c["harmless"]["accuracy_delta"])})
    null = ablations["null"]

    def spread(side):
        mean, sd = null.get(f"{side}_mean"), null.get(f"{side}_sd")
        return MISSING if mean is None else f"{mean:+.3f} ± {sd:.3f} (mean ± SD)"

    rows.append({"condition": label("random").format(sets=null["sets"], method=ablations["null_method"]),
                 "units": str(probe["neurons"]["k"]), "helpful_effect": spread("helpful"),
                 "harmless_effect": spread("harmless"), "helpful_accuracy_delta": MISSING,
                 "harmless_accuracy_delta": MISSING})
    paper = probe.get("paper")
    for c in (paper or {}).get("ablations", {}).get("conditions", []):
        rows.append({"condition": label(c["name"]), "units": str(c["units"]), "helpful_effect": _effect(c["helpful"]),
                     "harmless_effect": _effect(c["harmless"]),
                     "helpful_accuracy_delta": _signed(c["helpful"]["accuracy_delta"]),
                     "harmless_accuracy_delta": _signed(c["harmless"]["accuracy_delta"])})
    summary = {"interference": _signed(ablations["interference"]),
               "reading": p_reading(ablations["interference_p"], "above the random-unit null: each objective's "
                                    "neurons work against the other", "the random-unit null"),
               "method": ablations["null_method"], "sets": null["sets"],
               "attribution_r": three(ablations.get("attribution_r")),
               "helpful": ablations["pairs"]["helpful"], "harmless": ablations["pairs"]["harmless"]}
    return pd.DataFrame(rows, columns=ABLATION_COLUMNS), summary


def _signed(value) -> str:
    return MISSING if value is None else f"{value:+.3f}"


# --- model page ------------------------------------------------------------------------------

def _ci(interval) -> str:
    return f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""


def summary_table(doc: dict, names: dict[str, str]) -> pd.DataFrame:
    scores, ci = doc["scores"], doc["scores"].get("ci95", {})
    rows = []
    for key, label in names.items():
        value = scores.get(key)
        shown = str(value) if key == "n_pairs" else three(value)
        rows.append([label, shown, _ci(ci.get(key))])
    return pd.DataFrame(rows, columns=["metric", "value", "ci"])


def subsets_table(doc: dict) -> pd.DataFrame:
    rows = []
    for key, entry in doc["scores"]["subsets"].items():
        objective = "helpful" if key in HELPFUL_KEYS else "harmless" if key in HARMLESS_KEYS else ""
        rows.append([key, objective, three(entry["accuracy"]), _ci(entry.get("ci95")), str(entry["n"]),
                     str(entry["ties"])])
    return pd.DataFrame(rows, columns=["subset", "objective", "accuracy", "ci", "n", "ties"])


def categories_table(doc: dict) -> pd.DataFrame:
    """Category accuracies with the CIs the results file carries (`scores.categories.<name>.ci95`)."""
    rows = [[name, three(entry["accuracy"]), _ci(entry.get("ci95")), str(entry["n"])]
            for name, entry in sorted(doc["scores"]["categories"].items())]
    return pd.DataFrame(rows, columns=["category", "accuracy", "ci", "n"])


def probe_summary_table(doc: dict) -> pd.DataFrame:
    """The probe's headline numbers with their CI or null and the reading the CLI prints."""
    from benchmark.report import probe_rows

    probe = doc.get("probe")
    if not probe:
        return pd.DataFrame(columns=["measure", "value", "ci", "reading"])
    return pd.DataFrame(probe_rows(probe), columns=["measure", "value", "ci", "reading"])


def _flatten(prefix: str, value, rows: list[list[str]]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, rows)
    else:
        rows.append([prefix, MISSING if value is None else str(value)])


def provenance_table(doc: dict, file_name: str) -> pd.DataFrame:
    """Every provenance field as plain text: these strings come from the submitter."""
    rows: list[list[str]] = [["file", file_name]]
    for block in ("model", "benchmark", "run"):
        _flatten(block, doc.get(block, {}), rows)
    return pd.DataFrame(rows, columns=["field", "value"])


# --- where a model fails ---------------------------------------------------------------------

Rewards = Mapping[str, tuple[float, float]]       # pair id → (reward chosen, reward rejected)
FAILURE_COLUMNS = ["id", "subset", "category", "margin", "reward_chosen", "reward_rejected", "prompt", "chosen",
                   "rejected", "flaw"]
DISAGREEMENT_COLUMNS = ["id", "subset", "category", "won_by", "margin_a", "margin_b", "prompt", "chosen",
                        "rejected", "flaw"]
MAX_PAIR_ROWS = 200


@dataclass(frozen=True)
class PairRows:
    frame: pd.DataFrame     # at most MAX_PAIR_ROWS rows, the worst first
    total: int              # how many pairs matched before the cut


def pair_choices(pairs: Mapping[str, Pair]) -> tuple[list[str], list[str]]:
    """Subset keys (borderline by pair type) and categories to filter on, each led by `all`."""
    subsets = sorted({p.metric_key for p in pairs.values()})
    categories = sorted({p.category for p in pairs.values()})
    return [ALL] + subsets, [ALL] + categories


def _selected(pairs: Mapping[str, Pair], ids, subset: str | None, category: str | None) -> list[Pair]:
    chosen = []
    for pair_id in ids:
        pair = pairs.get(pair_id)
        if pair is None:
            continue
        if subset and subset != ALL and pair.metric_key != subset:
            continue
        if category and category != ALL and pair.category != category:
            continue
        chosen.append(pair)
    return chosen


def _texts(pair: Pair) -> dict:
    return {"id": pair.id, "subset": pair.metric_key, "category": pair.category, "prompt": pair.prompt,
            "chosen": pair.chosen, "rejected": pair.rejected, "flaw": pair.flaw or ""}


def _cut(rows: list[dict], columns: list[str], limit: int) -> PairRows:
    return PairRows(pd.DataFrame(rows[:limit], columns=columns), len(rows))


def failures(pairs: Mapping[str, Pair], rewards: Rewards, subset: str | None = ALL, category: str | None = ALL,
             limit: int = MAX_PAIR_ROWS) -> PairRows:
    """The pairs the model lost (reward chosen ≤ rejected; a tie is a half loss and is listed), most
    confidently wrong first: sorted by margin = reward chosen − reward rejected, ascending."""
    lost = [(rewards[p.id][0] - rewards[p.id][1], p) for p in _selected(pairs, rewards, subset, category)
            if rewards[p.id][0] <= rewards[p.id][1]]
    lost.sort(key=lambda entry: (entry[0], entry[1].id))
    rows = [{**_texts(p), "margin": f"{margin:+.4f}", "reward_chosen": f"{rewards[p.id][0]:.4f}",
             "reward_rejected": f"{rewards[p.id][1]:.4f}"} for margin, p in lost]
    return _cut(rows, FAILURE_COLUMNS, limit)


def disagreements(pairs: Mapping[str, Pair], rewards_a: Rewards, rewards_b: Rewards, name_a: str, name_b: str,
                  subset: str | None = ALL, category: str | None = ALL, limit: int = MAX_PAIR_ROWS) -> PairRows:
    """Pairs one model wins (chosen > rejected) and the other does not (loses or ties), the loser's
    most confident mistakes first."""
    rows = []
    shared = [pair_id for pair_id in rewards_a if pair_id in rewards_b]
    for p in _selected(pairs, shared, subset, category):
        margin_a = rewards_a[p.id][0] - rewards_a[p.id][1]
        margin_b = rewards_b[p.id][0] - rewards_b[p.id][1]
        if (margin_a > 0) == (margin_b > 0):
            continue
        rows.append((min(margin_a, margin_b), p.id, {
            **_texts(p), "won_by": name_a if margin_a > 0 else name_b, "margin_a": f"{margin_a:+.4f}",
            "margin_b": f"{margin_b:+.4f}"}))
    rows.sort(key=lambda row: row[:2])
    return _cut([row for _, _, row in rows], DISAGREEMENT_COLUMNS, limit)
