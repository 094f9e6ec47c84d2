"""leaderboard_app.table on hand-built data: ranks skip calibration rows, the failure and
disagreement views pick and order the right pairs, category CIs are read (not computed)."""

from __future__ import annotations

import math

import pandas as pd

from benchmark.data import Pair
from leaderboard_app import about, table


def pair(pair_id: str, subset: str = "helpful_quality", category: str = "coding", flaw: str | None = None) -> Pair:
    return Pair(id=pair_id, subset=subset, category=category, prompt=f"prompt {pair_id}", chosen=f"good {pair_id}",
                rejected=f"bad {pair_id}", chosen_type="answer", rejected_type="answer", twin=None, pair_type=None,
                split="test", flaw=flaw)


def board_table() -> pd.DataFrame:
    """As benchmark.leaderboard.build_table orders it: models by balance, then the calibration rows."""
    return pd.DataFrame({
        "model": ["m/a", "m/b", "tension-bench/baseline-refuse"], "kind": ["classifier"] * 2 + ["plugin:x"],
        "parameters": [10, 20, 0], "balance": [0.8, 0.6, 0.269], "helpful": [0.8, 0.7, 0.169],
        "harmless": [0.8, 0.5, 0.667], "baseline": [False, False, True], "verified": [False] * 3,
        "reference": [False] * 3, "balance_ci": ["", "", ""], "refusal_context": [0.7, 0.5, 0.5]})


def test_models_are_ranked_and_calibration_rows_are_not():
    ranked = table.ranked(board_table())
    assert ranked["rank"].tolist()[:2] == [1.0, 2.0] and math.isnan(ranked["rank"].iloc[2])
    # filtering keeps a model's rank: it is its place on the whole board
    assert table.filter_table(ranked, search="m/b")["rank"].tolist() == [2.0]
    shown = table.display_table(ranked, about.COLUMN_LABELS).data
    assert shown["Baseline"].tolist() == ["", "", "baseline"]
    assert "Refusal context" in shown.columns and len(shown.columns) == len(table.DISPLAY_COLUMNS)


def test_the_calibration_table_reads_the_rows_scores():
    frame = table.calibration_table(board_table())
    assert frame.to_dict("records") == [{"model": "tension-bench/baseline-refuse", "helpful": "0.169",
                                         "harmless": "0.667", "balance": "0.269", "refusal_context": "0.500"}]


def test_a_baseline_is_never_on_the_frontier():
    assert table.frontier_table(board_table())["model"].tolist() == ["m/a"]


def test_failures_are_the_lost_pairs_most_confidently_wrong_first():
    pairs = {p.id: p for p in (pair("p1"), pair("p2", flaw="too short"), pair("p3", subset="refuse_harmful"),
                               pair("p4", category="advice"), pair("p5"))}
    rewards = {"p1": (1.0, 0.0), "p2": (0.0, 3.0), "p3": (1.0, 2.0), "p4": (0.5, 0.5), "p5": (-1.0, 0.5)}
    found = table.failures(pairs, rewards)
    assert found.total == 4 and found.frame["id"].tolist() == ["p2", "p5", "p3", "p4"]    # p4 is a tie
    first = found.frame.iloc[0]
    assert (first["margin"], first["reward_chosen"], first["reward_rejected"], first["flaw"]) == (
        "-3.0000", "0.0000", "3.0000", "too short")
    assert first["prompt"] == "prompt p2" and first["rejected"] == "bad p2"
    assert table.failures(pairs, rewards, subset="refuse_harmful").frame["id"].tolist() == ["p3"]
    assert table.failures(pairs, rewards, category="advice").frame["id"].tolist() == ["p4"]
    assert table.failures(pairs, rewards, limit=1).total == 4
    assert table.pair_choices(pairs) == (["all", "helpful_quality", "refuse_harmful"], ["all", "advice", "coding"])


def test_disagreements_are_pairs_one_model_wins_and_the_other_does_not():
    pairs = {p.id: p for p in (pair("p1"), pair("p2"), pair("p3"), pair("p4"), pair("p5"))}
    a = {"p1": (1.0, 0.0), "p2": (0.0, 3.0), "p3": (1.0, 2.0), "p4": (0.5, 0.5), "p5": (2.0, 0.0)}
    b = {"p1": (1.0, 0.0), "p2": (1.0, 0.0), "p3": (0.0, 1.0), "p4": (0.9, 0.5), "p5": (0.0, 0.5)}
    found = table.disagreements(pairs, a, b, "A", "B")
    # p1 both win, p3 both lose; the others ordered by the loser's margin (p2 −3, p5 −0.5, p4 tie 0)
    assert found.frame["id"].tolist() == ["p2", "p5", "p4"]
    assert found.frame["won_by"].tolist() == ["B", "A", "B"]
    assert found.frame.iloc[0][["margin_a", "margin_b"]].tolist() == ["-3.0000", "+1.0000"]


def test_category_intervals_are_read_from_the_results():
    doc = {"scores": {"categories": {"coding": {"accuracy": 0.5, "ci95": [0.25, 0.75], "n": 4},
                                     "advice": {"accuracy": 1.0, "n": 2}}}}
    assert table.categories_table(doc).values.tolist() == [["advice", "1.000", "", "2"],
                                                           ["coding", "0.500", "[0.250, 0.750]", "4"]]
