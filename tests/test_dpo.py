"""DPO implicit rewards: the log-ratio summed over response tokens only, equal to a hand
computation, batch-independent, reference-free variant, truncation, and the CLI end to end."""

import json

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.engine import encode_texts, score_encoded
from benchmark.errors import BenchmarkError
from benchmark.models import load_adapter
from benchmark.models.plugins import adapter_problems
from tests import tiny_models

PROMPT, RESPONSE = "How do I kill a Python process that hangs?", "Use kill PID, then kill -9 if it stays."

TEXTS = [
    (PROMPT, RESPONSE),
    ("Hi", "Hello! How can I help you today? " * 3),
    ("Summarise this: " + "the cat sat on the mat. " * 10, "A cat sat."),
    ("x", "y"),
    ("numbers", "0 1 2 3 4 5 6 7 8 9 10 100 1000 " * 4),
    ("Say nothing.", ""),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
      {"role": "user", "content": "And now?"}], "Now we talk."),
] + [(f"prompt number {i}", "answer " * i) for i in range(1, 10)]


def _tokenizer(vocab_size: int = 400):
    tok = tiny_models.byte_level_tokenizer(["<s>", "</s>"], vocab_size=vocab_size)
    tok.bos_token, tok.eos_token, tok.pad_token = "<s>", "</s>", "</s>"
    tok.chat_template = tiny_models.DECODER_TEMPLATE
    return tok


def _causal_lm(tok, out, seed):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # sharper next-token distributions, so log-ratios spread out
        model.lm_head.weight.normal_(0, 0.5)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def lm_pair(tmp_path_factory):
    """A policy and a reference (tiny Llama causal LMs, seeds 0 and 1) sharing one tokenizer."""
    root = tmp_path_factory.mktemp("dpo")
    tok = _tokenizer()
    return _causal_lm(tok, root / "policy", 0), _causal_lm(tok, root / "reference", 1)


@pytest.fixture(scope="module")
def dpo(lm_pair):
    policy, reference = lm_pair
    return load_adapter(str(policy), kind="dpo", ref_model=str(reference), device="cpu", dtype="float32")


