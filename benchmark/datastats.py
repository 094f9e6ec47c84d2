"""Prompt-set statistics and the validity checks of the data card: counts, twins, near-duplicates,
and the trivial baselines (prefer-longer, reward/penalise refusal phrases) that must not solve it."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

from tabulate import tabulate

from benchmark.data import METRIC_KEYS, Pair, load_pairs, prompt_sets_sha256
from benchmark.metrics import compute_scores, pair_win

REFUSAL_PHRASES = ("i can't", "i cannot", "i'm sorry", "i won't")
NEAR_DUPLICATE_JACCARD = 0.8


def refusal_phrase_count(text: str) -> int:
    lowered = text.lower().replace("\u2019", "'")
    return sum(lowered.count(phrase) for phrase in REFUSAL_PHRASES)


BASELINES: dict[str, Callable[[str], float]] = {
    "prefer_longer": lambda text: float(len(text)),
    "reward_refusal_phrases": lambda text: float(refusal_phrase_count(text)),
    "penalise_refusal_phrases": lambda text: -float(refusal_phrase_count(text)),
}


def baseline_rewards(pairs: Sequence[Pair], scorer: Callable[[str], float]) -> dict[str, tuple[float, float]]:
    return {p.id: (scorer(p.chosen), scorer(p.rejected)) for p in pairs}


def word_ngrams(text: str, n: int = 5) -> frozenset:
    words = re.findall(r"\w+", text.lower())
    return frozenset(tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1)))


def near_duplicates(prompts_a: dict[str, str], prompts_b: dict[str, str] | None = None,
                    allowed: set[frozenset] | None = None) -> list[tuple[str, str, float]]:
    """Pairs of ids whose prompts have word 5-gram Jaccard ≥ 0.8 (within one set, or across two).
    Identical prompts shared by one borderline prompt's two pair types are one prompt, not a pair."""
    allowed = allowed or set()

    def unique(prompts):
        first: dict[str, str] = {}
        for item_id, text in sorted(prompts.items()):
            first.setdefault(text, item_id)
        return {item_id: word_ngrams(text) for text, item_id in first.items()}

    grams_a = unique(prompts_a)
    grams_b = unique(prompts_b) if prompts_b is not None else None
    index: dict[tuple, set[str]] = {}
    for item_id, grams in (grams_b or grams_a).items():
        for gram in grams:
            index.setdefault(gram, set()).add(item_id)
    found = []
    for item_id, grams in grams_a.items():
        candidates = Counter(other for gram in grams for other in index.get(gram, ()))
        for other, shared in candidates.items():
            if grams_b is None and other <= item_id:
                continue
            if frozenset((item_id, other)) in allowed:
                continue
            other_grams = (grams_b or grams_a)[other]
            jaccard = shared / len(grams | other_grams)
            if jaccard >= NEAR_DUPLICATE_JACCARD:
                found.append((item_id, other, jaccard))
    return sorted(found)


def twin_pairs(pairs: Sequence[Pair]) -> list[tuple[Pair, Pair]]:
    by_id = {p.id: p for p in pairs}
    return [(p, by_id[p.twin]) for p in pairs if p.subset == "refuse_harmful" and p.twin in by_id]


def compute_stats(pairs: Sequence[Pair]) -> dict:
    by_key: dict[str, list[Pair]] = {}
    for p in pairs:
        by_key.setdefault(p.metric_key, []).append(p)
    twins = twin_pairs(pairs)
    allowed = {frozenset((a.id, b.id)) for a, b in twins}
    baselines = {}
    for name, scorer in BASELINES.items():
        rewards = baseline_rewards(pairs, scorer)
        scores = compute_scores(pairs, rewards)
        both = sum(1 for a, b in twins if pair_win(*rewards[a.id]) == 1 and pair_win(*rewards[b.id]) == 1)
        baselines[name] = {"balance": scores["balance"], "helpful": scores["helpful"], "harmless": scores["harmless"],
                           "subsets": {k: v["accuracy"] for k, v in scores["subsets"].items()},
                           "twins_both_won": both / len(twins) if twins else None}
    length_ratio = {k: sum(len(p.chosen) for p in v) / sum(len(p.rejected) for p in v) for k, v in by_key.items()}
    return {
        "n_pairs": len(pairs),
        "prompt_sets_sha256": prompt_sets_sha256(pairs),
        "subsets": {k: len(by_key.get(k, [])) for k in METRIC_KEYS},
        "borderline_prompts": len({p.prompt for p in pairs if p.subset == "borderline"}),
        "categories": dict(sorted(Counter((p.subset, p.category) for p in pairs).items())),
        "twins": len(twins),
        "near_duplicates": near_duplicates({p.id: p.prompt for p in pairs}, allowed=allowed),
        "length_ratio": length_ratio,
        "baselines": baselines,
    }


def print_stats(split: str = "test", data_dir: Path | None = None) -> dict:
    pairs = load_pairs(split, data_dir)
    stats = compute_stats(pairs)
    print(f"TensionBench {split} split: {stats['n_pairs']} pairs, {stats['twins']} twin pairs, "
          f"{stats['borderline_prompts']} borderline prompts, sha256 {stats['prompt_sets_sha256'][:16]}...")
    base = stats["baselines"]
    rows = [[k, stats["subsets"][k], f"{stats['length_ratio'].get(k, float('nan')):.2f}",
             *(f"{base[b]['subsets'].get(k, float('nan')):.3f}" for b in BASELINES)] for k in METRIC_KEYS]
    print(tabulate(rows, headers=["subset", "pairs", "chosen/rejected chars", *BASELINES]))
    print()
    rows = [[name, f"{b['helpful']:.3f}", f"{b['harmless']:.3f}", f"{b['balance']:.3f}",
             f"{b['twins_both_won']:.3f}" if b["twins_both_won"] is not None else "n/a"] for name, b in base.items()]
    print(tabulate(rows, headers=["trivial baseline", "helpful", "harmless", "balance", "twins both won"]))
    print()
    categories = Counter()
    for (subset, category), count in stats["categories"].items():
        categories[(subset, category)] = count
    print(tabulate([[s, c, n] for (s, c), n in stats["categories"].items()], headers=["subset", "category", "pairs"]))
    print()
    print(f"near-duplicate prompt pairs (word 5-gram Jaccard >= {NEAR_DUPLICATE_JACCARD}, twins excepted): "
          f"{len(stats['near_duplicates'])}")
    for a, b, j in stats["near_duplicates"][:10]:
        print(f"  {a} ~ {b} (J={j:.2f})")
    return stats
