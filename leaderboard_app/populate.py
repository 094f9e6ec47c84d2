"""The leaderboard's data: read and validate the submissions once into a Board, then derive every
view the page shows (filtered table, Pareto plot, probe curves, model page) as plain data.

Torch-free and text-free (page text is in about.py); nothing here renders HTML from a submission:
tables are plain strings and numbers, and the Pareto SVG escapes every string it draws.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from benchmark.data import HARMLESS_KEYS, HELPFUL_KEYS
from benchmark.errors import BenchmarkError
from benchmark.leaderboard import COLUMNS, build_table, load_submissions

RESULTS_REPO_VARIABLE = "TENSION_BENCH_RESULTS_REPO"
DATA_DIR_VARIABLE = "TENSION_BENCH_DATA_DIR"

FLOAT_COLUMNS = ["balance", "helpful", "harmless", "lean", "over_refusal", "under_refusal", "contrast",
                 "tension_index", "shared_fraction", "interference", "gradient_conflict"]
DISPLAY_COLUMNS = ["model", "kind", "parameters", "balance", "balance_ci", "helpful", "harmless", "lean",
                   "over_refusal", "under_refusal", "contrast", "tension_index", "shared_fraction",
                   "interference", "gradient_conflict", "reference", "verified"]
PARAMETER_RANGES = {            # key → [low, high) in parameters; labels are in about.SIZE_CHOICES
    "any": (0, math.inf), "lt1b": (0, 1e9), "1b-10b": (1e9, 1e10), "10b-100b": (1e10, 1e11),
    "ge100b": (1e11, math.inf),
}
CATEGORY_RESAMPLES = 1000
MISSING = "–"


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
    category_ci: dict[str, dict[str, list[float]]] = field(default_factory=dict)
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


def category_intervals(doc: dict, data_dir: str | None) -> dict[str, list[float]]:
    """Cluster-bootstrap CIs per category (prompts resampled within the category, seed 0): the
    results file carries category accuracies only."""
    from benchmark.metrics import pair_win
    from benchmark.validate import shipped_split

    pairs, _ = shipped_split(doc["benchmark"]["split"], data_dir)
    rewards = {item["id"]: (item["chosen"], item["rejected"]) for item in doc["items"]}
    by_category: dict[str, dict[str, list[float]]] = {}
    for pair in pairs:
        if pair.id in rewards:
            by_category.setdefault(pair.category, {}).setdefault(pair.prompt, []).append(pair_win(*rewards[pair.id]))
    out = {}
    for category, clusters in sorted(by_category.items()):
        wins = np.array([sum(v) for v in clusters.values()])
        counts = np.array([len(v) for v in clusters.values()], dtype=float)
        draws = np.random.default_rng(0).integers(0, len(wins), size=(CATEGORY_RESAMPLES, len(wins)))
        accuracy = wins[draws].sum(axis=1) / counts[draws].sum(axis=1)
        lo, hi = np.percentile(accuracy, [2.5, 97.5])
        out[category] = [float(lo), float(hi)]
    return out


def load_board(source: Source, data_dir: str | None = None, verified_path: str | Path | None = None) -> Board:
    """Never raises: an unreadable folder gives an empty board that says why. The verified marks
    come from maintainers/verified.json beside the app (or `verified_path`), whatever the source."""
    folder = source.folder
    try:
        submissions = (load_submissions(folder, data_dir=data_dir, verified_path=verified_path)
                       if folder is not None else None)
        if submissions is None:
            return Board(empty_table(), source=source)
        table = build_table(submissions) if submissions.documents else empty_table()
    except Exception as exc:  # hostile or broken input must never take the page down
        return Board(empty_table(), problem=f"{type(exc).__name__}: {str(exc)[:160]}", source=source, folder=folder)
    documents, category_ci = {}, {}
    for name, doc in submissions.documents.items():
        try:
            category_ci[name] = category_intervals(doc, data_dir)
        except Exception:  # a display extra; the scores themselves were validated
            category_ci[name] = {}
        documents[name] = {key: value for key, value in doc.items() if key != "items"}
    return Board(table, documents, category_ci, tuple(submissions.skipped), source=source, folder=folder)


# --- leaderboard table -----------------------------------------------------------------------

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


def _three(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:.3f}"


def display_table(table: pd.DataFrame, labels: dict[str, str]):
    """The table as the page shows it: numbers stay numbers (so columns sort numerically) and are
    displayed with 3 decimals; parameters display as 1.2B; flags as ✓."""
    shown = table.reindex(columns=DISPLAY_COLUMNS).copy()
    for column in FLOAT_COLUMNS:
        shown[column] = pd.to_numeric(shown[column], errors="coerce").astype("float64")
    shown["parameters"] = pd.to_numeric(shown["parameters"], errors="coerce").astype("float64")
    for flag in ("reference", "verified"):
        shown[flag] = ["✓" if bool(v) else "" for v in shown[flag]]
    shown["model"] = shown["model"].astype(str)
    shown["kind"] = shown["kind"].astype(str)
    shown["balance_ci"] = shown["balance_ci"].fillna("").astype(str)
    shown = shown.rename(columns=labels)
    formats = {labels.get(c, c): _three for c in FLOAT_COLUMNS}
    formats[labels.get("parameters", "parameters")] = human_parameters
    return shown.style.format(formats)


def datatypes() -> list[str]:
    numeric = set(FLOAT_COLUMNS) | {"parameters"}
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


# --- trade-off -------------------------------------------------------------------------------

def pareto_frontier(points: Iterable[tuple[str, float, float]]) -> list[str]:
    """Names of the points no other point weakly dominates on (helpful, harmless), best helpful last."""
    points = list(points)
    frontier = []
    for name, x, y in points:
        dominated = any((ox >= x and oy >= y) and (ox > x or oy > y) for _, ox, oy in points)
        if not dominated:
            frontier.append((x, -y, name))
    return [name for _, _, name in sorted(frontier)]


def tradeoff_points(table: pd.DataFrame) -> list[tuple[str, float, float]]:
    rows = table.dropna(subset=["helpful", "harmless"])
    return [(str(r.model), float(r.helpful), float(r.harmless)) for r in rows.itertuples()]


def frontier_table(table: pd.DataFrame) -> pd.DataFrame:
    names = pareto_frontier(tradeoff_points(table))
    rows = table[table["model"].isin(names)]
    return pd.DataFrame({"model": rows["model"].astype(str),
                         "helpful": [_three(v) for v in rows["helpful"]],
                         "harmless": [_three(v) for v in rows["harmless"]],
                         "balance": [_three(v) for v in rows["balance"]]}).reset_index(drop=True)


def pareto_svg(table: pd.DataFrame, x_title: str, y_title: str, balance_label: str, empty_label: str) -> str:
    """A self-contained SVG (shown through an <img>, where no script can run); every string drawn is
    escaped."""
    width, height, left, right, top, bottom = 760, 560, 70, 180, 24, 56
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + x * plot_w

    def sy(y: float) -> float:
        return top + (1 - y) * plot_h

    esc = lambda s: html.escape(str(s), quote=True)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for i in range(11):
        v = i / 10
        out.append(f'<line x1="{sx(v):.1f}" y1="{sy(0):.1f}" x2="{sx(v):.1f}" y2="{sy(1):.1f}" stroke="#eee"/>')
        out.append(f'<line x1="{sx(0):.1f}" y1="{sy(v):.1f}" x2="{sx(1):.1f}" y2="{sy(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{sx(v):.1f}" y="{sy(0) + 16:.1f}" text-anchor="middle" fill="#555">{v:.1f}</text>')
        out.append(f'<text x="{sx(0) - 8:.1f}" y="{sy(v) + 4:.1f}" text-anchor="end" fill="#555">{v:.1f}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    out.append(f'<line x1="{sx(.5):.1f}" y1="{sy(0):.1f}" x2="{sx(.5):.1f}" y2="{sy(1):.1f}" '
               'stroke="#bbb" stroke-dasharray="5,4"/>')
    out.append(f'<line x1="{sx(0):.1f}" y1="{sy(.5):.1f}" x2="{sx(1):.1f}" y2="{sy(.5):.1f}" '
               'stroke="#bbb" stroke-dasharray="5,4"/>')
    for level in (0.25, 0.5, 0.75):     # iso-balance: 2xy/(x+y) = c  →  y = cx/(2x−c), x > c/2
        xs = np.linspace(level / 2 + 1e-3, 1, 200)
        ys = level * xs / (2 * xs - level)
        keep = (ys >= 0) & (ys <= 1)
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs[keep], ys[keep]))
        out.append(f'<polyline points="{path}" fill="none" stroke="#c9d6ea" stroke-dasharray="2,3"/>')
        out.append(f'<text x="{sx(1) + 4:.1f}" y="{sy(level / (2 - level)) + 4:.1f}" fill="#8aa0c0" '
                   f'font-size="10">{esc(balance_label.format(value=level))}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 14}" text-anchor="middle" '
               f'font-size="13">{esc(x_title)}</text>')
    out.append(f'<text x="16" y="{top + plot_h / 2:.1f}" text-anchor="middle" font-size="13" '
               f'transform="rotate(-90 16 {top + plot_h / 2:.1f})">{esc(y_title)}</text>')
    points = tradeoff_points(table)
    if not points:
        out.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                   f'fill="#888" font-size="15">{esc(empty_label)}</text>')
    frontier = pareto_frontier(points)
    where = {name: (x, y) for name, x, y in points}
    if frontier:
        steps = []
        for i, name in enumerate(frontier):
            x, y = where[name]
            if i:
                steps.append(f"{sx(x):.1f},{sy(where[frontier[i - 1]][1]):.1f}")
            steps.append(f"{sx(x):.1f},{sy(y):.1f}")
        first, last = where[frontier[0]], where[frontier[-1]]
        steps = [f"{sx(0):.1f},{sy(first[1]):.1f}"] + steps + [f"{sx(last[0]):.1f},{sy(0):.1f}"]
        out.append(f'<polyline points="{" ".join(steps)}" fill="none" stroke="#d9480f" stroke-width="2" '
                   'stroke-opacity="0.75"/>')
    placed: list[tuple[float, float]] = []
    for name, x, y in sorted(points, key=lambda p: (-p[2], p[1], p[0])):
        on = name in frontier
        px, py = sx(x), sy(y)
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5.5" fill="{"#d9480f" if on else "#adb5bd"}" '
                   f'stroke="#333" stroke-width="0.8"><title>{esc(name)}: helpful {x:.3f}, harmless {y:.3f}</title>'
                   '</circle>')
        ly = py - 8
        while any(abs(ly - qy) < 13 and abs(px - qx) < 150 for qx, qy in placed):
            ly += 13        # nudge a label down until it clears the ones already drawn nearby
        placed.append((px, ly))
        anchor, lx = ("end", px - 8) if px > left + plot_w * 0.75 else ("start", px + 8)
        out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" fill="#222">{esc(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def svg_as_img(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (f'<img src="data:image/svg+xml;base64,{data}" alt="{html.escape(alt, quote=True)}" '
            'style="max-width:100%;height:auto"/>')


# --- probe -----------------------------------------------------------------------------------

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f"]


def color_map(models: Sequence[str]) -> dict[str, str]:
    """A stable colour per model (its place on the board), so curves are told apart."""
    return {str(m): PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def legend_html(models: Sequence[str], colors: dict[str, str]) -> str:
    """Colour swatches and model ids; ids are escaped (they are text, never markup)."""
    items = [f'<span style="margin-right:1.2em;white-space:nowrap">'
             f'<span style="display:inline-block;width:1.6em;height:3px;vertical-align:middle;margin-right:.4em;'
             f'background:{colors.get(str(m), "#888")}"></span>{html.escape(str(m), quote=True)}</span>'
             for m in models]
    return f'<div style="padding:.2em 0 .6em 0;font-size:.9em">{"".join(items)}</div>'


def probe_curves(board: Board, models: Sequence[str] | None, measure: str = "direction_cosine") -> pd.DataFrame:
    measure = measure if measure in ("direction_cosine", "raw_cosine") else "direction_cosine"
    rows = []
    for model in models or []:
        probe = (board.document_of(model) or {}).get("probe") or {}
        for depth in probe.get("depths") or []:
            value = depth.get(measure)
            if isinstance(value, (int, float)) and math.isfinite(value):
                rows.append({"model": str(model), "rho": float(depth["rho"]), "cosine": float(value)})
    return pd.DataFrame(rows, columns=["model", "rho", "cosine"])


def ablation_table(board: Board, model: str | None, condition_labels: dict[str, str]) -> tuple[pd.DataFrame, dict | None]:
    probe = (board.document_of(model) or {}).get("probe")
    if not probe:
        return pd.DataFrame(columns=["condition", "units", "helpful_delta", "harmless_delta",
                                     "helpful_accuracy", "harmless_accuracy"]), None
    ablations = probe["ablations"]
    base = ablations["baseline"]
    rows = [{"condition": condition_labels.get("baseline", "baseline"), "units": "0", "helpful_delta": _signed(0.0),
             "harmless_delta": _signed(0.0), "helpful_accuracy": _three(base["helpful_accuracy"]),
             "harmless_accuracy": _three(base["harmless_accuracy"])}]
    for c in ablations["conditions"]:
        rows.append({"condition": condition_labels.get(c["name"], c["name"]), "units": str(c["units"]),
                     "helpful_delta": _signed(c["helpful_delta"]), "harmless_delta": _signed(c["harmless_delta"]),
                     "helpful_accuracy": _three(c["helpful_accuracy"]),
                     "harmless_accuracy": _three(c["harmless_accuracy"])})
    summary = {"interference": _signed(ablations["interference"]), "helpful": ablations["pairs"]["helpful"],
               "harmless": ablations["pairs"]["harmless"]}
    return pd.DataFrame(rows), summary


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
        shown = str(value) if key == "n_pairs" else _three(value)
        rows.append([label, shown, _ci(ci.get(key))])
    return pd.DataFrame(rows, columns=["metric", "value", "ci"])


def subsets_table(doc: dict) -> pd.DataFrame:
    rows = []
    for key, entry in doc["scores"]["subsets"].items():
        objective = "helpful" if key in HELPFUL_KEYS else "harmless" if key in HARMLESS_KEYS else ""
        rows.append([key, objective, _three(entry["accuracy"]), _ci(entry.get("ci95")), str(entry["n"]),
                     str(entry["ties"])])
    return pd.DataFrame(rows, columns=["subset", "objective", "accuracy", "ci", "n", "ties"])


def categories_table(doc: dict, intervals: dict[str, list[float]]) -> pd.DataFrame:
    rows = [[name, _three(entry["accuracy"]), _ci(intervals.get(name)), str(entry["n"])]
            for name, entry in sorted(doc["scores"]["categories"].items())]
    return pd.DataFrame(rows, columns=["category", "accuracy", "ci", "n"])


def probe_summary_table(doc: dict, names: dict[str, str]) -> pd.DataFrame:
    probe = doc.get("probe")
    if not probe:
        return pd.DataFrame(columns=["measure", "value"])
    flat = {**probe, **probe.get("neurons", {}), "interference": probe.get("ablations", {}).get("interference")}
    rows = []
    for key, label in names.items():
        value = flat.get(key)
        rows.append([label, str(value) if isinstance(value, int) and not isinstance(value, bool) else _three(value)])
    return pd.DataFrame(rows, columns=["measure", "value"])


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


def results_file_url(repo: str | None, file_name: str) -> str | None:
    if not repo:
        return None
    from benchmark.hub import hub_endpoint

    return f"{hub_endpoint()}/datasets/{repo}/blob/main/submissions/{file_name}"