def _token_logprobs(path, ids):
    """log p(ids[t] | ids[<t]) for t = 1 … n−1, with the model alone on the unpadded ids."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path).eval()
    with torch.no_grad():
        logprobs = model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
    return np.array([float(logprobs[t - 1, ids[t]]) for t in range(1, len(ids))])


def _conversation(tok, prompt, response):
    """The full ids and where the response starts, found from the rendered text (not the adapter)."""
    text = tok.apply_chat_template([{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
                                   tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    prefix = tok(text[:text.rindex(response)], add_special_tokens=False)["input_ids"]
    assert ids[:len(prefix)] == prefix
    return ids, len(prefix)


def _score(adapter, texts, batch_size=1, max_length=256):
    return score_encoded(adapter, encode_texts(adapter, texts, max_length), batch_size, progress=False).rewards


def test_reward_is_the_hand_computed_log_ratio_over_response_tokens(dpo, lm_pair):
    policy, reference = lm_pair
    ids, start = _conversation(dpo.tokenizer, PROMPT, RESPONSE)
    ratio = _token_logprobs(policy, ids) - _token_logprobs(reference, ids)   # ratio[t-1] is token t
    response_only, all_tokens = ratio[start - 1:].sum(), ratio.sum()
    reward = _score(dpo, [(PROMPT, RESPONSE)])[0]
    assert reward == pytest.approx(response_only, abs=1e-5)
    assert abs(reward - all_tokens) > 1e-2, "prompt tokens must not count"
    enc = dpo.encode(PROMPT, RESPONSE, 256)
    assert list(enc.input_ids) == ids and enc.reward_index == len(ids) - 1
    assert enc.response_mask.index(1) == start and enc.token_type_ids is None   # the mask is not a segment id
    assert dpo.tokenizer.decode(ids[start:]).startswith(RESPONSE)


def test_prompt_tokens_only_condition_the_response(dpo, lm_pair):
    """Another prompt changes the conditioning, but its own tokens never enter the sum."""
    policy, reference = lm_pair
    long_prompt = PROMPT + " I have tried everything and nothing works at all."
    ids, start = _conversation(dpo.tokenizer, long_prompt, RESPONSE)
    ratio = _token_logprobs(policy, ids) - _token_logprobs(reference, ids)
    assert _score(dpo, [(long_prompt, RESPONSE)])[0] == pytest.approx(ratio[start - 1:].sum(), abs=1e-5)


def test_batched_rewards_equal_one_at_a_time(dpo):
    encoded = encode_texts(dpo, TEXTS, 256)
    single = np.array([score_encoded(dpo, [e], 1, progress=False).rewards[0] for e in encoded])
    assert np.isfinite(single).all() and np.std(single) > 0
    np.testing.assert_allclose(score_encoded(dpo, encoded, 8, progress=False).rewards, single, atol=1e-4, rtol=0)
    np.testing.assert_allclose(score_encoded(dpo, encoded, "auto", progress=False).rewards, single, atol=1e-4, rtol=0)


def test_empty_response_scores_the_end_of_turn(dpo):
    enc = dpo.encode("Say nothing.", "", 256)
    response = [t for t, segment in zip(enc.input_ids, enc.response_mask) if segment == 1]
    assert response and dpo.tokenizer.decode(response).strip() == "</s>"


def test_ref_free_reward_is_the_mean_policy_logprob(lm_pair):
    policy, _ = lm_pair
    adapter = load_adapter(str(policy), kind="dpo", ref_free=True, device="cpu", dtype="float32")
    assert adapter.info.kind == "dpo-ref-free" and adapter.info.extra["ref_model"] is None
    ids, start = _conversation(adapter.tokenizer, PROMPT, RESPONSE)
    expected = _token_logprobs(policy, ids)[start - 1:].mean()
    assert _score(adapter, [(PROMPT, RESPONSE)])[0] == pytest.approx(expected, abs=1e-5)


def test_truncation_cuts_the_prompt_and_keeps_the_response_start(dpo, lm_pair):
    policy, reference = lm_pair
    prompt = "START " + "filler words here " * 60 + "END of the prompt"
    full, full_start = _conversation(dpo.tokenizer, prompt, RESPONSE)
    enc = dpo.encode(prompt, RESPONSE, 48)
    assert enc.truncated and len(enc.input_ids) <= 48
    start = enc.response_mask.index(1)
    assert list(enc.input_ids[start:]) == full[full_start:]          # the whole response, nothing else
    ids = list(enc.input_ids)
    ratio = _token_logprobs(policy, ids) - _token_logprobs(reference, ids)
    reward = score_encoded(dpo, [enc], 1, progress=False).rewards[0]
    assert reward == pytest.approx(ratio[start - 1:].sum(), abs=1e-5)


def test_model_info_and_probe_sites(dpo, lm_pair):
    assert dpo.info.kind == "dpo" and dpo.reward_token == "last_response"
    assert adapter_problems(dpo) == [] and dpo.max_positions == 256
    assert dpo.info.extra["ref_model"] == f"local/{lm_pair[1].name}"
    assert dpo.head() is None
    sites = dpo.probe_sites()
    assert sites.n_blocks == 3 and sites.units_per_block == [64, 64, 64] and sites.final is dpo.model.model


def test_reference_with_another_tokenizer_is_rejected(lm_pair, tmp_path):
    other = _causal_lm(_tokenizer(vocab_size=300), tmp_path / "other", 2)
    with pytest.raises(BenchmarkError, match="does not share the tokenizer"):
        load_adapter(str(lm_pair[0]), kind="dpo", ref_model=str(other), device="cpu")


def test_classifier_checkpoint_is_rejected(tiny_model_dirs, lm_pair):
    with pytest.raises(BenchmarkError, match="use --kind classifier"):
        load_adapter(str(tiny_model_dirs["llama"]), kind="dpo", ref_model=str(lm_pair[1]), device="cpu")


@pytest.mark.parametrize("extra, message", [([], "needs --ref-model"),
                                            (["--ref-model", "REF", "--ref-free"], "exclude each other"),
                                            (["--ref-model", "/no/such/folder"], "--ref-model: model path")])
def test_bad_dpo_arguments_fail_with_one_line(extra, message, lm_pair, minidata_dir, tmp_path, capsys):
    extra = [str(lm_pair[1]) if e == "REF" else e for e in extra]
    code = main(["evaluate", "--kind", "dpo", "--model", str(lm_pair[0]), "--data-dir", str(minidata_dir),
                 "--output", str(tmp_path / "out.json"), "--no-resume", "--quiet", "--device", "cpu"] + extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_evaluate_dpo_end_to_end_and_validate(lm_pair, minidata_dir, tmp_path, capsys):
    policy, reference = lm_pair
    out = tmp_path / "org__tiny-dpo.json"
    code = main(["evaluate", "--kind", "dpo", "--model", str(policy), "--ref-model", str(reference),
                 "--model-id", "org/tiny-dpo", "--data-dir", str(minidata_dir), "--output", str(out),
                 "--no-resume", "--quiet", "--device", "cpu", "--batch-size", "8"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["model"]["kind"] == "dpo" and doc["model"]["ref_model"] == f"local/{reference.name}"
    assert doc["probe"]["reward_token"] == "last_response" and doc["probe"]["gradient_conflict"] is None
    assert doc["probe"]["tension_index"] is not None
    assert len({item["chosen"] for item in doc["items"]}) > 10
    capsys.readouterr()
    code = main(["validate", str(out), "--data-dir", str(minidata_dir)])
    assert code == 0 and capsys.readouterr().out.strip().endswith(": OK")
