"""Probe statistics (DESIGN §5, version "2") on plain arrays: halves, depths, within-objective
Ledoit–Wolf whitening, neuron choice and overlap tests, ablation effects and nulls, the paper's
measure. numpy only, so the validator and the leaderboard app can use it without torch."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import numpy as np

from benchmark.errors import BenchmarkError
from benchmark.metrics import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_weights, cluster_means, percentile_ci

RHOS = tuple(k / 8 for k in range(9))
NEURON_FRACTION = "0.005"           # per block, as a decimal string so 0.005·200 is exactly 1
DOSE_FRACTIONS = ("0.005", "0.02", "0.1")
PAPER_FRACTION = "0.1"
ABLATION_PAIRS_PER_OBJECTIVE = 128
PAPER_ABLATION_PAIRS_PER_OBJECTIVE = 64   # the paper's zero-ablations: a prefix of the same order
NULL_SETS = 200                      # attribution-estimated random sets
EXACT_NULL_SETS = 10                 # when the adapter cannot backpropagate
SCORE_EPSILON = 1e-6
SIGNIFICANT_DIGITS = 6               # rankings compare values rounded to this many digits
UNIT_CHUNK = 16384

Interval = list  # [lo, hi]


# ---------------------------------------------------------------- halves and depths


def canonical_json(value) -> str:
    """Sorted keys, no spaces, UTF-8 text: the one canonical form (as the prompt-set fingerprint)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def prompt_sha256(prompt) -> str:
    return hashlib.sha256(canonical_json(prompt).encode("utf-8")).hexdigest()


def is_select_prompt(prompt) -> bool:
    """DESIGN §5: even first hex digit of sha256(canonical JSON of the prompt) → `select`; pairs
    sharing a prompt (a borderline prompt's two pairs) land in the same half."""
    return int(prompt_sha256(prompt)[0], 16) % 2 == 0


def layer_for(rho: float, n_blocks: int) -> int:
    """Hidden-state index for a relative depth: round(ρ·L), halves rounded up."""
    return int(math.floor(rho * n_blocks + 0.5))


@dataclass(frozen=True)
class Depth:
    layer: int
    rhos: tuple[float, ...]          # the grid depths k/8 that map to this layer
    readout: bool                    # layer L: what the head reads
    in_tension_index: bool           # some 0.5 ≤ ρ < 1 maps here, and it is not the readout


def depth_plan(n_blocks: int) -> list[Depth]:
    """The distinct layers of the nine-point grid, each once, in order."""
    layers: dict[int, list[float]] = {}
    for rho in RHOS:
        layers.setdefault(layer_for(rho, n_blocks), []).append(rho)
    return [Depth(layer, tuple(rhos), layer == n_blocks,
                  layer != n_blocks and any(0.5 <= r < 1 for r in rhos))
            for layer, rhos in sorted(layers.items())]


# ---------------------------------------------------------------- clusters and the bootstrap


@dataclass(frozen=True)
class Clusters:
    """Items grouped by prompt (first appearance order): the bootstrap resamples whole clusters."""
    labels: np.ndarray

    @classmethod
    def of(cls, keys: Sequence) -> "Clusters":
        index: dict = {}
        return cls(np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64))

    @property
    def n(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per-cluster sums of per-item rows (float64)."""
        values = np.asarray(values, dtype=np.float64)
        out = np.zeros((self.n,) + values.shape[1:], dtype=np.float64)
        np.add.at(out, self.labels, values)
        return out

    def subset(self, mask: np.ndarray) -> "Clusters":
        return Clusters.of(self.labels[np.asarray(mask, dtype=bool)].tolist())


def resample_weights(*groups: Clusters, resamples: int = BOOTSTRAP_RESAMPLES) -> list[np.ndarray]:
    """Cluster weights (resamples × n_clusters) for each group, drawn in order from a fresh
    default_rng(0): the same call gives the same resamples whatever else the probe computed."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    return [bootstrap_weights(max(g.n, 1), rng, resamples).astype(np.float64)[:, :g.n] for g in groups]


def interval(samples: np.ndarray) -> Interval | None:
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[np.isfinite(samples)]
    if len(samples) < 0.9 * BOOTSTRAP_RESAMPLES:   # too many undefined resamples for an interval
        return None
    return percentile_ci(samples)


def weighted_rate(outcomes: np.ndarray, clusters: Clusters, weights: np.ndarray) -> np.ndarray:
    """Resampled means of per-item values (metrics.cluster_means with this probe's shared weights)."""
    return cluster_means(outcomes, clusters.labels, weights)


# ---------------------------------------------------------------- directions


def cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0 or not (math.isfinite(na) and math.isfinite(nb)):
        return None
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))


