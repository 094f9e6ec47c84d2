"""Human-readable summaries of a results document (tabulate), shared by the CLI commands."""

from __future__ import annotations

from tabulate import tabulate

from benchmark.data import HELPFUL_KEYS, METRIC_KEYS
from benchmark.results import ResultsDocument


def _fmt(value, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


# Each headline score with what a strategy that ignores the judgement it measures would score
# (the calibration rows on the leaderboard measure the always-refuse/always-comply/longer ones).
HEADLINE = (
    ("balance", "0.5 (constant); see calibration rows"),
    ("helpful", "0.5 (constant)"),
    ("harmless", "0.5 (constant)"),
    ("lean", "0 (constant)"),
    ("over_refusal", "0.5 (constant)"),
    ("under_refusal", "0.5 (constant)"),
    ("contrast", "0.25 (coin flip); 0 (always refuse/comply)"),
    ("refusal_context", "0.5 exactly (any prompt-blind scorer)"),
    ("tie_rate", ""),
)


NOT_DISTINGUISHABLE = "not distinguishable from {null:g}"
PAPER_JACCARD = "paper (across two models): 0.70 SmolLM2-135M, 0.41 GPT-2 small"


def reading(value, interval, above: str, below: str, null: float = 0.0) -> str:
    """A direction only where the 95% CI excludes the null value (DESIGN §5 readings)."""
    if value is None:
        return "n/a"
    if interval is None:
        return "no interval: " + NOT_DISTINGUISHABLE.format(null=null)
    if interval[0] > null:
        return above
    if interval[1] < null:
        return below
    return NOT_DISTINGUISHABLE.format(null=null)


def p_reading(p_value, significant: str, null: str) -> str:
    if p_value is None:
        return "n/a"
    if p_value < 0.05:
        return f"{significant} (p = {p_value:.3f})"
    return f"not distinguishable from {null} (p = {p_value:.3f})"


def _interval(interval, digits: int = 3) -> str:
    return f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]" if interval else ""


def probe_rows(probe: dict) -> list[list[str]]:
    """The probe's headline numbers as [measure, value, 95% CI or null, reading] rows (CLI and app)."""
    neurons, ablations, paper = probe["neurons"], probe["ablations"], probe.get("paper")
    rows = [
        ["tension index", _fmt(probe["tension_index"], signed=True), _interval(probe["tension_index_ci95"]),
         reading(probe["tension_index"], probe["tension_index_ci95"],
                 "> 0: helpful and harmless directions point apart", "< 0: the directions point the same way")],
        ["transfer", _fmt(probe["transfer"]), _interval(probe["transfer_ci95"]),
         reading(probe["transfer"], probe["transfer_ci95"], "> 0.5: each direction also ranks the other's pairs",
                 "< 0.5: the two directions are anti-aligned", null=0.5)],
        ["gradient conflict", _fmt(probe["gradient_conflict"], signed=True), _interval(probe["gradient_conflict_ci95"]),
         reading(probe["gradient_conflict"], probe["gradient_conflict_ci95"],
                 "> 0: a head step for one objective helps the other",
                 "< 0: a head step for one objective hurts the other")],
        ["gradient conflict (rotation)", _fmt(probe["gradient_conflict_rotation"], signed=True),
         _interval(probe["gradient_conflict_rotation_ci95"]),
         reading(probe["gradient_conflict_rotation"], probe["gradient_conflict_rotation_ci95"],
                 "> 0: the rotations agree", "< 0: the rotations conflict")],
        ["refusal flip", _fmt(probe["refusal_flip"], signed=True), _interval(probe["refusal_flip_ci95"]),
         reading(probe["refusal_flip"], probe["refusal_flip_ci95"],
                 "> 0: 'complies' encoded alike whatever the prompt", "< 0: 'complies' encoded oppositely by prompt")],
        ["shared neurons", f"{neurons['shared']} of {neurons['k']} ({neurons['shared_fraction']:.3f})",
         f"{neurons['expected_overlap']:.2f} units expected by chance",
         p_reading(neurons["overlap_p"], "more shared than chance", "chance")],
        ["neuron Jaccard, chance-corrected", _fmt(neurons["jaccard_chance_corrected"], signed=True),
         f"raw {neurons['jaccard']:.3f}, chance {neurons['jaccard_chance']:.4f}", ""],
        ["interference", _fmt(ablations["interference"], signed=True),
         f"null: {ablations['null']['sets']} random sets ({ablations['null_method']})",
         p_reading(ablations["interference_p"], "> null: each objective's neurons work against the other",
                   "the random-unit null")],
        ["attribution r", _fmt(ablations["attribution_r"]), "linear estimate vs exact ablations", ""],
    ]
    if paper:
        rows.append(["paper Jaccard (top 10%, within model)", _fmt(paper["jaccard"]),
                     f"chance {paper['jaccard_chance']:.3f}, corrected {paper['jaccard_chance_corrected']:+.3f}",
                     PAPER_JACCARD])
    return rows


def probe_summary(probe: dict) -> str:
    lines = [tabulate(probe_rows(probe), headers=["probe", "value", "95% CI / null", "reading"])]
    per_depth = "  ".join(f"{d['layer']}:{_fmt(d['direction_cosine'], 2, signed=True)}"
                          + (f"[{d['direction_cosine_ci95'][0]:+.2f},{d['direction_cosine_ci95'][1]:+.2f}]"
                             if d["direction_cosine_ci95"] else "")
                          + ("*" if d["in_tension_index"] else "")
                          for d in probe["depths"])
    lines.append(f"direction cosine by layer of {probe['n_blocks']} (layer:cos[95% CI], * in the tension index)  "
                 + per_depth)
    lines.extend(f"note: {note}" for note in probe.get("notes") or [])
    return "\n".join(lines)


def compare_table(rows) -> str:
    """`tension-bench compare`: the cross-model Jaccard of the paper's top-10% unit sets."""
    table = [[f"A {a}", f"B {b}", o.overlap, f"{o.jaccard:.3f}", f"{o.jaccard_chance:.3f}",
              f"{o.jaccard_chance_corrected:+.3f}"] for a, b, o in rows]
    return tabulate(table, headers=["A set", "B set", "shared units", "Jaccard", "chance", "chance-corrected"],
                    disable_numparse=True)


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
        lines.append("")
        lines.append(probe_summary(probe))
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
