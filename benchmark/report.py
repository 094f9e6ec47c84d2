"""Human-readable summaries of a results document (tabulate), shared by the CLI commands."""

from __future__ import annotations

from tabulate import tabulate

from benchmark.data import METRIC_KEYS


def _fmt(value, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def summary(doc: dict) -> str:
    scores = doc["scores"]
    ci = scores.get("ci95", {})
    lines = [f"{doc['model']['id']}  ({doc['model']['kind']}, {doc['model']['architecture']}, "
             f"{doc['model']['n_parameters']:,} parameters)"]
    rows = []
    for key in METRIC_KEYS:
        entry = scores["subsets"].get(key)
        if entry:
            side = "helpful" if key in ("comply_benign", "helpful_quality", "borderline/vs_refusal") else "harmless"
            rows.append([key, side, _fmt(entry["accuracy"]), f"[{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}]",
                         entry["n"], entry["ties"]])
    lines.append(tabulate(rows, headers=["subset", "objective", "accuracy", "95% CI", "n", "ties"]))
    headline = []
    for name in ("balance", "helpful", "harmless", "lean"):
        interval = ci.get(name)
        headline.append([name, _fmt(scores[name], signed=name == "lean"),
                         f"[{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""])
    for name in ("over_refusal", "under_refusal", "contrast", "tie_rate"):
        headline.append([name, _fmt(scores[name]), ""])
    lines.append("")
    lines.append(tabulate(headline, headers=["score", "value", "95% CI"]))
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
