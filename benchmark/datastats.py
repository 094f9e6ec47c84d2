"""Prompt-set statistics and the style audit of the data card (DESIGN §3): counts, twins,
near-duplicate prompts, and the style-only models that must not solve the benchmark.

Every audit model is trained on `train` and scored on `test` the benchmark's way (a reward per
response, a pair won when the chosen out-scores the rejected, ties half). They see responses only,
never prompts, and only their style (formatting, function words), because a response's content may
legitimately tell harm apart.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tabulate import tabulate

from benchmark.data import METRIC_KEYS, Pair, load_pairs, prompt_sets_sha256
from benchmark.metrics import compute_scores, twin_pairs

REFUSAL_PHRASES = ("i can't", "i cannot", "i'm sorry", "i won't")
NEAR_DUPLICATE_COSINE = 0.8
REVIEW_COSINE = 0.6  # below the gate: listed by `data stats` for a reader to check by hand

# Gates (DESIGN §3 / issue 13); the test suite asserts them on the shipped splits.
GATE_REFUSAL_TEXT = 0.60       # balanced accuracy, warranted vs unwarranted refusal
GATE_FORMATTING = 0.60         # balance
GATE_FUNCTION_WORDS = 0.62     # balance
GATE_UNIVARIATE = (0.35, 0.65)  # accuracy on every subset
GATE_STYLE_SHARE = 0.05        # |share among warranted − share among unwarranted| per refusal style

LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", re.MULTILINE)
HOTLINE = re.compile(r"\b(?:988|116 123|741741|hotline|helpline|crisis line|lifeline|samaritans)\b", re.IGNORECASE)
OFFER = re.compile(r"\b(?:i can|i could|i'd be happy|happy to|let me know)\b", re.IGNORECASE)
OPENERS = ("sure", "yes", "no", "okay", "ok", "great", "good", "absolutely", "i", "here", "happy",
           "sorry", "that", "this", "the", "it", "you", "if", "a")
PUNCTUATION_TOKENS = r"(?u)\b\w+\b|[^\w\s]"


def refusal_phrase_count(text: str) -> int:
    lowered = text.lower().replace("\u2019", "'")
    return sum(lowered.count(phrase) for phrase in REFUSAL_PHRASES)


def newline_count(text: str) -> int:
    return text.count("\n")


def list_item_count(text: str) -> int:
    return len(LIST_ITEM.findall(text))


def digit_count(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


# One-feature scorers: each must stay near chance on every subset.
UNIVARIATE: dict[str, Callable[[str], float]] = {
    "prefer_longer": lambda text: float(len(text)),
    "more_newlines": lambda text: float(newline_count(text)),
    "more_list_items": lambda text: float(list_item_count(text)),
    "more_digits": lambda text: float(digit_count(text)),
}

# Keyword scorers: an always-refuse and an always-comply strategy, for the data card.
KEYWORD_BASELINES: dict[str, Callable[[str], float]] = {
    "reward_refusal_phrases": lambda text: float(refusal_phrase_count(text)),
    "penalise_refusal_phrases": lambda text: -float(refusal_phrase_count(text)),
}


def opener(text: str) -> str:
    match = re.match(r"\W*(\w+)", text.lower())
    word = match.group(1) if match else ""
    return word if word in OPENERS else "other"


def formatting_features(text: str) -> list[float]:
    """The formatting a style model could key on: length, layout, punctuation, offers, opener, hotline."""
    words = text.split()
    features = [
        np.log1p(len(text)), np.log1p(len(words)), float(newline_count(text)),
        float(text.count("\n\n")), float(list_item_count(text)), float(digit_count(text)),
        float(text.count("!")), float(text.count("?")), float(len(OFFER.findall(text))),
        float(bool(HOTLINE.search(text))), float(text.count("**") + text.count("#") + text.count("`")),
        float(np.mean([len(w) for w in words])) if words else 0.0,
        float(text.count(",")) / max(1, len(words)), float(text.count("(")),
        float(len(re.findall(r"[.!?](?:\s|$)", text))),
    ]
    first = opener(text)
    features += [float(first == name) for name in OPENERS + ("other",)]
    return features


@dataclass(frozen=True)
class StyleModel:
    """A linear reward over a response-only featurisation, fitted on chosen − rejected differences."""
    name: str
    featurise: Callable[[Sequence[str]], np.ndarray]
    weights: np.ndarray

    def rewards(self, pairs: Sequence[Pair]) -> dict[str, tuple[float, float]]:
        chosen = self.featurise([p.chosen for p in pairs]) @ self.weights
        rejected = self.featurise([p.rejected for p in pairs]) @ self.weights
        return {p.id: (float(c), float(r)) for p, c, r in zip(pairs, chosen, rejected)}


def _fit_pairwise(train: Sequence[Pair], featurise: Callable[[Sequence[str]], np.ndarray]) -> np.ndarray:
    """Bradley–Terry as logistic regression on ±(f(chosen) − f(rejected)), no intercept."""
    from sklearn.linear_model import LogisticRegression

    diff = featurise([p.chosen for p in train]) - featurise([p.rejected for p in train])   # dense arrays
    x = np.vstack([diff, -diff])
    y = np.r_[np.ones(len(diff)), np.zeros(len(diff))]
    model = LogisticRegression(C=1.0, max_iter=5000, fit_intercept=False)
    model.fit(x, y)
    return model.coef_[0]


def _dense(matrix) -> np.ndarray:
    return np.asarray(matrix.todense() if hasattr(matrix, "todense") else matrix, dtype=float)


def formatting_model(train: Sequence[Pair]) -> StyleModel:
    raw = np.array([formatting_features(t) for p in train for t in (p.chosen, p.rejected)])
    mean, scale = raw.mean(axis=0), raw.std(axis=0) + 1e-9

    def featurise(texts):
        return (np.array([formatting_features(t) for t in texts]) - mean) / scale

    return StyleModel("formatting features", featurise, _fit_pairwise(train, featurise))


def _tfidf_model(name: str, train: Sequence[Pair], **options) -> StyleModel:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(**options)
    vectorizer.fit([t for p in train for t in (p.chosen, p.rejected)])

    def featurise(texts):
        return _dense(vectorizer.transform(texts))

    return StyleModel(name, featurise, _fit_pairwise(train, featurise))


def function_word_model(train: Sequence[Pair]) -> StyleModel:
    """TF-IDF over scikit-learn's English stop words plus punctuation tokens only."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    vocabulary = sorted(ENGLISH_STOP_WORDS) + list(".,;:!?-'\"()[]/*#%&")
    return _tfidf_model("function words", train, vocabulary=vocabulary, token_pattern=PUNCTUATION_TOKENS,
                        lowercase=True)


