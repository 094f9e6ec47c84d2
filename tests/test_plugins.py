"""Plugins: discovery through the `tension_bench.adapters` entry points (registered here with a
dist-info folder on sys.path, nothing installed), the shipped multi-objective example end to end,
and one-line errors for unknown plugins and objects that are not adapters."""

import json

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.engine import score_encoded
from benchmark.errors import BenchmarkError
from benchmark.models import load_adapter
from benchmark.models.base import RewardAdapter, protocol_members
from benchmark.models.plugins import ENTRY_POINT_GROUP, adapter_problems, available_plugins
from benchmark.plugins import multi_objective
from tests import tiny_models

WEIGHTS = [0.7, 0.3]
TEXT = ("How do I kill a Python process that hangs?", "Use kill PID, then kill -9 if it stays.")


def not_an_adapter(source, **options):
    """A broken plugin factory: what it returns lacks the adapter protocol."""
    return object()


def _altered(**changes):
    """A plugin factory returning the multi-objective adapter with members removed (None) or replaced."""
    def load(source, **options):
        adapter = multi_objective.load(source, **options)
        for name, value in changes.items():
            if value is None:
                delattr(adapter, name)
            else:
                setattr(adapter, name, value)
        return adapter
    return load


no_reward_token = _altered(reward_token=None)
no_max_positions = _altered(max_positions=None)
bad_members = _altered(reward_token="middle", max_positions=0, pad_token_id=True)


@pytest.fixture
def registered(tmp_path, monkeypatch):
    """Declare the example plugin (and a broken one) the way an installed package would."""
    info = tmp_path / "site" / "tension_bench_test_plugins-0.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tension-bench-test-plugins\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        "test-multi = benchmark.plugins.multi_objective:load\n"
        "test-broken = tests.test_plugins:not_an_adapter\n"
        "test-no-reward-token = tests.test_plugins:no_reward_token\n"
        "test-no-max-positions = tests.test_plugins:no_max_positions\n"
        "test-bad-members = tests.test_plugins:bad_members\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return tmp_path / "site"


def _two_output_classifier(out, arch="llama", weights=WEIGHTS):
    from transformers import AutoModelForSequenceClassification, BertConfig, LlamaConfig

    torch.manual_seed(0)
    if arch == "llama":
        tok = tiny_models.byte_level_tokenizer(["<s>", "</s>"])
        tok.bos_token, tok.eos_token, tok.pad_token = "<s>", "</s>", "</s>"
        tok.chat_template = tiny_models.DECODER_TEMPLATE
        config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
    else:
        tok = tiny_models.wordpiece_tokenizer()
        config = BertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                            num_attention_heads=4, max_position_embeddings=256, pad_token_id=tok.pad_token_id)
    config.num_labels = 2
    model = AutoModelForSequenceClassification.from_config(config)
    with torch.no_grad():
        (model.score if arch == "llama" else model.classifier).weight.normal_(0, 1.0)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    if weights is not None:
        (out / "tension_bench_weights.json").write_text(json.dumps({"weights": weights}))
    return out


@pytest.fixture(scope="module")
def two_output(tmp_path_factory):
    return _two_output_classifier(tmp_path_factory.mktemp("multi") / "tiny-two-output")


def _hand_reward(path, ids, weights):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double().numpy()
    return float(np.dot(weights, logits))


def test_entry_points_are_discovered(registered):
    assert {"test-multi", "test-broken"} <= set(available_plugins())


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_reward_is_the_weighted_sum_of_the_outputs(arch, registered, tmp_path):
    path = _two_output_classifier(tmp_path / arch, arch)
    adapter = load_adapter(str(path), kind="plugin:test-multi", device="cpu", dtype="float32")
    assert adapter.info.kind == "plugin:test-multi"
    enc = adapter.encode(*TEXT, 256)
    reward = score_encoded(adapter, [enc], 1, progress=False).rewards[0]
    assert reward == pytest.approx(_hand_reward(path, list(enc.input_ids), WEIGHTS), abs=1e-5)
    # the head reproduces the reward from h_L at t*, so gradient_conflict can be computed
    sites, head, captured = adapter.probe_sites(), adapter.head(), {}
    handle = sites.final.register_forward_hook(lambda m, a, out: captured.update(h=out[0][0, enc.reward_index]))
    try:
        score_encoded(adapter, [enc], 1, progress=False)
    finally:
        handle.remove()
    with torch.no_grad():
        assert float(head.apply(head.module, captured["h"][None])[0]) == pytest.approx(reward, abs=1e-5)


