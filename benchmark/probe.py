"""The activation-tension probe (DESIGN §5, version "2"), as named stages: directions, transfer,
head-gradient conflict, refusal flip, objective neurons, ablations with their null, and the
paper-compatible block. Capture and model re-runs are in probe_capture; statistics in probe_stats."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from benchmark import PROBE_VERSION
from benchmark import probe_stats as ps
from benchmark.data import Pair, id_hash
from benchmark.errors import BenchmarkError
from benchmark.models.base import HeadFunction
from benchmark.probe_capture import (DEFAULT_BUDGET_BYTES, ActivationCapture, ModelRunner, head_gradients,
                                     head_parameters, head_rewards, head_text_gradients, mean_ablation,
                                     zero_ablation)

__all__ = ["DEFAULT_BUDGET_BYTES", "ActivationCapture", "HeldOut", "ModelRunner", "analyse", "held_out_texts",
           "score_held_out", "text_indices"]

OBJECTIVES = ("helpful", "harmless")


def _ci(estimate: ps.Estimate) -> list | None:
    return estimate.ci95 if estimate.value is not None else None


@dataclass(frozen=True)
class ObjectivePairs:
    """One objective's pairs: text indices, prompt clusters, and which half each pair is in."""
    name: str
    pairs: tuple[Pair, ...]
    chosen: np.ndarray
    rejected: np.ndarray
    prompts: tuple[str, ...]        # canonical JSON, the cluster key
    select: np.ndarray

    @classmethod
    def build(cls, name: str, pairs: Sequence[Pair], chosen_of: dict, rejected_of: dict) -> "ObjectivePairs":
        prompts = tuple(ps.canonical_json(p.prompt) for p in pairs)
        return cls(name, tuple(pairs), np.array([chosen_of[p.id] for p in pairs], dtype=np.int64),
                   np.array([rejected_of[p.id] for p in pairs], dtype=np.int64), prompts,
                   np.array([ps.is_select_prompt(p.prompt) for p in pairs], dtype=bool))

    def clusters(self, mask: np.ndarray | None = None) -> ps.Clusters:
        keys = self.prompts if mask is None else [k for k, m in zip(self.prompts, mask) if m]
        return ps.Clusters.of(keys)

    def deltas(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        mask = np.ones(len(self.pairs), dtype=bool) if mask is None else mask
        return values[self.chosen[mask]].astype(np.float64) - values[self.rejected[mask]].astype(np.float64)

    def texts(self, mask: np.ndarray | None = None) -> np.ndarray:
        mask = np.ones(len(self.pairs), dtype=bool) if mask is None else mask
        return np.unique(np.concatenate([self.chosen[mask], self.rejected[mask]]))


# ---------------------------------------------------------------- directions and transfer


def depth_statistics(capture: ActivationCapture, helpful: ObjectivePairs, harmless: ObjectivePairs) -> dict:
    clusters = (helpful.clusters(helpful.select), harmless.clusters(harmless.select))
    weights = ps.resample_weights(*clusters)
    depths, in_tension = [], []
    n_blocks = capture.sites.n_blocks
    for depth in capture.plan:
        values = capture.residual_at(depth.layer)
        result = ps.direction_cosines(helpful.deltas(values, helpful.select), harmless.deltas(values, harmless.select),
                                      *clusters, *weights)
        depths.append({"layer": depth.layer, "rho": depth.layer / n_blocks, "rhos": list(depth.rhos),
                       "readout": depth.readout, "in_tension_index": depth.in_tension_index,
                       "direction_cosine": result.direction_cosine.value,
                       "direction_cosine_ci95": _ci(result.direction_cosine),
                       "raw_cosine": result.raw_cosine.value, "raw_cosine_ci95": _ci(result.raw_cosine),
                       "shrinkage": result.shrinkage})
        if depth.in_tension_index:
            in_tension.append(result.direction_cosine)
    tension = ps.tension_estimate(in_tension)
    return {"depths": depths, "tension_index": tension.value, "tension_index_ci95": _ci(tension)}


def transfer_statistics(final: np.ndarray, helpful: ObjectivePairs, harmless: ObjectivePairs) -> dict:
    """Measure-half pairs of one objective classified by the other's select-half direction (ρ = 1)."""
    u_h = helpful.deltas(final, helpful.select).mean(axis=0)
    u_s = harmless.deltas(final, harmless.select).mean(axis=0)
    clusters_h, clusters_s = helpful.clusters(~helpful.select), harmless.clusters(~harmless.select)
    weights_h, weights_s = ps.resample_weights(clusters_h, clusters_s)
    h_to_s = ps.transfer_rate(u_h, harmless.deltas(final, ~harmless.select), clusters_s, weights_s)
    s_to_h = ps.transfer_rate(u_s, helpful.deltas(final, ~helpful.select), clusters_h, weights_h)
    both = ps.mean_of(h_to_s, s_to_h)
    return {"transfer": both.value, "transfer_ci95": _ci(both),
            "transfer_detail": {"helpful_to_harmless": h_to_s.value, "helpful_to_harmless_ci95": _ci(h_to_s),
                                "harmless_to_helpful": s_to_h.value, "harmless_to_helpful_ci95": _ci(s_to_h)}}


def refusal_flip(final: np.ndarray, pairs: Sequence[Pair], chosen_of: dict, rejected_of: dict) -> dict:
    """κ: the comply−refuse direction on comply_benign twins vs on refuse_harmful twins (measure half)."""
    by_id = {p.id: p for p in pairs}
    twins = [p for p in pairs if p.twin in by_id and not ps.is_select_prompt(p.prompt)]
    comply = [p for p in twins if p.subset == "comply_benign"]
    refuse = [p for p in twins if p.subset == "refuse_harmful"]

    def deltas(items, comply_is_chosen):
        if not items:
            return np.zeros((0, final.shape[1]))
        a = np.array([chosen_of[p.id] for p in items]), np.array([rejected_of[p.id] for p in items])
        comply_idx, refuse_idx = a if comply_is_chosen else a[::-1]
        return final[comply_idx].astype(np.float64) - final[refuse_idx].astype(np.float64)

    clusters = (ps.Clusters.of([ps.canonical_json(p.prompt) for p in comply]),
                ps.Clusters.of([ps.canonical_json(p.prompt) for p in refuse]))
    estimate = ps.mean_cosine(deltas(comply, True), deltas(refuse, False), *clusters, *ps.resample_weights(*clusters))
    return {"refusal_flip": estimate.value, "refusal_flip_ci95": _ci(estimate),
            "refusal_flip_pairs": {"comply_benign": len(comply), "refuse_harmful": len(refuse)}}


# ---------------------------------------------------------------- gradient conflict


def gradient_conflict(head: HeadFunction | None, final: np.ndarray, text_rewards: np.ndarray,
                      helpful: ObjectivePairs, harmless: ObjectivePairs, notes: list[str]) -> dict:
    """PCGrad's test at the reward head, with the rotation-only variant; resampled by prompt."""
    empty = {"gradient_conflict": None, "gradient_conflict_ci95": None,
             "gradient_conflict_rotation": None, "gradient_conflict_rotation_ci95": None}
    if head is None:
        notes.append("gradient_conflict is null: the reward is not a function of one hidden state (no head)")
        return empty
    check = np.arange(min(len(text_rewards), 64))
    if not np.allclose(head_rewards(head, final[check]), text_rewards[check], atol=1e-3, rtol=1e-3):
        notes.append("gradient_conflict is null: the reward head does not reproduce the rewards from the "
                     "final hidden state at the reward token")
        return empty
    clusters_h, clusters_s = helpful.clusters(), harmless.clusters()
    w_h, w_s = ps.resample_weights(clusters_h, clusters_s)
    # row 0: the estimate itself; rows 1…: bootstrap resamples, as per-pair weights
    items_h = np.vstack([np.ones(len(helpful.pairs)), w_h[:, clusters_h.labels]])
    items_s = np.vstack([np.ones(len(harmless.pairs)), w_s[:, clusters_s.labels]])
    texts = np.unique(np.concatenate([helpful.texts(), harmless.texts()]))
    position = np.searchsorted(texts, np.arange(len(final)))
    gradients = head_text_gradients(head, final[texts])
    if gradients is not None:
        def coefficients(o: ObjectivePairs, items: np.ndarray) -> tuple[np.ndarray, tuple, np.ndarray]:
            ends = (position[o.chosen], position[o.rejected])
            margins = gradients.rewards[ends[0]] - gradients.rewards[ends[1]]
            coef = items * (1 / (1 + np.exp(margins)))[None, :] / items.sum(axis=1, keepdims=True)   # w·σ(−m)/Σw
            return coef, ends, gradients.theta_dot[ends[0]] - gradients.theta_dot[ends[1]]

        coef_h, ends_h, theta_h = coefficients(helpful, items_h)
        coef_s, ends_s, theta_s = coefficients(harmless, items_s)
        grams = (ps.pair_gram(gradients.gram, ends_h, ends_s), ps.pair_gram(gradients.gram, ends_h, ends_h),
                 ps.pair_gram(gradients.gram, ends_s, ends_s))
        plain, rotation = ps.gradient_cosines(grams, coef_h, coef_s, theta_h, theta_s, gradients.theta_norm)
    else:
        theta = head_parameters(head)
        unit = theta / np.linalg.norm(theta) if np.any(theta) else theta
        plain, rotation = np.empty(len(items_h)), np.empty(len(items_h))
        for (rows, g_h), (_, g_s) in zip(
                head_gradients(head, final[helpful.chosen], final[helpful.rejected], items_h),
                head_gradients(head, final[harmless.chosen], final[harmless.rejected], items_s)):
            plain[rows] = ps.cosine_rows(g_h, g_s)
            rotation[rows] = ps.cosine_rows(g_h - np.outer(g_h @ unit, unit), g_s - np.outer(g_s @ unit, unit))
    out = {}
    for name, values in (("gradient_conflict", plain), ("gradient_conflict_rotation", rotation)):
        estimate = ps.Estimate(float(values[0]), ps.interval(values[1:]), values[1:]) if np.isfinite(values[0]) \
            else ps.Estimate(None, None, values[1:])
        out[name], out[f"{name}_ci95"] = estimate.value, _ci(estimate)
    return out


# ---------------------------------------------------------------- neurons


@dataclass(frozen=True)
class NeuronChoice:
    scores: dict[str, np.ndarray]           # s_Oj over the select half
    sets: dict[str, np.ndarray]             # N_O
    k_per_block: list[int]


def choose_neurons(capture: ActivationCapture, helpful: ObjectivePairs, harmless: ObjectivePairs) -> NeuronChoice:
    scores = {o.name: ps.unit_scores(capture.units, o.chosen[o.select], o.rejected[o.select])
              for o in (helpful, harmless)}
    upb = capture.units_per_block
    return NeuronChoice(scores, {name: ps.top_per_block(s, upb) for name, s in scores.items()},
                        [ps.block_k(m) for m in upb])


def neuron_block(choice: NeuronChoice, units_per_block: Sequence[int]) -> dict:
    n_h, n_s = choice.sets["helpful"], choice.sets["harmless"]
    summary = ps.overlap_summary(n_h, n_s, units_per_block, choice.k_per_block)
    shared = np.intersect1d(n_h, n_s)
    counts = {name: ps.per_block_counts(units, units_per_block)
              for name, units in (("helpful", n_h), ("harmless", n_s), ("shared", shared))}
    return {"fraction": float(ps.NEURON_FRACTION), "k": int(sum(choice.k_per_block)),
            "helpful": n_h.tolist(), "harmless": n_s.tolist(), "shared": summary.overlap,
            "shared_fraction": summary.shared_fraction, "jaccard": summary.jaccard,
            "expected_overlap": summary.expected_overlap, "jaccard_chance": summary.jaccard_chance,
            "jaccard_chance_corrected": summary.jaccard_chance_corrected, "overlap_p": summary.overlap_p,
            "per_block": [{"block": b, "units": int(m), "k": int(k), "helpful": counts["helpful"][b],
                           "harmless": counts["harmless"][b], "shared": counts["shared"][b]}
                          for b, (m, k) in enumerate(zip(units_per_block, choice.k_per_block))]}


# ---------------------------------------------------------------- ablations


@dataclass(frozen=True)
class AblationSide:
    pairs: int
    chosen: np.ndarray              # positions in AblationSubset.texts
    rejected: np.ndarray
    clusters: ps.Clusters
    weights: np.ndarray
    baseline: ps.Baseline

    def margins(self, rewards: np.ndarray) -> np.ndarray:
        return rewards[self.chosen] - rewards[self.rejected]


@dataclass(frozen=True)
class AblationSubset:
    """Measure-half pairs per objective, lowest sha256 of id first (up to 128 for the §5
    ablations), and their texts."""
    texts: np.ndarray
    sides: dict[str, AblationSide]

    @staticmethod
    def pick(objectives: Sequence[ObjectivePairs], per_objective: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The chosen pair rows per objective, and their texts (sorted)."""
        picked = {}
        for o in objectives:
            rows = [i for i in np.flatnonzero(~o.select)]
            rows.sort(key=lambda i: id_hash(o.pairs[i].id))
            picked[o.name] = np.array(rows[:per_objective], dtype=np.int64)
        texts = np.unique(np.concatenate([np.concatenate([o.chosen[picked[o.name]], o.rejected[picked[o.name]]])
                                          for o in objectives]))
        return picked, texts

    @classmethod
    def build(cls, objectives: Sequence[ObjectivePairs], text_rewards: np.ndarray,
              per_objective: int = ps.ABLATION_PAIRS_PER_OBJECTIVE) -> "AblationSubset":
        picked, texts = cls.pick(objectives, per_objective)
        position = {int(t): i for i, t in enumerate(texts)}
        base = np.asarray(text_rewards, dtype=np.float64)[texts]
        clusters = [ps.Clusters.of([o.prompts[i] for i in picked[o.name]]) for o in objectives]
        weights = ps.resample_weights(*clusters)
        sides = {}
        for o, cl, w in zip(objectives, clusters, weights):
            chosen = np.array([position[int(t)] for t in o.chosen[picked[o.name]]], dtype=np.int64)
            rejected = np.array([position[int(t)] for t in o.rejected[picked[o.name]]], dtype=np.int64)
            sides[o.name] = AblationSide(len(chosen), chosen, rejected, cl, w,
                                         ps.baseline_of(base[chosen] - base[rejected]))
        return cls(texts, sides)


def _objectives(pairs: Sequence[Pair], chosen_of: dict, rejected_of: dict) -> list[ObjectivePairs]:
    return [ObjectivePairs.build(name, [p for p in pairs if p.objective == name], chosen_of, rejected_of)
            for name in OBJECTIVES]


def text_indices(pairs: Sequence[Pair], table) -> tuple[dict[str, int], dict[str, int]]:
    """chosen_of, rejected_of: each pair's text indices in the engine's TextTable."""
    return ({p.id: int(c) for p, c in zip(pairs, table.chosen_index)},
            {p.id: int(r) for p, r in zip(pairs, table.rejected_index)})


def held_out_texts(pairs: Sequence[Pair], table) -> np.ndarray:
    """The ablation subset's texts. The probe runs them forward with gradients for attribution
    patching anyway, so that pass scores them and the scoring pass leaves them out."""
    return AblationSubset.pick(_objectives(pairs, *text_indices(pairs, table)), ps.ABLATION_PAIRS_PER_OBJECTIVE)[1]


@dataclass(frozen=True)
class HeldOut:
    texts: np.ndarray
    rewards: np.ndarray
    effects: np.ndarray | None       # attribution patching, per text × unit; None: cannot backpropagate
    seconds: float


def score_held_out(capture: ActivationCapture, runner: ModelRunner, pairs: Sequence[Pair], table,
                   texts: np.ndarray) -> HeldOut:
    """Score the held-out texts with the capture observing, by the attribution pass (its forward
    gives the rewards, its backward the linear unit effects), or plainly when the adapter cannot
    backpropagate. Needs the select half scored: the effects are relative to its unit means."""
    started = time.perf_counter()
    objectives = _objectives(pairs, *text_indices(pairs, table))
    means = capture.unit_means(np.unique(np.concatenate([o.texts(o.select) for o in objectives])))
    capture.open()
    try:
        attribution = runner.attribution(texts, means, capture=capture) if len(texts) else None
        if attribution is not None:
            rewards, effects = attribution.rewards, attribution.effects
        else:
            rewards, effects = runner.rewards(texts, desc="scoring (held out)", capture=capture), None
    finally:
        capture.close()
    return HeldOut(texts, rewards, effects, time.perf_counter() - started)


def _baseline_dict(subset: AblationSubset) -> dict:
    return {name: {"accuracy": side.baseline.accuracy, "margin_mean": float(side.baseline.margins.mean()),
                   "margin_sd": side.baseline.sd} for name, side in subset.sides.items()}


def _effect_dict(effect: ps.Effect, predicted: float | None = None, with_prediction: bool = False) -> dict:
    out = {"margin_effect": effect.margin_effect, "margin_effect_ci95": effect.margin_effect_ci95,
           "accuracy": effect.accuracy, "accuracy_delta": effect.accuracy_delta}
    if with_prediction:
        out["predicted_margin_effect"] = predicted if predicted is None or np.isfinite(predicted) else None
    return out


def _exact_condition(runner: ModelRunner, subset: AblationSubset, edit, desc: str):
    rewards = runner.rewards(subset.texts, edit, desc=desc)
    return {name: side.margins(rewards) for name, side in subset.sides.items()}


def run_ablations(runner: ModelRunner, capture: ActivationCapture, subset: AblationSubset, choice: NeuronChoice,
                  means: np.ndarray, notes: list[str], held_out: HeldOut | None = None) -> dict:
    sites, upb = runner.sites, capture.units_per_block
    sides = subset.sides
    n_h, n_s = choice.sets["helpful"], choice.sets["harmless"]
    shared = np.intersect1d(n_h, n_s)
    specs = [("helpful_neurons", n_h), ("harmless_neurons", n_s)]
    if len(shared):
        specs.append(("shared_neurons", shared))
    exact = {name: _exact_condition(runner, subset, mean_ablation(sites, units, means), f"ablation: {name}")
             for name, units in specs}

    if held_out is not None and np.array_equal(held_out.texts, subset.texts):
        effects_per_text = held_out.effects      # computed with these means in the held-out pass
    else:
        attribution = runner.attribution(subset.texts, means)
        effects_per_text = attribution.effects if attribution is not None else None
    linear = effects_per_text is not None
    pair_effects = {}
    if linear:
        pair_effects = {name: effects_per_text[side.chosen] - effects_per_text[side.rejected]
                        for name, side in sides.items()}

    def predicted(units) -> dict[str, float]:
        return {name: float(ps.linear_margin_effects(pair_effects[name], [units], side.baseline)[0])
                for name, side in sides.items()}

    conditions, observed_pairs, predicted_pairs = [], [], []
    for name, units in specs:
        prediction = predicted(units) if linear else {}
        entry = {"name": name, "units": int(len(units))}
        for side_name, side in sides.items():
            effect = ps.effect_of(exact[name][side_name], side.baseline, side.clusters, side.weights)
            entry[side_name] = _effect_dict(effect, prediction.get(side_name), with_prediction=True)
            if linear:
                observed_pairs.append(exact[name][side_name] - side.baseline.margins)
                predicted_pairs.append(pair_effects[side_name][:, units].sum(axis=1))
        conditions.append(entry)
    by_name = {c["name"]: c for c in conditions}
    exact_h_on_s = by_name["helpful_neurons"]["harmless"]["margin_effect"]
    exact_s_on_h = by_name["harmless_neurons"]["helpful"]["margin_effect"]

    if linear:
        sets = ps.random_block_sets(upb, choice.k_per_block, ps.NULL_SETS)
        null = ps.NullResult(*(ps.linear_margin_effects(pair_effects[name], sets, sides[name].baseline)
                               for name in OBJECTIVES))
        observed_linear = ps.interference_statistic(predicted(n_h)["harmless"], predicted(n_s)["helpful"], null)
        attribution_r = ps.pearson(np.concatenate(observed_pairs), np.concatenate(predicted_pairs))
        method = "attribution"
    else:
        notes.append("the adapter cannot backpropagate: the null is 10 exact random unit sets and there is "
                     "no dose curve")
        sets = ps.random_block_sets(upb, choice.k_per_block, ps.EXACT_NULL_SETS)
        values = {name: [] for name in OBJECTIVES}
        for i, units in enumerate(sets):
            margins = _exact_condition(runner, subset, mean_ablation(sites, units, means), f"ablation: random {i}")
            for name in OBJECTIVES:
                values[name].append(ps.margin_effect(margins[name] - sides[name].baseline.margins,
                                                     sides[name].baseline) or 0.0)
        null = ps.NullResult(np.array(values["helpful"]), np.array(values["harmless"]))
        observed_linear, attribution_r, method = None, None, "exact"

    interference = p_value = None
    if exact_h_on_s is not None and exact_s_on_h is not None and np.all(np.isfinite(null.helpful)) \
            and np.all(np.isfinite(null.harmless)):
        interference = ps.interference_statistic(exact_h_on_s, exact_s_on_h, null)
        tested = observed_linear if linear else interference
        p_value = ps.upper_p(tested, ps.null_statistics(null))
    return {
        "pairs": {name: side.pairs for name, side in sides.items()},
        "baseline": _baseline_dict(subset),
        "conditions": conditions,
        "null_method": method,
        "attribution_r": attribution_r,
        "null": {"sets": len(sets),
                 "helpful_mean": _finite(np.mean(null.helpful)), "helpful_sd": _finite(np.std(null.helpful)),
                 "harmless_mean": _finite(np.mean(null.harmless)), "harmless_sd": _finite(np.std(null.harmless))},
        "interference": interference,
        "interference_linear": _finite(observed_linear),
        "interference_p": p_value,
        "dose": dose_curve(choice, pair_effects, sides, upb) if linear else None,
    }


def dose_curve(choice: NeuronChoice, pair_effects: dict, sides: dict, units_per_block: Sequence[int]) -> list[dict]:
    """Interference and each set's effects at 0.5%, 2% and 10% of every block, from the linear estimate."""
    curve = []
    for fraction in ps.DOSE_FRACTIONS:
        k_per_block = [ps.block_k(m, fraction) for m in units_per_block]
        sets = {name: ps.top_per_block(choice.scores[name], units_per_block, fraction) for name in OBJECTIVES}
        effect = {(o, side): float(ps.linear_margin_effects(pair_effects[side], [sets[o]], sides[side].baseline)[0])
                  for o in OBJECTIVES for side in OBJECTIVES}
        null = ps.NullResult(*(ps.linear_margin_effects(pair_effects[name], ps.random_block_sets(
            units_per_block, k_per_block, ps.NULL_SETS), sides[name].baseline) for name in OBJECTIVES))
        statistic = ps.interference_statistic(effect[("helpful", "harmless")], effect[("harmless", "helpful")], null)
        finite = np.isfinite(statistic)
        curve.append({"fraction": float(fraction), "units": int(sum(k_per_block)),
                      "interference": float(statistic) if finite else None,
                      "interference_p": ps.upper_p(statistic, ps.null_statistics(null)) if finite else None,
                      "helpful_neurons": {side: _finite(effect[("helpful", side)]) for side in OBJECTIVES},
                      "harmless_neurons": {side: _finite(effect[("harmless", side)]) for side in OBJECTIVES},
                      "null_mean": {side: _finite(float(np.mean(getattr(null, side)))) for side in OBJECTIVES}})
    return curve


def _finite(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


# ---------------------------------------------------------------- the paper's measure


def paper_block(capture: ActivationCapture, runner: ModelRunner, text_rewards: np.ndarray,
                helpful: ObjectivePairs, harmless: ObjectivePairs, notes: list[str]) -> dict | None:
    """The paper's measure. Zeroing 10% of all units moves margins by far more than the §5 sets,
    so its ablations run on the first 64 pairs per objective of the §5 ordering (half the cost)."""
    if capture.paper_problem:
        notes.append(f"paper is null: {capture.paper_problem}")
        return None
    site, upb, total = capture.activation, capture.units_per_block, capture.total_units
    texts = {o.name: o.texts() for o in (helpful, harmless)}
    sets = {name: ps.paper_set(capture.paper_means(t)) for name, t in texts.items()}
    overlap = ps.set_overlap(sets["helpful"], sets["harmless"], total)
    subset = AblationSubset.build((helpful, harmless), text_rewards, ps.PAPER_ABLATION_PAIRS_PER_OBJECTIVE)
    conditions = []
    for name in OBJECTIVES:
        margins = _exact_condition(runner, subset, zero_ablation(site, upb, sets[name]), f"paper: {name} set")
        entry = {"name": f"{name}_set", "units": int(len(sets[name]))}
        for side_name, side in subset.sides.items():
            entry[side_name] = _effect_dict(ps.effect_of(margins[side_name], side.baseline, side.clusters,
                                                         side.weights))
        conditions.append(entry)
    return {"site": site.description, "site_kind": site.kind, "units_per_block": list(upb), "total_units": total,
            "fraction": float(ps.PAPER_FRACTION), "k": ps.paper_k(total),
            "texts": {name: int(len(t)) for name, t in texts.items()},
            "tokens": {name: int(capture.lengths[t].sum()) for name, t in texts.items()},
            "bitmap": "base64 of numpy.packbits over units 0…total_units−1 (unit 0 = the first, most significant bit)",
            "helpful_set": ps.pack_units(sets["helpful"], total),
            "harmless_set": ps.pack_units(sets["harmless"], total),
            "overlap": overlap.overlap, "jaccard": overlap.jaccard, "jaccard_chance": overlap.jaccard_chance,
            "jaccard_chance_corrected": overlap.jaccard_chance_corrected,
            "ablations": {"method": "zero", "pairs": {name: side.pairs for name, side in subset.sides.items()},
                          "baseline": _baseline_dict(subset), "conditions": conditions}}


# ---------------------------------------------------------------- the whole probe


def analyse(capture: ActivationCapture, runner: ModelRunner, pairs: Sequence[Pair], chosen_of: dict[str, int],
            rejected_of: dict[str, int], text_rewards: np.ndarray, head: HeadFunction | None,
            reward_token: str, held_out: HeldOut | None = None) -> dict:
    """The `probe` block from a finished scoring pass. `runner` re-runs the model (ablations,
    attribution); `text_rewards` are the unablated rewards of every text; `held_out` what
    score_held_out returned, if the scoring pass left the ablation texts to it."""
    objectives = _objectives(pairs, chosen_of, rejected_of)
    helpful, harmless = objectives
    if not all(o.select.any() and (~o.select).any() for o in objectives):
        raise BenchmarkError("probe: needs helpful-side and harmless-side pairs in both halves "
                             "(select and measure); rerun with --no-probe")
    notes: list[str] = []
    final = capture.residual_at(capture.sites.n_blocks)
    block = {
        "version": PROBE_VERSION,
        "reward_token": reward_token,
        "n_blocks": capture.sites.n_blocks,
        "hidden_size": capture.sites.hidden_size,
        "total_units": capture.total_units,
        "units_per_block": list(capture.units_per_block),
        "activation_dtype": "float32",
        "pairs": {o.name: {"select": int(o.select.sum()), "measure": int((~o.select).sum())} for o in objectives},
    }
    block.update(depth_statistics(capture, helpful, harmless))
    block.update(transfer_statistics(final, helpful, harmless))
    block.update(gradient_conflict(head, final, text_rewards, helpful, harmless, notes))
    block.update(refusal_flip(final, pairs, chosen_of, rejected_of))
    choice = choose_neurons(capture, helpful, harmless)
    block["neurons"] = neuron_block(choice, capture.units_per_block)
    means = capture.unit_means(np.unique(np.concatenate([o.texts(o.select) for o in objectives])))
    subset = AblationSubset.build(objectives, text_rewards)
    block["ablations"] = run_ablations(runner, capture, subset, choice, means, notes, held_out)
    block["paper"] = paper_block(capture, runner, text_rewards, helpful, harmless, notes)
    block["notes"] = notes
    return block