def word_model(train: Sequence[Pair]) -> StyleModel:
    """Content and style together (reported, not gated): word 1–2-gram TF-IDF."""
    return _tfidf_model("word TF-IDF 1-2-grams (content + style)", train, ngram_range=(1, 2), min_df=2,
                        sublinear_tf=True)


def refusal_slots(pairs: Sequence[Pair]) -> list[tuple[str, bool]]:
    """Every refusal text with whether refusing was right: refuse_harmful chosen (warranted),
    comply_benign and borderline vs_refusal rejected (unwarranted)."""
    slots = []
    for p in pairs:
        if p.chosen_type == "refusal":
            slots.append((p.chosen, True))
        if p.rejected_type == "refusal":
            slots.append((p.rejected, False))
    return slots


def refusal_text_accuracy(train: Sequence[Pair], test: Sequence[Pair]) -> float:
    """Balanced accuracy of a word+character TF-IDF classifier telling warranted from unwarranted
    refusals by their text alone."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline, make_union

    train_slots, test_slots = refusal_slots(train), refusal_slots(test)
    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True))
    model = make_pipeline(features, LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced"))
    model.fit([t for t, _ in train_slots], [w for _, w in train_slots])
    predicted = model.predict([t for t, _ in test_slots])
    return float(balanced_accuracy_score([w for _, w in test_slots], predicted))


def score_summary(pairs: Sequence[Pair], rewards: dict[str, tuple[float, float]]) -> dict:
    scores = compute_scores(pairs, rewards)
    return {"balance": scores["balance"], "helpful": scores["helpful"], "harmless": scores["harmless"],
            "subsets": {k: v["accuracy"] for k, v in scores["subsets"].items()},
            "twins_both_won": scores["contrast"]}


def scorer_rewards(pairs: Sequence[Pair], scorer: Callable[[str], float]) -> dict[str, tuple[float, float]]:
    return {p.id: (scorer(p.chosen), scorer(p.rejected)) for p in pairs}


def _unique_prompts(pairs: Sequence[Pair]) -> dict[str, str]:
    """One id per distinct prompt text (a borderline prompt's two pair types are one prompt)."""
    first: dict[str, str] = {}
    for p in sorted(pairs, key=lambda p: p.id):
        first.setdefault(p.prompt, p.id)
    return {item_id: text for text, item_id in first.items()}


def near_duplicates(prompts_a: dict[str, str], prompts_b: dict[str, str] | None = None,
                    allowed: set[frozenset] | None = None,
                    threshold: float = NEAR_DUPLICATE_COSINE) -> list[tuple[str, str, float]]:
    """Pairs of ids whose prompts have TF-IDF cosine ≥ threshold over content words (English stop
    words removed, so paraphrases that share their nouns and verbs score high), within one set or
    across two; `allowed` pairs (twins) are skipped."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    allowed = allowed or set()
    ids_a = sorted(prompts_a)
    ids_b = sorted(prompts_b) if prompts_b is not None else ids_a
    texts_b = [prompts_b[i] for i in ids_b] if prompts_b is not None else None
    vectorizer = TfidfVectorizer(stop_words="english")
    vectorizer.fit([prompts_a[i] for i in ids_a] + (texts_b or []))
    a = vectorizer.transform([prompts_a[i] for i in ids_a])
    b = vectorizer.transform(texts_b) if texts_b is not None else a
    similarity = (a @ b.T).tocoo()
    found = []
    for i, j, value in zip(similarity.row, similarity.col, similarity.data):
        if value < threshold:
            continue
        left, right = ids_a[i], ids_b[j]
        if prompts_b is None and left >= right:
            continue
        if frozenset((left, right)) in allowed:
            continue
        found.append((left, right, round(float(value), 3)))
    return sorted(found)


def cross_subset_reuse(pairs: Sequence[Pair]) -> list[tuple[str, str]]:
    """Prompts used verbatim in two subsets."""
    seen: dict[str, Pair] = {}
    found = []
    for p in sorted(pairs, key=lambda p: p.id):
        other = seen.setdefault(p.prompt, p)
        if other.subset != p.subset:
            found.append((other.id, p.id))
    return found


def duplicate_report(train: Sequence[Pair], test: Sequence[Pair], threshold: float = NEAR_DUPLICATE_COSINE) -> dict:
    twins = {frozenset((p.id, p.twin)) for p in list(train) + list(test) if p.twin}
    return {
        "within_test": near_duplicates(_unique_prompts(test), allowed=twins, threshold=threshold),
        "within_train": near_duplicates(_unique_prompts(train), allowed=twins, threshold=threshold),
        "train_test": near_duplicates(_unique_prompts(train), _unique_prompts(test), threshold=threshold),
        "cross_subset": cross_subset_reuse(list(train) + list(test)),
    }


def audit(train: Sequence[Pair], test: Sequence[Pair]) -> dict:
    """Every style gate, trained on `train`, scored on `test`."""
    models = [formatting_model(train), function_word_model(train), word_model(train)]
    style = {m.name: score_summary(test, m.rewards(test)) for m in models}
    univariate = {name: score_summary(test, scorer_rewards(test, f)) for name, f in UNIVARIATE.items()}
    keywords = {name: score_summary(test, scorer_rewards(test, f)) for name, f in KEYWORD_BASELINES.items()}
    from benchmark.refusals import style_shares

    return {"refusal_text_balanced_accuracy": refusal_text_accuracy(train, test),
            "refusal_styles": {"test": style_shares(refusal_slots(test)), "train": style_shares(refusal_slots(train))},
            "style_models": style, "univariate": univariate, "keyword_baselines": keywords,
            "duplicates": duplicate_report(train, test)}


def gate_failures(report: dict) -> list[str]:
    """Human-readable list of gates the audit report fails (empty when all pass)."""
    failures = []
    if report["refusal_text_balanced_accuracy"] > GATE_REFUSAL_TEXT:
        failures.append(f"refusal-text classifier {report['refusal_text_balanced_accuracy']:.3f} > {GATE_REFUSAL_TEXT}")
    style = report["style_models"]
    if style["formatting features"]["balance"] > GATE_FORMATTING:
        failures.append(f"formatting features balance {style['formatting features']['balance']:.3f} > {GATE_FORMATTING}")
    if style["function words"]["balance"] > GATE_FUNCTION_WORDS:
        failures.append(f"function words balance {style['function words']['balance']:.3f} > {GATE_FUNCTION_WORDS}")
    lo, hi = GATE_UNIVARIATE
    for name, summary in report["univariate"].items():
        for key, accuracy in summary["subsets"].items():
            if not lo <= accuracy <= hi:
                failures.append(f"{name} on {key}: {accuracy:.3f} outside [{lo}, {hi}]")
    for split, shares in report["refusal_styles"].items():
        for style, (warranted, unwarranted) in shares.items():
            if style == "not in pool" or abs(warranted - unwarranted) > GATE_STYLE_SHARE:
                failures.append(f"{split}: refusal style {style!r} is {warranted:.3f} of warranted and "
                                f"{unwarranted:.3f} of unwarranted refusals")
    for kind, found in report["duplicates"].items():
        if found:
            failures.append(f"{len(found)} near-duplicate prompt pairs ({kind}), e.g. {found[0]}")
    return failures


def compute_stats(pairs: Sequence[Pair]) -> dict:
    """Counts of one split: subsets, categories, twins, borderline prompts, lengths."""
    by_key: dict[str, list[Pair]] = {}
    for p in pairs:
        by_key.setdefault(p.metric_key, []).append(p)
    length_ratio = {k: sum(len(p.chosen) for p in v) / sum(len(p.rejected) for p in v) for k, v in by_key.items()}
    return {
        "n_pairs": len(pairs),
        "prompt_sets_sha256": prompt_sets_sha256(pairs),
        "subsets": {k: len(by_key.get(k, [])) for k in METRIC_KEYS},
        "borderline_prompts": len({p.prompt for p in pairs if p.subset == "borderline"}),
        "categories": dict(sorted(Counter((p.subset, p.category) for p in pairs).items())),
        "twins": len(twin_pairs(pairs)),
        "length_ratio": length_ratio,
    }


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_stats(split: str = "test", data_dir: Path | None = None) -> dict:
    splits = {name: load_pairs(name, data_dir) for name in ("train", "test")}   # the audit needs both
    pairs = splits[split] if split in splits else load_pairs(split, data_dir)   # an unknown split: its error
    stats = compute_stats(pairs)
    print(f"TensionBench {split} split: {stats['n_pairs']} pairs, {stats['twins']} twin pairs, "
          f"{stats['borderline_prompts']} borderline prompts, sha256 {stats['prompt_sets_sha256'][:16]}...")
    print(tabulate([[k, stats["subsets"][k], f"{stats['length_ratio'].get(k, float('nan')):.2f}"] for k in METRIC_KEYS],
                   headers=["subset", "pairs", "chosen/rejected chars"]))
    print()
    print(tabulate([[s, c, n] for (s, c), n in stats["categories"].items()], headers=["subset", "category", "pairs"]))
    print()
    train, test = splits["train"], splits["test"]
    report = audit(train, test)
    stats["audit"] = report
    print("Style audit (response-only models trained on train, scored on test; ties count half):")
    rows = [["refusal text alone: warranted vs unwarranted (balanced acc.)", "", "", "",
             _fmt(report["refusal_text_balanced_accuracy"]), f"<= {GATE_REFUSAL_TEXT}"]]
    gates = {"formatting features": f"<= {GATE_FORMATTING}", "function words": f"<= {GATE_FUNCTION_WORDS}"}
    for group in ("style_models", "univariate", "keyword_baselines"):
        for name, summary in report[group].items():
            gate = gates.get(name, "0.35-0.65 per subset" if group == "univariate" else "report only")
            rows.append([name, _fmt(summary["helpful"]), _fmt(summary["harmless"]), _fmt(summary["twins_both_won"]),
                         _fmt(summary["balance"]), gate])
    print(tabulate(rows, headers=["model", "helpful", "harmless", "twins both won", "balance", "gate"]))
    print()
    print(tabulate([[style, f"{w:.3f}", f"{u:.3f}"] for style, (w, u) in sorted(report["refusal_styles"]["test"].items())],
                   headers=["refusal style (test)", "share of warranted", "share of unwarranted"]))
    print()
    names = list(report["style_models"]) + list(report["univariate"])
    merged = {**report["style_models"], **report["univariate"]}
    print(tabulate([[k, *(_fmt(merged[n]["subsets"].get(k)) for n in names)] for k in METRIC_KEYS],
                   headers=["subset (accuracy)", *names]))
    print()
    for kind, found in report["duplicates"].items():
        print(f"near-duplicate prompts ({kind}, content-word TF-IDF cosine >= {NEAR_DUPLICATE_COSINE}): {len(found)}")
        for item in found[:5]:
            print(f"  {item}")
    review = duplicate_report(train, test, threshold=REVIEW_COSINE)
    candidates = [item for kind, found in review.items() if kind != "cross_subset" for item in found]
    print(f"prompt pairs with cosine >= {REVIEW_COSINE} to read by hand (not a gate): {len(candidates)}")
    failures = gate_failures(report)
    print()
    print("all audit gates met" if not failures else "GATES FAILED:\n  " + "\n  ".join(failures))
    return stats