@dataclass(frozen=True)
class WhitenedMetric:
    """Σ = c·I + a·XᵀX, the Ledoit–Wolf shrinkage of XᵀX/n towards a scaled identity, kept in the
    n×n dual: Σ⁻¹ is applied by Woodbury, so the hidden size d never needs a d×d matrix."""
    x: np.ndarray          # (n, d) centred rows
    c: float
    a: float
    inner: np.ndarray      # (I/a + K/c)⁻¹ with K = XXᵀ
    shrinkage: float
    primal: np.ndarray | None = None   # Σ⁻¹ itself, only when nothing is shrunk (n > d)

    @classmethod
    def fit(cls, x: np.ndarray) -> "WhitenedMetric | None":
        x = np.asarray(x, dtype=np.float64)
        n, d = x.shape
        if n < 2 or d < 1:
            return None
        gram = x @ x.T
        trace = float(np.trace(gram)) / n                 # tr(XᵀX/n)
        mu = trace / d
        if not (mu > 0 and math.isfinite(mu)):
            return None
        if d == 1:
            shrinkage = 0.0
        else:   # sklearn.covariance.ledoit_wolf_shrinkage, written with K = XXᵀ instead of XᵀX
            delta_ = float((gram ** 2).sum()) / n ** 2
            beta_ = float((np.diag(gram) ** 2).sum())
            beta = (beta_ / n - delta_) / (d * n)
            delta = (delta_ - 2.0 * mu * trace + d * mu ** 2) / d
            beta = min(beta, delta)
            shrinkage = 0.0 if beta <= 0 or delta <= 0 else beta / delta
        c, a = shrinkage * mu, (1.0 - shrinkage) / n
        if c <= 1e-9 * mu:
            # nothing shrunk: Σ = XᵀX/n, invertible only with more independent rows than dimensions
            if d > n or np.linalg.matrix_rank(x) < d:
                return None
            return cls(x, 0.0, 1.0 / n, np.zeros((0, 0)), 0.0, np.linalg.inv(x.T @ x / n))
        inner = np.linalg.inv(np.eye(n) / a + gram / c) if a > 0 else np.zeros((n, n))
        return cls(x, c, a, inner, float(shrinkage))

    def solve(self, v: np.ndarray) -> np.ndarray:
        """Σ⁻¹ v for v of shape (d,) or (d, k)."""
        if self.primal is not None:
            return self.primal @ v
        xv = self.x @ v
        return v / self.c - self.x.T @ (self.inner @ xv) / self.c ** 2

    def gram(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """left Σ⁻¹ rightᵀ for row stacks (p, d) and (q, d)."""
        return left @ self.solve(right.T)


def _bilinear_cosines(g_hs: np.ndarray, g_hh: np.ndarray, g_ss: np.ndarray,
                      w_h: np.ndarray, w_s: np.ndarray) -> np.ndarray:
    """cos between Σ w_h,c·C_h,c and Σ w_s,c·C_s,c for each weight row, from the Gram matrices."""
    num = np.einsum("ri,ri->r", w_h @ g_hs, w_s)
    hh = np.einsum("ri,ri->r", w_h @ g_hh, w_h)
    ss = np.einsum("ri,ri->r", w_s @ g_ss, w_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / np.sqrt(hh * ss)
    out[~((hh > 0) & (ss > 0))] = np.nan
    return np.clip(out, -1.0, 1.0)


@dataclass(frozen=True)
class Estimate:
    value: float | None
    ci95: Interval | None
    resamples: np.ndarray            # per bootstrap resample (nan where undefined)


def _estimate(point: float, samples: np.ndarray) -> Estimate:
    if not math.isfinite(point):
        return Estimate(None, None, np.full(len(samples), np.nan))
    return Estimate(float(point), interval(samples), samples)


@dataclass(frozen=True)
class DirectionResult:
    direction_cosine: Estimate
    raw_cosine: Estimate
    shrinkage: float | None


def direction_cosines(delta_h: np.ndarray, delta_s: np.ndarray, clusters_h: Clusters, clusters_s: Clusters,
                      weights_h: np.ndarray, weights_s: np.ndarray) -> DirectionResult:
    """Whitened and raw cosine of μ_H and μ_S (select-half mean differences) with bootstrap
    intervals. Σ_W, the pooled within-objective covariance (H centred on μ_H, S on μ_S), is fitted
    once and held fixed in the resamples; cosines are scale-free, so cluster sums stand in for means."""
    delta_h = np.asarray(delta_h, dtype=np.float64)
    delta_s = np.asarray(delta_s, dtype=np.float64)
    c_h, c_s = clusters_h.sums(delta_h), clusters_s.sums(delta_s)
    ones_h, ones_s = np.ones((1, clusters_h.n)), np.ones((1, clusters_s.n))
    raw = (c_h @ c_s.T, c_h @ c_h.T, c_s @ c_s.T)
    raw_point = _bilinear_cosines(*raw, ones_h, ones_s)[0]
    raw_est = _estimate(raw_point, _bilinear_cosines(*raw, weights_h, weights_s))
    within = np.concatenate([delta_h - delta_h.mean(axis=0), delta_s - delta_s.mean(axis=0)])
    metric = WhitenedMetric.fit(within)
    if metric is None:
        return DirectionResult(Estimate(None, None, np.full(len(weights_h), np.nan)), raw_est, None)
    white = (metric.gram(c_h, c_s), metric.gram(c_h, c_h), metric.gram(c_s, c_s))
    point = _bilinear_cosines(*white, ones_h, ones_s)[0]
    return DirectionResult(_estimate(point, _bilinear_cosines(*white, weights_h, weights_s)), raw_est,
                           metric.shrinkage)


def whitened_cosine(mu_h: np.ndarray, mu_s: np.ndarray, delta_h: np.ndarray, delta_s: np.ndarray) -> float | None:
    """μ_Hᵀ Σ_W⁻¹ μ_S / (‖μ_H‖ ‖μ_S‖ in that metric), Σ_W fitted on the within-objective residuals."""
    within = np.concatenate([np.asarray(delta_h, np.float64) - np.mean(delta_h, axis=0),
                             np.asarray(delta_s, np.float64) - np.mean(delta_s, axis=0)])
    metric = WhitenedMetric.fit(within)
    if metric is None:
        return None
    mu_h, mu_s = np.asarray(mu_h, np.float64), np.asarray(mu_s, np.float64)
    ih, is_ = metric.solve(mu_h), metric.solve(mu_s)
    hh, ss = float(mu_h @ ih), float(mu_s @ is_)
    if hh <= 0 or ss <= 0:
        return None
    return float(np.clip(mu_h @ is_ / math.sqrt(hh * ss), -1.0, 1.0))


def tension_estimate(per_layer: Sequence[Estimate]) -> Estimate:
    """− mean direction_cosine over the tension layers; the same resamples at every layer."""
    if not per_layer or any(e.value is None for e in per_layer):
        n = len(per_layer[0].resamples) if per_layer else BOOTSTRAP_RESAMPLES
        return Estimate(None, None, np.full(n, np.nan))
    point = -float(np.mean([e.value for e in per_layer]))
    samples = -np.mean(np.stack([e.resamples for e in per_layer]), axis=0)
    return Estimate(point, interval(samples), samples)


def pair_outcomes(values: np.ndarray) -> np.ndarray:
    """1 where positive, ½ where exactly 0, 0 where negative: a win, a tie, a loss."""
    return np.where(values > 0, 1.0, np.where(values == 0, 0.5, 0.0))


def transfer_rate(direction: np.ndarray, delta: np.ndarray, clusters: Clusters,
                  weights: np.ndarray) -> Estimate:
    """Share of pairs whose difference projects positively on `direction` (a tie counts half)."""
    if len(delta) == 0 or not np.any(direction):
        return Estimate(None, None, np.full(len(weights), np.nan))
    outcomes = pair_outcomes(np.asarray(delta, np.float64) @ np.asarray(direction, np.float64))
    return _estimate(float(outcomes.mean()), weighted_rate(outcomes, clusters, weights))


def mean_of(a: Estimate, b: Estimate) -> Estimate:
    if a.value is None or b.value is None:
        return Estimate(None, None, np.full(len(a.resamples), np.nan))
    samples = (a.resamples + b.resamples) / 2
    return Estimate((a.value + b.value) / 2, interval(samples), samples)


def mean_cosine(delta_a: np.ndarray, delta_b: np.ndarray, clusters_a: Clusters, clusters_b: Clusters,
                weights_a: np.ndarray, weights_b: np.ndarray) -> Estimate:
    """Raw cosine of two mean differences, resampled by cluster (refusal_flip)."""
    if len(delta_a) == 0 or len(delta_b) == 0:
        return Estimate(None, None, np.full(len(weights_a), np.nan))
    c_a, c_b = clusters_a.sums(delta_a), clusters_b.sums(delta_b)
    grams = (c_a @ c_b.T, c_a @ c_a.T, c_b @ c_b.T)
    point = _bilinear_cosines(*grams, np.ones((1, clusters_a.n)), np.ones((1, clusters_b.n)))[0]
    return _estimate(point, _bilinear_cosines(*grams, weights_a, weights_b))


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosines of two (r, p) stacks; nan where a row is zero."""
    num = np.einsum("rp,rp->r", a, b)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den == 0] = np.nan
    return np.clip(out, -1.0, 1.0)


def pair_gram(gram: np.ndarray, left: tuple[np.ndarray, np.ndarray],
              right: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(∇r(c_i) − ∇r(r_i))·(∇r(c_j) − ∇r(r_j)) from a text Gram matrix, for pairs (chosen, rejected)."""
    (lc, lr), (rc, rr) = left, right
    return gram[np.ix_(lc, rc)] - gram[np.ix_(lc, rr)] - gram[np.ix_(lr, rc)] + gram[np.ix_(lr, rr)]


def gradient_cosines(grams: tuple[np.ndarray, np.ndarray, np.ndarray], coef_h: np.ndarray, coef_s: np.ndarray,
                     theta_h: np.ndarray, theta_s: np.ndarray, theta_norm: float) -> tuple[np.ndarray, np.ndarray]:
    """cos(g_H, g_S) and the same after removing each gradient's component along θ, for each row of
    per-pair coefficients (g_O = Σ_i coef_i ∇m_i): quadratic forms in the pair Gram matrices
    (HS, HH, SS); theta_O holds ∇m_i·θ."""
    g_hs, g_hh, g_ss = grams
    dot = np.einsum("ri,ri->r", coef_h @ g_hs, coef_s)
    norm_h = np.einsum("ri,ri->r", coef_h @ g_hh, coef_h)
    norm_s = np.einsum("ri,ri->r", coef_s @ g_ss, coef_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        plain = dot / np.sqrt(norm_h * norm_s)
        if theta_norm > 0:
            along_h, along_s = coef_h @ theta_h / theta_norm, coef_s @ theta_s / theta_norm
            rotation = (dot - along_h * along_s) / np.sqrt(np.clip(norm_h - along_h ** 2, 0, None)
                                                         * np.clip(norm_s - along_s ** 2, 0, None))
        else:
            rotation = plain.copy()
    plain[~np.isfinite(plain)] = np.nan
    rotation[~np.isfinite(rotation)] = np.nan
    return np.clip(plain, -1.0, 1.0), np.clip(rotation, -1.0, 1.0)


# ---------------------------------------------------------------- neurons


def round_significant(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros_like(values)
    nonzero = (values != 0) & np.isfinite(values)
    magnitude = np.floor(np.log10(np.abs(values[nonzero])))
    factor = 10.0 ** (digits - 1 - magnitude)
    out[nonzero] = np.round(values[nonzero] * factor) / factor
    return out


def top_units(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-k by |score| (rounded to 6 significant digits, so batch-level float noise cannot
    reorder them); ties go to the lower index. Returned sorted."""
    magnitude = np.abs(round_significant(scores))
    order = np.lexsort((np.arange(len(scores)), -magnitude))
    return np.sort(order[:k])


def block_k(units: int, fraction: str = NEURON_FRACTION) -> int:
    """k_b = max(1, ceil(fraction·m_b)), in exact decimal arithmetic."""
    return max(1, math.ceil(units * Fraction(fraction)))


def block_offsets(units_per_block: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(units_per_block)]).astype(np.int64)


def top_per_block(scores: np.ndarray, units_per_block: Sequence[int], fraction: str = NEURON_FRACTION) -> np.ndarray:
    """N_O: in each block the top k_b units by |score| (global indices, sorted)."""
    offsets = block_offsets(units_per_block)
    chosen = [top_units(scores[lo:hi], block_k(hi - lo, fraction)) + lo for lo, hi in zip(offsets[:-1], offsets[1:])]
    return np.concatenate(chosen).astype(np.int64)


def unit_scores(units: np.ndarray, chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """s_j = mean(Δa_j) / (std(Δa_j) + 1e-6) over the given pairs, in float64, chunked over units."""
    total = units.shape[1]
    out = np.empty(total, dtype=np.float64)
    for lo in range(0, total, UNIT_CHUNK):
        hi = min(total, lo + UNIT_CHUNK)
        delta = units[chosen, lo:hi].astype(np.float64) - units[rejected, lo:hi].astype(np.float64)
        out[lo:hi] = delta.mean(axis=0) / (delta.std(axis=0) + SCORE_EPSILON)
    return out


def hypergeometric_pmf(units: int, k: int) -> np.ndarray:
    """P(|A ∩ B| = x) for two independent uniform k-subsets of `units`, x = 0…k (exact integers)."""
    total = math.comb(units, k)
    return np.array([math.comb(k, x) * math.comb(units - k, k - x) / total for x in range(k + 1)])


def overlap_distribution(units_per_block: Sequence[int], k_per_block: Sequence[int]) -> np.ndarray:
    """The exact distribution of Σ_b |A_b ∩ B_b|: a convolution of per-block hypergeometrics."""
    dist = np.array([1.0])
    for m, k in zip(units_per_block, k_per_block):
        dist = np.convolve(dist, hypergeometric_pmf(int(m), int(k)))
    return dist


def overlap_p(units_per_block: Sequence[int], k_per_block: Sequence[int], observed: int) -> float:
    """P(overlap ≥ observed) under independent choice in every block."""
    if observed <= 0:
        return 1.0
    dist = overlap_distribution(units_per_block, k_per_block)
    return float(min(1.0, dist[observed:].sum())) if observed < len(dist) else 0.0


@dataclass(frozen=True)
class OverlapSummary:
    overlap: int
    shared_fraction: float
    jaccard: float
    expected_overlap: float
    jaccard_chance: float
    jaccard_chance_corrected: float
    overlap_p: float


def overlap_summary(set_h: np.ndarray, set_s: np.ndarray, units_per_block: Sequence[int],
                    k_per_block: Sequence[int]) -> OverlapSummary:
    k_total = int(sum(k_per_block))
    overlap = int(len(np.intersect1d(set_h, set_s)))
    jaccard = overlap / (2 * k_total - overlap)
    expected = float(sum(k * k / m for k, m in zip(k_per_block, units_per_block)))
    chance = expected / (2 * k_total - expected)
    return OverlapSummary(overlap, overlap / k_total, jaccard, expected, chance,
                          (jaccard - chance) / (1 - chance), overlap_p(units_per_block, k_per_block, overlap))


def random_block_sets(units_per_block: Sequence[int], k_per_block: Sequence[int], n_sets: int) -> list[np.ndarray]:
    """Block-matched random unit sets: set r draws k_b units per block with default_rng(r)."""
    offsets = block_offsets(units_per_block)
    sets = []
    for seed in range(n_sets):
        rng = np.random.default_rng(seed)
        sets.append(np.sort(np.concatenate([rng.choice(int(m), int(k), replace=False) + offsets[b]
                                            for b, (m, k) in enumerate(zip(units_per_block, k_per_block))])))
    return sets


def per_block_counts(units: np.ndarray, units_per_block: Sequence[int]) -> list[int]:
    offsets = block_offsets(units_per_block)
    return [int(((units >= lo) & (units < hi)).sum()) for lo, hi in zip(offsets[:-1], offsets[1:])]


# ---------------------------------------------------------------- ablation effects


@dataclass(frozen=True)
class Baseline:
    margins: np.ndarray             # per ablation pair, unablated
    sd: float                       # SD of the unablated margins (the effect unit)
    accuracy: float


def baseline_of(margins: np.ndarray) -> Baseline:
    margins = np.asarray(margins, dtype=np.float64)
    return Baseline(margins, float(margins.std()) if len(margins) else 0.0,
                    float(pair_outcomes(margins).mean()) if len(margins) else 0.0)


@dataclass(frozen=True)
class Effect:
    margin_effect: float | None     # mean margin change / unablated SD
    margin_effect_ci95: Interval | None
    accuracy: float
    accuracy_delta: float


def margin_effect(change: np.ndarray, baseline: Baseline) -> float | None:
    if baseline.sd <= 0 or len(change) == 0:
        return None
    return float(np.mean(change) / baseline.sd)


def effect_of(new_margins: np.ndarray, baseline: Baseline, clusters: Clusters, weights: np.ndarray) -> Effect:
    change = np.asarray(new_margins, np.float64) - baseline.margins
    accuracy = float(pair_outcomes(np.asarray(new_margins, np.float64)).mean()) if len(change) else 0.0
    value = margin_effect(change, baseline)
    ci = None
    if value is not None:
        ci = interval(weighted_rate(change, clusters, weights) / baseline.sd)
    return Effect(value, ci, accuracy, accuracy - baseline.accuracy)


@dataclass(frozen=True)
class NullResult:
    helpful: np.ndarray              # per random set: margin effect on helpful pairs
    harmless: np.ndarray


def interference_statistic(on_harmless_of_helpful: float, on_helpful_of_harmless: float,
                           null: NullResult) -> float:
    """mean over O of [effect on the other objective of ablating N_O − null mean]."""
    return ((on_harmless_of_helpful - float(np.mean(null.harmless)))
            + (on_helpful_of_harmless - float(np.mean(null.helpful)))) / 2


def null_statistics(null: NullResult) -> np.ndarray:
    """The same statistic for each random set (one set stands in for both N_H and N_S)."""
    return ((null.harmless - null.harmless.mean()) + (null.helpful - null.helpful.mean())) / 2


def upper_p(observed: float, null_values: np.ndarray) -> float:
    """Share of null values at least as large as observed, +1-corrected."""
    null_values = np.asarray(null_values, dtype=np.float64)
    return float((1 + np.sum(null_values >= observed - 1e-12)) / (1 + len(null_values)))


def linear_margin_effects(pair_effects: np.ndarray, unit_sets: Sequence[np.ndarray], baseline: Baseline) -> np.ndarray:
    """Predicted margin effects (in SD units) of ablating each set, from `pair_effects` (pairs ×
    units, each unit's linear margin change): a set's effect on a pair is the sum over its units."""
    if baseline.sd <= 0:
        return np.full(len(unit_sets), np.nan)
    return np.array([pair_effects[:, s].sum(axis=1).mean() / baseline.sd for s in unit_sets])


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.clip(np.corrcoef(a, b)[0, 1], -1.0, 1.0))


# ---------------------------------------------------------------- the paper's measure


def paper_k(total_units: int) -> int:
    return max(1, math.ceil(total_units * Fraction(PAPER_FRACTION)))


def paper_set(mean_activation: np.ndarray) -> np.ndarray:
    """The global top 10% of units by mean activation clamped at 0 (ties: lower index)."""
    magnitude = np.clip(np.asarray(mean_activation, np.float64), 0.0, None)
    return top_units(magnitude, paper_k(len(magnitude)))


def pack_units(units: np.ndarray, total: int) -> str:
    """A unit set as base64 of numpy.packbits over a 0/1 vector of `total` (unit 0 = first bit)."""
    bits = np.zeros(total, dtype=np.uint8)
    bits[np.asarray(units, dtype=np.int64)] = 1
    return base64.b64encode(np.packbits(bits).tobytes()).decode("ascii")


def unpack_units(text: str, total: int) -> np.ndarray:
    """The inverse of pack_units; raises ValueError on a bitmap of the wrong length or with bits set
    beyond `total`."""
    raw = np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype=np.uint8)
    if len(raw) != (total + 7) // 8:
        raise ValueError(f"bitmap holds {len(raw) * 8} bits, expected {total}")
    bits = np.unpackbits(raw)
    if bits[total:].any():
        raise ValueError("bitmap has bits set beyond the last unit")
    return np.flatnonzero(bits[:total]).astype(np.int64)


@dataclass(frozen=True)
class SetOverlap:
    overlap: int
    jaccard: float
    jaccard_chance: float
    jaccard_chance_corrected: float


def set_overlap(a: np.ndarray, b: np.ndarray, total: int) -> SetOverlap:
    """Jaccard of two unit sets with its chance level for independent uniform sets of the same
    sizes (E|A∩B| = |A||B|/U; for |A| = |B| = pU this is p/(2−p), 0.1/1.9 at 10%)."""
    overlap = int(len(np.intersect1d(a, b)))
    union = len(a) + len(b) - overlap
    jaccard = overlap / union if union else 0.0
    expected = len(a) * len(b) / total
    chance = expected / (len(a) + len(b) - expected) if len(a) + len(b) - expected > 0 else 0.0
    corrected = (jaccard - chance) / (1 - chance) if chance < 1 else 0.0
    return SetOverlap(overlap, jaccard, chance, corrected)


def paper_layout(paper: dict) -> tuple:
    return (paper.get("site_kind"), tuple(paper.get("units_per_block") or ()))


def cross_model_overlaps(paper_a: dict, paper_b: dict) -> list[tuple[str, str, SetOverlap]]:
    """The paper's cross-model Jaccard for the four set combinations (A's set × B's set). Refuses
    two models whose unit layout (site, units per block) differs: their unit indices name different
    things."""
    if paper_layout(paper_a) != paper_layout(paper_b):
        a_kind, a_units = paper_layout(paper_a)
        b_kind, b_units = paper_layout(paper_b)
        raise BenchmarkError(
            f"different unit layouts ({a_kind}, {len(a_units)} blocks × {sum(a_units)} units vs "
            f"{b_kind}, {len(b_units)} blocks × {sum(b_units)} units): "
            "neuron sets compare only within one architecture")
    total = int(sum(paper_a["units_per_block"]))
    sets_a = {side: unpack_units(paper_a[f"{side}_set"], total) for side in ("helpful", "harmless")}
    sets_b = {side: unpack_units(paper_b[f"{side}_set"], total) for side in ("helpful", "harmless")}
    return [(a, b, set_overlap(sets_a[a], sets_b[b], total))
            for a in ("helpful", "harmless") for b in ("helpful", "harmless")]