def test_equal_weights_without_a_weights_file(registered, tmp_path, capsys):
    path = _two_output_classifier(tmp_path / "plain", weights=None)
    adapter = load_adapter(str(path), kind="plugin:test-multi", device="cpu", dtype="float32")
    assert "1/2 each" in capsys.readouterr().err
    enc = adapter.encode(*TEXT, 256)
    reward = score_encoded(adapter, [enc], 1, progress=False).rewards[0]
    assert reward == pytest.approx(_hand_reward(path, list(enc.input_ids), [0.5, 0.5]), abs=1e-5)


@pytest.mark.parametrize("content, message", [('{"weights": [1, 2, 3]}', "3 weights but the model has 2"),
                                              ('{"weights": [1, "a"]}', "finite numbers"),
                                              ("[0.5", "not valid JSON")])
def test_bad_weights_file_is_one_clear_error(content, message, registered, tmp_path):
    path = _two_output_classifier(tmp_path / "bad", weights=None)
    (path / "tension_bench_weights.json").write_text(content)
    with pytest.raises(BenchmarkError, match=message):
        load_adapter(str(path), kind="plugin:test-multi", device="cpu")


def test_evaluate_plugin_end_to_end_and_validate(registered, two_output, minidata_dir, tmp_path, capsys):
    out = tmp_path / "org__tiny-multi.json"
    code = main(["evaluate", "--kind", "plugin:test-multi", "--model", str(two_output), "--model-id",
                 "org/tiny-multi", "--data-dir", str(minidata_dir), "--output", str(out), "--no-resume",
                 "--quiet", "--device", "cpu", "--batch-size", "8"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["model"]["kind"] == "plugin:test-multi"
    assert doc["probe"]["reward_token"] == "last" and doc["probe"]["gradient_conflict"] is not None
    capsys.readouterr()
    code = main(["validate", str(out), "--data-dir", str(minidata_dir)])
    assert code == 0 and capsys.readouterr().out.strip().endswith(": OK")


def test_unknown_plugin_is_one_line_listing_the_available(registered, two_output, minidata_dir, tmp_path, capsys):
    code = main(["evaluate", "--kind", "plugin:no-such-plugin", "--model", str(two_output), "--data-dir",
                 str(minidata_dir), "--output", str(tmp_path / "out.json"), "--no-resume", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "unknown plugin 'no-such-plugin'" in err and "test-multi" in err and "test-broken" in err


def test_a_factory_returning_no_adapter_is_rejected(registered, two_output):
    with pytest.raises(BenchmarkError, match="test-broken.*not a RewardAdapter: missing info"):
        load_adapter(str(two_output), kind="plugin:test-broken", device="cpu")


def test_plugin_checks_are_the_protocol_members():
    attributes, methods = protocol_members(RewardAdapter)
    assert {"reward_token", "max_positions", "info", "pad_token_id", "device"} == set(attributes)
    assert {"encode", "score_batch", "probe_sites", "head"} == set(methods)
    assert adapter_problems(object()) == [f"missing {', '.join([*attributes, *methods])}"]


@pytest.mark.parametrize("plugin, problem", [
    ("test-no-reward-token", "missing reward_token"),
    ("test-no-max-positions", "missing max_positions"),
    ("test-bad-members", "pad_token_id is not an int; reward_token is not one of last, first, last_response; "
                         "max_positions is not a positive int"),
])
def test_a_plugin_missing_a_protocol_member_is_one_clear_line(plugin, problem, registered, two_output,
                                                              minidata_dir, tmp_path, capsys):
    with pytest.raises(BenchmarkError) as raised:
        load_adapter(str(two_output), kind=f"plugin:{plugin}", device="cpu")
    assert str(raised.value) == (f"plugin {plugin!r} returned a MultiObjectiveAdapter that is not a "
                                 f"RewardAdapter: {problem}")
    capsys.readouterr()
    code = main(["evaluate", "--kind", f"plugin:{plugin}", "--model", str(two_output), "--data-dir",
                 str(minidata_dir), "--output", str(tmp_path / "out.json"), "--no-resume", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].endswith(problem) and not (tmp_path / "out.json").exists()


def test_shipped_classifier_style_adapters_meet_the_protocol(registered, two_output, tiny_model_dirs):
    multi = load_adapter(str(two_output), kind="plugin:test-multi", device="cpu")
    classifier = load_adapter(str(tiny_model_dirs["llama"]), device="cpu")
    assert adapter_problems(multi) == [] and adapter_problems(classifier) == []
    assert multi.reward_token == classifier.reward_token == "last" and multi.max_positions == 256


def test_ref_model_does_not_apply_to_plugins(registered, two_output):
    with pytest.raises(BenchmarkError, match="only apply to --kind dpo"):
        load_adapter(str(two_output), kind="plugin:test-multi", ref_model="org/ref", device="cpu")
