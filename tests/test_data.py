"""The shipped prompt sets: schema, sizes, twins, and the validity checks that make them a
benchmark (no near-duplicates, no length cue, no keyword cue), on both splits."""

from collections import Counter

import pytest

from benchmark.data import load_pairs, prompt_sets_sha256
from benchmark.datastats import compute_stats, near_duplicates
from benchmark.errors import BenchmarkError


@pytest.fixture(scope="module")
def test_pairs():
    return load_pairs("test")


@pytest.fixture(scope="module")
def train_pairs():
    return load_pairs("train")


@pytest.fixture(scope="module")
def test_stats(test_pairs):
    return compute_stats(test_pairs)


def test_sizes_and_coverage(test_pairs, test_stats):
    subsets = test_stats["subsets"]
    assert subsets["refuse_harmful"] >= 250 and subsets["comply_benign"] >= 250
    assert subsets["helpful_quality"] >= 200 and subsets["harmless_quality"] >= 200
    assert test_stats["borderline_prompts"] >= 100
    assert subsets["borderline/vs_refusal"] == subsets["borderline/vs_overcompliance"] == test_stats["borderline_prompts"]
    assert test_stats["twins"] >= 120
    sensitive = Counter(p.category for p in test_pairs
                        if p.subset in ("refuse_harmful", "harmless_quality", "borderline"))
    assert sum(1 for n in sensitive.values() if n >= 20) >= 12
    benign_types = {p.category for p in test_pairs if p.subset == "comply_benign"}
    assert {"homonyms", "figurative_language", "safe_targets", "safe_contexts", "definitions", "real_history",
            "fiction", "public_figures", "nonsense_discrimination"} <= benign_types
    quality = {p.category for p in test_pairs if p.subset == "helpful_quality"}
    assert {"writing", "coding", "maths", "factual_qa", "advice", "summarising"} <= quality


def test_ids_are_unique_and_stable_in_form(test_pairs, train_pairs):
    ids = [p.id for p in test_pairs + train_pairs]
    assert len(ids) == len(set(ids))
    assert all(p.split == "test" for p in test_pairs) and all(p.split == "train" for p in train_pairs)


def test_no_near_duplicate_prompts(test_stats, train_pairs):
    assert test_stats["near_duplicates"] == []
    twins = {frozenset((p.id, p.twin)) for p in train_pairs if p.twin}
    assert near_duplicates({p.id: p.prompt for p in train_pairs}, allowed=twins) == []


def test_train_shares_no_prompt_with_test(test_pairs, train_pairs):
    found = near_duplicates({p.id: p.prompt for p in train_pairs}, {p.id: p.prompt for p in test_pairs})
    assert found == [], found[:5]


def test_length_is_not_the_answer(test_stats):
    for key, accuracy in test_stats["baselines"]["prefer_longer"]["subsets"].items():
        assert 0.35 <= accuracy <= 0.65, (key, accuracy)


def test_keywords_are_not_the_answer(test_stats):
    for name in ("reward_refusal_phrases", "penalise_refusal_phrases"):
        baseline = test_stats["baselines"][name]
        assert baseline["balance"] <= 0.6, (name, baseline["balance"])
        assert baseline["twins_both_won"] <= 0.10, (name, baseline["twins_both_won"])


def test_train_split_sizes(train_pairs):
    sides = Counter(p.objective for p in train_pairs)
    assert len(train_pairs) >= 600 and sides["helpful"] >= 250 and sides["harmless"] >= 250


def test_loads_with_datasets_as_the_card_documents():
    from datasets import load_dataset

    from benchmark.data import DATA_DIR

    dataset = load_dataset("json", data_files={"refuse_harmful": str(DATA_DIR / "test" / "refuse_harmful.jsonl")})
    assert dataset["refuse_harmful"].num_rows >= 250


def test_fingerprint_follows_the_content(test_pairs):
    from dataclasses import replace

    before = prompt_sets_sha256(test_pairs)
    changed = [replace(test_pairs[0], chosen=test_pairs[0].chosen + " ")] + list(test_pairs[1:])
    assert prompt_sets_sha256(changed) != before
    assert prompt_sets_sha256(list(reversed(test_pairs))) == before


def test_a_bad_item_is_one_clear_error(tmp_path):
    folder = tmp_path / "test"
    folder.mkdir()
    (folder / "helpful_quality.jsonl").write_text('{"id": "hq-0001", "subset": "helpful_quality"}\n')
    with pytest.raises(BenchmarkError, match="hq-0001"):
        load_pairs("test", tmp_path)
    (folder / "helpful_quality.jsonl").write_text('{"id": "hq-0001", oops}\n')
    with pytest.raises(BenchmarkError, match=r"helpful_quality.jsonl:1: invalid JSON"):
        load_pairs("test", tmp_path)
