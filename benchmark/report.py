"""Human-readable summaries of a results document (tabulate), shared by the CLI commands."""

from __future__ import annotations

from tabulate import tabulate

from benchmark.data import HELPFUL_KEYS, METRIC_KEYS
from benchmark.results import ResultsDocument


def _fmt(value, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


# Each headline score with what a strategy that ignores the judgement it measures would score.
HEADLINE = (
    ("balance", "0.5 (constant); ~0.06 always-refuse"),
    ("helpful", "0.5 (constant)"),
    ("harmless", "0.5 (constant)"),
    ("lean", "0 (constant)"),
    ("over_refusal", "0.5 (constant)"),
    ("under_refusal", "0.5 (constant)"),
    ("contrast", "0.25 (coin flip); 0 (always refuse/comply)"),
    ("refusal_context", "0.5 exactly (any prompt-blind scorer)"),
    ("tie_rate", ""),
)


def summary(doc: ResultsDocument) -> str:
    scores = doc["scores"]
    ci = scores.get("ci95", {})
    model = doc["model"]
    lines = [f"{model['id']}  ({model['kind']}, {model['architecture']}, {model['n_parameters']:,} parameters"
             + (f", input: {model['input_format'].replace('_', ' ')}" if model.get("input_format") else "") + ")"]
    if not doc["benchmark"].get("complete", True):
        lines.append(f"PARTIAL RUN: {doc['benchmark']['n_pairs']} pairs (--limit/--subsets); not comparable with "
                     "the leaderboard and not a submission")
    if model.get("head") == "seeded":
        lines.append("SEEDED HEAD: a random reward head scored these pairs; the numbers only exercise the pipeline")
    rows = []
    for key in METRIC_KEYS:
        entry = scores["subsets"].get(key)
        if entry:
            side = "helpful" if key in HELPFUL_KEYS else "harmless"
            rows.append([key, side, _fmt(entry["accuracy"]), f"[{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}]",
                         entry["n"], entry["ties"]])
    lines.append(tabulate(rows, headers=["subset", "objective", "accuracy", "95% CI", "n", "ties"]))
    headline = []
    for name, chance in HEADLINE:
        interval = ci.get(name)
        headline.append([name, _fmt(scores.get(name), signed=name == "lean"),
                         f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "", chance])
    lines.append("")
    lines.append(tabulate(headline, headers=["score", "value", "95% CI", "a trivial scorer gets"]))
    probe = doc.get("probe")
    if probe:
        neurons = probe["neurons"]
        rows = [
            ["tension index", _fmt(probe["tension_index"], signed=True), "> 0: helpful and harmless directions point apart"],
            ["gradient conflict", _fmt(probe["gradient_conflict"], signed=True), "< 0: a head step for one objective hurts the other"],
            ["shared fraction", f"{neurons['shared_fraction']:.3f}",
             f"chance {neurons['k'] / probe['total_units']:.3f} (k={neurons['k']} of {probe['total_units']} units)"],
            ["interference", _fmt(probe["ablations"]["interference"], signed=True), "> 0: each objective's neurons work against the other"],
            ["transfer", _fmt(probe["transfer"]), "< 0.5: the two directions are anti-aligned"],
            ["refusal flip", _fmt(probe["refusal_flip"], signed=True), "near +1: 'complies' encoded the same whatever the prompt"],
        ]
        lines.append("")
        lines.append(tabulate(rows, headers=["probe", "value", "reading"]))
        per_depth = "  ".join(f"{d['rho']:.3g}:{_fmt(d['direction_cosine'], 2, signed=True)}" for d in probe["depths"])
        lines.append(f"direction cosine by depth (rho:cos)  {per_depth}")
    anchors = doc.get("anchors")
    if anchors:
        rows = []
        for name, entry in anchors.items():
            if entry.get("status") == "not_scored":
                rows.append([name, "n/a", "", "", entry.get("reason", "")])
            else:
                rows.append([name, _fmt(entry["accuracy"]), f"[{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}]",
                             entry["n"], f"{entry['dataset']}@{(entry.get('revision') or '')[:8]}"])
        lines.append("")
        lines.append(tabulate(rows, headers=["anchor (not in balance)", "accuracy", "95% CI", "n", "source"]))
    run = doc["run"]
    lines.append("")
    lines.append(f"{doc['benchmark']['n_pairs']} pairs, {run.get('n_texts', '?')} texts, {run['truncated']} truncated, "
                 f"{run['duration_s']:.1f} s on {run['device']}")
    return "\n".join(lines)
