"""leaderboard_app.figures: the Pareto plot leaves calibration rows off the frontier and draws each
one's balance as a labelled reference curve; every string is escaped."""

from __future__ import annotations

import pandas as pd
import pytest

from leaderboard_app import about, figures


def tradeoff(with_baselines: bool = True) -> pd.DataFrame:
    rows = [("m/a", 0.6, 0.6, 0.6, False), ("m/<b>", 0.9, 0.3, 0.45, False)]
    if with_baselines:
        rows += [("tension-bench/baseline-refuse", 0.169, 0.667, 0.269, True),
                 ("tension-bench/baseline-comply", 0.95, 0.95, 0.95, True)]    # dominates both models
    return pd.DataFrame(rows, columns=["model", "helpful", "harmless", "balance", "baseline"])


def svg(table: pd.DataFrame) -> str:
    return figures.pareto_svg(table, about.PARETO_X, about.PARETO_Y, about.PARETO_BALANCE, about.PARETO_EMPTY,
                              about.PARETO_BASELINE)


def test_baselines_are_reference_curves_not_points_on_the_frontier():
    table = tradeoff()
    assert [p[0] for p in figures.tradeoff_points(table)] == ["m/a", "m/<b>"]
    assert figures.pareto_frontier(figures.tradeoff_points(table)) == ["m/a", "m/<b>"]
    drawn = svg(table)
    assert drawn.count('class="baseline-line"') == 2 and drawn.count("<circle") == 2
    assert "baseline-refuse 0.269" in drawn and "baseline-comply 0.950" in drawn
    assert "m/&lt;b&gt;" in drawn and "m/<b>" not in drawn
    assert 'class="baseline-line"' not in svg(tradeoff(with_baselines=False))


@pytest.mark.parametrize("level", [0.269, 0.5, 0.9])
def test_iso_balance_points_have_that_balance(level):
    points = figures.iso_balance(level)
    assert points and all(abs(2 * x * y / (x + y) - level) < 1e-9 for x, y in points)
    assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in points)


def test_margin_labels_are_spread_apart():
    assert figures._spread([10.0, 12.0, 30.0, 31.0], 13) == [10.0, 23.0, 36.0, 49.0]
