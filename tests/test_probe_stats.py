"""Probe statistics (benchmark.probe_stats) on cases with known answers, each chosen so that the
mistakes of probe version 1 give a different number."""

import itertools
import math

import numpy as np
import pytest

from benchmark import probe_stats as ps
from benchmark.errors import BenchmarkError

# ---------------------------------------------------------------- whitening


def _true_cosine(mu_h, mu_s, sd):
    """The cosine in the metric of the true within-objective noise covariance diag(sd²)."""
    w = 1 / sd ** 2
    return float((mu_h * w) @ mu_s / math.sqrt(((mu_h * w) @ mu_h) * ((mu_s * w) @ mu_s)))


def _pooled_v1(d_h, d_s):
    """Version 1's metric: the covariance of H ∪ S pooled around the joint mean (kept here only
    to show the test case separates the two)."""
    pooled = np.concatenate([d_h, d_s])
    metric = ps.WhitenedMetric.fit(pooled - pooled.mean(axis=0))
    mu_h, mu_s = d_h.mean(axis=0), d_s.mean(axis=0)
    ih, is_ = metric.solve(mu_h), metric.solve(mu_s)
    return mu_h @ is_ / math.sqrt((mu_h @ ih) * (mu_s @ is_))


@pytest.mark.parametrize("n,d", [(50, 10), (30, 80), (500, 20)])
def test_dual_ledoit_wolf_matches_sklearn(n, d):
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(n + d)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d)
    x -= x.mean(axis=0)
    metric = ps.WhitenedMetric.fit(x)
    reference = LedoitWolf(assume_centered=True).fit(x)
    assert metric.shrinkage == pytest.approx(reference.shrinkage_, abs=1e-12)
    v = rng.normal(size=(d, 3))
    np.testing.assert_allclose(metric.solve(v), np.linalg.solve(reference.covariance_, v), rtol=1e-8, atol=1e-10)


def test_a_shared_shift_does_not_flip_the_whitened_cosine():
    """Issue 14's simulation: a shared chosen−rejected shift of 2 noise SDs along a noisy direction
    plus strongly opposing components; true cosine −0.97. Within-objective whitening recovers it;
    v1's pooled covariance absorbed the H−S contrast and returned about +0.63."""
    rng = np.random.default_rng(0)
    d, n = 50, 400
    sd = np.ones(d)
    sd[0] = 20.0
    shift, opposing = np.zeros(d), np.zeros(d)
    shift[0] = 2 * sd[0]
    opposing[1] = math.sqrt(4 * 1.97 / 0.03) * sd[1]
    mu_h, mu_s = shift + opposing, shift - opposing
    true = _true_cosine(mu_h, mu_s, sd)
    assert true == pytest.approx(-0.97, abs=1e-9)
    d_h = mu_h + rng.normal(size=(n, d)) * sd
    d_s = mu_s + rng.normal(size=(n, d)) * sd
    whitened = ps.whitened_cosine(d_h.mean(axis=0), d_s.mean(axis=0), d_h, d_s)
    assert whitened == pytest.approx(true, abs=0.1)
    assert _pooled_v1(d_h, d_s) > 0.3                    # the mistake this test exists to catch
    assert ps.cosine(d_h.mean(axis=0), d_s.mean(axis=0)) > 0.5     # raw: dominated by the shift


@pytest.mark.parametrize("shift", [0.0, 2.0, 10.0])
def test_isotropic_noise_whitened_equals_raw_whatever_the_shift(shift):
    rng = np.random.default_rng(int(shift) + 1)
    d, n = 40, 300
    common = np.zeros(d)
    common[3] = shift
    mu_h, mu_s = rng.normal(size=d) * 0.3 + common, rng.normal(size=d) * 0.3 + common
    d_h, d_s = mu_h + rng.normal(size=(n, d)), mu_s + rng.normal(size=(n, d))
    raw = ps.cosine(d_h.mean(axis=0), d_s.mean(axis=0))
    assert ps.whitened_cosine(d_h.mean(axis=0), d_s.mean(axis=0), d_h, d_s) == pytest.approx(raw, abs=0.05)


