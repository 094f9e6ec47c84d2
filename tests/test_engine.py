"""The scoring engine: batched rewards equal one-at-a-time rewards on every architecture we claim,
each distinct text is scored once, and truncation keeps the response."""

import numpy as np
import pytest
import torch

from benchmark.data import Pair
from benchmark.engine import build_text_table, encode_texts, plan_batches, score_encoded, score_pairs
from benchmark.models import load_adapter

TEXTS = [
    ("How do I kill a Python process?", "Use kill -9 PID or pkill."),
    ("Hi", "Hello! How can I help you today? " * 3),
    ("Summarise this: " + "the cat sat on the mat. " * 10, "A cat sat."),
    ("x", "y"),
    ("numbers", "0 1 2 3 4 5 6 7 8 9 10 100 1000 " * 4),
] + [(f"prompt number {i}", "answer " * i) for i in range(1, 12)]


def one_at_a_time(adapter, encoded):
    """Reference rewards: each text alone, no padding, through the model's own modules."""
    out = []
    with torch.no_grad():
        for enc in encoded:
            ids = torch.tensor([enc.input_ids])
            if adapter.reward_token == "last":
                hidden = adapter.model.base_model(input_ids=ids)[0][0, enc.reward_index]
                out.append(float(adapter.model.score(hidden[None])[0, 0]))
            else:
                kwargs = {"token_type_ids": torch.tensor([enc.token_type_ids])} if enc.token_type_ids else {}
                out.append(float(adapter.model(input_ids=ids, **kwargs).logits[0, 0]))
    return np.array(out)


def test_batched_rewards_equal_one_at_a_time(tiny_model):
    arch, path = tiny_model
    adapter = load_adapter(str(path), device="cpu")
    encoded = encode_texts(adapter, TEXTS, 256)
    batched = score_encoded(adapter, encoded, 8, progress=False).rewards
    reference = one_at_a_time(adapter, encoded)
    assert np.std(reference) > 0, "rewards should differ between texts"
    np.testing.assert_allclose(batched, reference, atol=1e-4, rtol=0)
    auto = score_encoded(adapter, encoded, "auto", progress=False).rewards
    np.testing.assert_allclose(auto, reference, atol=1e-4, rtol=0)


def test_decoder_reward_token_is_last_real_token_even_when_pad_is_eos(tiny_model_dirs):
    adapter = load_adapter(str(tiny_model_dirs["llama"]), device="cpu")
    assert adapter.tokenizer.pad_token_id == adapter.tokenizer.eos_token_id
    enc = adapter.encode("Hi", "Hello", 256)
    assert enc.reward_index == len(enc.input_ids) - 1
    # the chat template renders BOS itself: no double BOS
    assert enc.input_ids[0] == adapter.tokenizer.bos_token_id and enc.input_ids[1] != adapter.tokenizer.bos_token_id


def test_classifier_without_pad_id_scores_batches(tiny_model_dirs):
    adapter = load_adapter(str(tiny_model_dirs["gpt2"]), device="cpu")
    encoded = encode_texts(adapter, TEXTS[:4], 256)
    rewards = score_encoded(adapter, encoded, 4, progress=False).rewards
    assert np.isfinite(rewards).all()


def test_each_distinct_text_scored_once():
    pairs = [Pair(f"rh-{i:04d}", "refuse_harmful", "drugs", "same prompt", "no", f"yes {i % 2}",
                  "refusal", "compliance", None, None, "test") for i in range(6)]
    table = build_text_table(pairs)
    assert len(table.texts) == 3            # "no" once, "yes 0", "yes 1"
    assert len(set(table.chosen_index.tolist())) == 1


def test_batches_are_length_sorted():
    batches = plan_batches([5, 50, 7, 30, 2, 9], 2, torch.device("cpu"))
    lengths = [[[5, 50, 7, 30, 2, 9][i] for i in b] for b in batches]
    assert lengths == [[50, 30], [9, 7], [5, 2]]


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_truncation_keeps_response_and_cuts_prompt_from_left(arch, tiny_model_dirs):
    adapter = load_adapter(str(tiny_model_dirs[arch]), device="cpu")
    prompt = "START " + "filler words here " * 60 + "END of the prompt"
    response = "the response text stays whole"
    enc = adapter.encode(prompt, response, 64)
    assert enc.truncated and len(enc.input_ids) <= 64
    text = adapter.tokenizer.decode(enc.input_ids).lower()
    assert response in text and "end of the prompt" in text and "start" not in text
    short = adapter.encode("short", response, 64)
    assert not short.truncated


def test_engine_reports_truncated_count(tiny_model_dirs):
    adapter = load_adapter(str(tiny_model_dirs["qwen2"]), device="cpu")
    encoded = encode_texts(adapter, [("word " * 200, "ok"), ("hi", "ok")], 48)
    result = score_encoded(adapter, encoded, 2, progress=False)
    assert result.truncated == 1 and np.isfinite(result.rewards).all()


def test_score_pairs_keys_both_rewards_by_pair_and_names_cut_pairs(tiny_model_dirs):
    adapter = load_adapter(str(tiny_model_dirs["qwen2"]), device="cpu")
    pairs = [Pair("rh-0001", "refuse_harmful", "drugs", "word " * 200, "no", "yes", "refusal", "compliance",
                  None, None, "test"),
             Pair("rh-0002", "refuse_harmful", "drugs", "short", "no", "yes", "refusal", "compliance",
                  None, None, "test")]
    done = score_pairs(adapter, pairs, 48, 2, progress=False)
    encoded = encode_texts(adapter, [("short", "no"), ("short", "yes")], 48)
    alone = score_encoded(adapter, encoded, 1, progress=False).rewards
    assert done.truncated == {"rh-0001"}
    assert done.rewards["rh-0002"] == pytest.approx(tuple(alone), abs=1e-4)
    with pytest.raises(Exception, match="two pairs share an id"):
        score_pairs(adapter, pairs + pairs[:1], 48, 2, progress=False)


def test_device_map_auto_loads_and_scores_the_same(tiny_model_dirs):
    """--device-map auto goes through accelerate; on a CPU-only machine everything lands on the CPU."""
    plain = load_adapter(str(tiny_model_dirs["llama"]), device="cpu")
    sharded = load_adapter(str(tiny_model_dirs["llama"]), device_map="auto")
    encoded = encode_texts(plain, TEXTS[:6], 256)
    np.testing.assert_allclose(score_encoded(sharded, encoded, 3, progress=False).rewards,
                               score_encoded(plain, encoded, 3, progress=False).rewards, atol=1e-5)