def test_a_rogue_high_variance_dimension_is_discounted():
    rng = np.random.default_rng(2)
    n, d = 2000, 4
    noise = rng.normal(size=(2 * n, d))
    noise[:, 0] *= 100.0
    mu_h, mu_s = np.array([10.0, 1.0, 0.0, 0.0]), np.array([10.0, -1.0, 0.0, 0.0])
    d_h, d_s = mu_h + noise[:n], mu_s + noise[n:]
    assert ps.cosine(mu_h, mu_s) > 0.95
    assert ps.whitened_cosine(mu_h, mu_s, d_h, d_s) < -0.5


def test_identical_and_opposite_directions():
    rng = np.random.default_rng(3)
    d_h = rng.normal(size=(200, 12)) + 1.0
    assert ps.whitened_cosine(np.ones(12), np.ones(12), d_h, d_h) == pytest.approx(1.0)
    assert ps.whitened_cosine(np.ones(12), -np.ones(12), d_h, -d_h) == pytest.approx(-1.0)


def test_direction_cosines_bootstrap_holds_the_estimate_and_is_deterministic():
    rng = np.random.default_rng(4)
    d_h, d_s = rng.normal(size=(600, 4)) + 0.3, rng.normal(size=(500, 4)) - 0.3
    clusters_h = ps.Clusters.of([i // 2 for i in range(600)])   # two pairs per prompt
    clusters_s = ps.Clusters.of(list(range(500)))
    first = ps.direction_cosines(d_h, d_s, clusters_h, clusters_s, *ps.resample_weights(clusters_h, clusters_s))
    again = ps.direction_cosines(d_h, d_s, clusters_h, clusters_s, *ps.resample_weights(clusters_h, clusters_s))
    assert first.direction_cosine.value == pytest.approx(
        ps.whitened_cosine(d_h.mean(axis=0), d_s.mean(axis=0), d_h, d_s), abs=1e-12)
    assert first.raw_cosine.value == pytest.approx(ps.cosine(d_h.mean(axis=0), d_s.mean(axis=0)), abs=1e-12)
    lo, hi = first.direction_cosine.ci95
    assert lo < first.direction_cosine.value < hi and hi - lo < 0.5
    assert first.direction_cosine.ci95 == again.direction_cosine.ci95


def test_resampled_cosines_shrink_towards_zero_in_many_dimensions():
    """Each resample adds noise to both means: in 384 dimensions the percentile interval of a
    strong cosine lies between the estimate and 0 (what validate allows for cosines)."""
    rng = np.random.default_rng(1)
    d, n = 384, 300
    base = np.zeros(d)
    base[0] = 2.0
    d_h, d_s = base + rng.normal(size=(n, d)), -base + rng.normal(size=(n, d))
    clusters = ps.Clusters.of(range(n))
    result = ps.direction_cosines(d_h, d_s, clusters, clusters, *ps.resample_weights(clusters, clusters))
    value, (lo, hi) = result.raw_cosine.value, result.raw_cosine.ci95
    assert value < lo < hi < 0


def test_cluster_resampling_moves_a_prompts_pairs_together():
    weights, = ps.resample_weights(ps.Clusters.of(["a", "a", "b", "c"]))
    assert weights.shape == (1000, 3)            # three prompts, not four pairs
    assert (weights.sum(axis=1) == 3).all()


# ---------------------------------------------------------------- halves and depths


def test_depths_count_each_layer_once_and_the_tension_layers_exclude_the_readout():
    plan = ps.depth_plan(6)
    assert [d.layer for d in plan] == [0, 1, 2, 3, 4, 5, 6]              # v1: 0,1,2,2,3,4,5,5,6
    assert [d.layer for d in plan if d.in_tension_index] == [3, 4, 5]
    assert plan[-1].readout and plan[-1].rhos == (1.0,)
    assert [d.layer for d in ps.depth_plan(30) if d.in_tension_index] == [15, 19, 23, 26]
    assert [d.layer for d in ps.depth_plan(1) if d.in_tension_index] == []   # ρ = 0.5 rounds up to L
    assert ps.layer_for(0.5, 3) == 2 and ps.layer_for(0.375, 4) == 2


def test_tension_index_is_minus_the_mean_over_its_layers():
    estimates = [ps.Estimate(v, [v - 0.1, v + 0.1], np.full(1000, v)) for v in (-0.2, -0.4)]
    tension = ps.tension_estimate(estimates)
    assert tension.value == pytest.approx(0.3)
    assert ps.tension_estimate([estimates[0], ps.Estimate(None, None, np.full(1000, np.nan))]).value is None


def test_halves_follow_the_prompt_not_the_pair():
    assert ps.is_select_prompt("How does phishing work?") == ps.is_select_prompt("How does phishing work?")
    prompts = [f"prompt {i}" for i in range(200)]
    share = np.mean([ps.is_select_prompt(p) for p in prompts])
    assert 0.35 < share < 0.65
    expected = int(__import__("hashlib").sha256('"prompt 7"'.encode()).hexdigest()[0], 16) % 2 == 0
    assert ps.is_select_prompt("prompt 7") == expected      # sha256 of the canonical JSON


# ---------------------------------------------------------------- neurons


def test_block_k_is_exact_decimal_arithmetic():
    assert [ps.block_k(m) for m in (64, 200, 201, 1536, 2000)] == [1, 1, 2, 8, 10]
    assert ps.block_k(50, "0.02") == 1 and ps.block_k(70, "0.1") == 7


def test_per_block_choice_gives_every_block_its_share():
    """One block's units are far more consistent: a global ranking (v1) gives it every unit."""
    scores = np.concatenate([np.linspace(5, 9, 200), np.linspace(0.1, 1, 200), np.linspace(0.1, 1, 400)])
    chosen = ps.top_per_block(scores, [200, 200, 400])
    assert ps.per_block_counts(chosen, [200, 200, 400]) == [1, 1, 2]
    assert ps.per_block_counts(ps.top_units(scores, 4), [200, 200, 400]) == [4, 0, 0]


def test_top_units_round_and_break_ties_by_index():
    assert ps.top_units(np.array([1.0, -3.0, 3.0000000001, 2.0, 0.5]), 2).tolist() == [1, 2]


def test_overlap_p_is_the_exact_convolution():
    """Brute force over every pair of per-block subsets of two small blocks."""
    blocks, ks = [6, 5], [2, 1]

    def subsets():
        per_block = [list(itertools.combinations(range(m), k)) for m, k in zip(blocks, ks)]
        return list(itertools.product(*per_block))

    all_sets = subsets()
    fixed = all_sets[0]
    counts = [sum(len(set(a) & set(b)) for a, b in zip(fixed, other)) for other in all_sets]
    for observed in range(4):
        brute = np.mean([c >= observed for c in counts])
        assert ps.overlap_p(blocks, ks, observed) == pytest.approx(brute, abs=1e-12)
    dist = ps.overlap_distribution([1536] * 6, [8] * 6)
    assert dist.sum() == pytest.approx(1.0) and (dist @ np.arange(len(dist))) == pytest.approx(6 * 64 / 1536)


def _simulated_units(rng, n_pairs, blocks, planted_per_block):
    """Unit activations at t* for chosen and rejected texts; the same `planted_per_block` units in
    every block move with the pair for both objectives."""
    total = sum(blocks)
    chosen = rng.normal(size=(2 * n_pairs, total))
    rejected = rng.normal(size=(2 * n_pairs, total))
    offsets = ps.block_offsets(blocks)
    for b in range(len(blocks)):
        chosen[:, offsets[b]:offsets[b] + planted_per_block] += 3.0
    return np.concatenate([chosen, rejected]), 2 * n_pairs


def test_a_planted_overlap_is_detected_and_a_random_one_is_not():
    rng = np.random.default_rng(5)
    blocks = [400, 400, 400]
    units, n = _simulated_units(rng, 60, blocks, planted_per_block=2)
    helpful = np.arange(0, 60), np.arange(n, n + 60)
    harmless = np.arange(60, 120), np.arange(n + 60, n + 120)
    ks = [ps.block_k(m) for m in blocks]
    sets = [ps.top_per_block(ps.unit_scores(units, c, r), blocks) for c, r in (helpful, harmless)]
    planted = ps.overlap_summary(*sets, blocks, ks)
    assert planted.overlap == 6 and planted.overlap_p < 0.01 and planted.jaccard_chance_corrected > 0.9
    noise = rng.normal(size=units.shape)
    random_sets = [ps.top_per_block(ps.unit_scores(noise, c, r), blocks) for c, r in (helpful, harmless)]
    chance = ps.overlap_summary(*random_sets, blocks, ks)
    assert chance.overlap_p > 0.05
    assert chance.expected_overlap == pytest.approx(3 * 4 / 400)
    assert chance.shared_fraction == chance.overlap / 6


def test_random_block_sets_are_block_matched_and_seeded():
    sets = ps.random_block_sets([64, 32], [2, 1], 5)
    assert all(ps.per_block_counts(s, [64, 32]) == [2, 1] for s in sets)
    assert [s.tolist() for s in sets] == [s.tolist() for s in ps.random_block_sets([64, 32], [2, 1], 5)]


# ---------------------------------------------------------------- ablations and the null


def test_interference_and_its_p_value():
    null = ps.NullResult(helpful=np.array([0.0, 0.2, -0.2, 0.1]), harmless=np.array([0.1, -0.1, 0.0, 0.0]))
    value = ps.interference_statistic(0.5, 0.3, null)
    assert value == pytest.approx(((0.5 - 0.0) + (0.3 - 0.025)) / 2)
    assert ps.upper_p(value, ps.null_statistics(null)) == pytest.approx(1 / 5)      # +1-corrected
    assert ps.upper_p(-10.0, ps.null_statistics(null)) == 1.0


def test_margin_effects_are_in_units_of_the_unablated_sd():
    base = ps.baseline_of(np.array([1.0, 3.0, -1.0, 1.0]))
    assert base.sd == pytest.approx(np.std([1.0, 3.0, -1.0, 1.0])) and base.accuracy == 0.75
    clusters = ps.Clusters.of([0, 1, 2, 3])
    effect = ps.effect_of(base.margins - base.sd, base, clusters, *ps.resample_weights(clusters))
    assert effect.margin_effect == pytest.approx(-1.0) and effect.accuracy_delta == pytest.approx(-0.5)
    pair_effects = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    assert ps.linear_margin_effects(pair_effects, [np.array([0, 1])], base)[0] == pytest.approx(2.0 / base.sd)


# ---------------------------------------------------------------- the paper's measure


def test_paper_sets_clamp_at_zero_and_take_the_global_top_ten_percent():
    means = -np.ones(30)
    means[[4, 17, 29]] = [5.0, 4.0, 3.0]
    assert ps.paper_set(means).tolist() == [4, 17, 29]
    means[[4, 17, 29]] = -1.0
    assert ps.paper_set(means).tolist() == [0, 1, 2]   # all clamped to 0: ties by index


def test_bitmaps_round_trip_and_refuse_the_wrong_length():
    units = np.array([0, 5, 9, 127])
    text = ps.pack_units(units, 130)
    assert ps.unpack_units(text, 130).tolist() == units.tolist()
    with pytest.raises(ValueError):
        ps.unpack_units(text, 200)
    with pytest.raises(ValueError):
        ps.unpack_units(ps.pack_units(np.array([131]), 136), 130)


def test_set_overlap_chance_is_p_over_two_minus_p():
    a, b = np.arange(0, 10), np.arange(5, 15)
    overlap = ps.set_overlap(a, b, 100)
    assert overlap.overlap == 5 and overlap.jaccard == pytest.approx(5 / 15)
    assert overlap.jaccard_chance == pytest.approx(0.1 / 1.9)


def test_cross_model_overlaps_refuse_different_layouts():
    def paper(units_per_block, helpful, harmless):
        total = sum(units_per_block)
        return {"site_kind": "activation", "units_per_block": units_per_block,
                "helpful_set": ps.pack_units(np.array(helpful), total),
                "harmless_set": ps.pack_units(np.array(harmless), total)}

    a, b = paper([10, 10], [0, 1], [2, 3]), paper([10, 10], [1, 2], [3, 4])
    rows = {(x, y): o.jaccard for x, y, o in ps.cross_model_overlaps(a, b)}
    assert rows[("helpful", "harmless")] == 0.0 and rows[("helpful", "helpful")] == pytest.approx(1 / 3)
    assert rows[("harmless", "helpful")] == pytest.approx(1 / 3)
    with pytest.raises(BenchmarkError, match="different unit layouts"):
        ps.cross_model_overlaps(a, paper([20], [0, 1], [2, 3]))
