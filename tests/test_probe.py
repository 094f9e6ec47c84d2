"""The activation-tension probe: known answers on synthetic vectors, planted neurons, determinism,
hook clean-up, and coverage of every fixture architecture."""

import json

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.engine import encode_texts, score_encoded
from benchmark.models import load_adapter
from benchmark.models.base import HeadFunction
from benchmark.probe import (cosine, head_gradient, layer_for, neuron_count, top_units, whitened_cosine,
                             whitened_cosine_given)
from tests import planted


# ---------------------------------------------------------------- known answers


def test_identical_and_opposite_directions():
    rng = np.random.default_rng(0)
    diffs = rng.normal(size=(300, 12))
    mu = rng.normal(size=12)
    assert whitened_cosine(mu, mu, diffs) == pytest.approx(1.0)
    assert whitened_cosine(mu, -mu, diffs) == pytest.approx(-1.0)
    # tension index is minus the mean late cosine: identical → −1, opposite → +1
    assert -np.mean([whitened_cosine(mu, mu, diffs)] * 5) == pytest.approx(-1.0)
    assert -np.mean([whitened_cosine(mu, -mu, diffs)] * 5) == pytest.approx(1.0)


def test_whitened_equals_raw_when_covariance_is_isotropic():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=6), rng.normal(size=6)
    assert whitened_cosine_given(a, b, np.eye(6) * 3.0) == pytest.approx(cosine(a, b), abs=1e-12)
    diffs = rng.normal(size=(20000, 6))            # isotropic sample: Ledoit–Wolf ≈ σ²I
    assert whitened_cosine(a, b, diffs) == pytest.approx(cosine(a, b), abs=0.02)


def test_whitening_discounts_a_rogue_dimension():
    rng = np.random.default_rng(2)
    diffs = rng.normal(size=(5000, 4))
    diffs[:, 0] *= 100.0                            # one dimension with huge variance
    a, b = np.array([10.0, 1.0, 0.0, 0.0]), np.array([10.0, -1.0, 0.0, 0.0])
    assert cosine(a, b) > 0.95
    assert whitened_cosine(a, b, diffs) < 0.0      # in the whitened metric they disagree


def test_head_gradient_matches_the_linear_formula():
    rng = np.random.default_rng(3)
    head = torch.nn.Linear(5, 1).double()
    h_c, h_r = rng.normal(size=(30, 5)), rng.normal(size=(30, 5))
    grad = head_gradient(HeadFunction(head, lambda m, h: m(h)[:, 0]), h_c, h_r)
    w = head.weight.detach().numpy()[0]
    margin = (h_c - h_r) @ w
    expected = (1 / (1 + np.exp(margin)))[:, None] * (h_c - h_r)   # σ(−m)·δ
    np.testing.assert_allclose(grad[:5], expected.mean(axis=0), atol=1e-12)
    assert grad[5] == pytest.approx(0.0, abs=1e-12)                  # the bias cancels in the margin


def test_neuron_ranking_rounds_and_breaks_ties_by_index():
    scores = np.array([1.0, -3.0, 3.0000000001, 2.0, 0.5])
    assert top_units(scores, 2).tolist() == [1, 2]       # |−3| and 3.0000000001 tie at 6 digits
    assert neuron_count(100) == 8 and neuron_count(10000) == 50
    assert [layer_for(k / 8, 6) for k in range(9)] == [0, 1, 2, 2, 3, 4, 5, 5, 6]


# ---------------------------------------------------------------- planted neurons


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    model = planted.build_planted(root / "model")
    data = planted.write_planted_data(root / "data")
    out = root / "org__planted.json"
    assert main(["evaluate", "--model", str(model), "--model-id", "org/planted", "--data-dir", str(data),
                 "--output", str(out), "--quiet", "--batch-size", "8"]) == 0
    return model, data, json.loads(out.read_text())


def test_planted_units_are_recovered(planted_run):
    _, _, doc = planted_run
    neurons = doc["probe"]["neurons"]
    assert planted.DETAIL_UNIT in neurons["helpful"] and planted.DETAIL_UNIT not in neurons["harmless"]
    assert planted.REFUSAL_UNIT in neurons["harmless"] and planted.REFUSAL_UNIT not in neurons["helpful"]
    assert doc["scores"]["helpful"] == 1.0 and doc["scores"]["harmless"] == 1.0


def test_ablating_planted_units_moves_the_matching_accuracy(planted_run):
    _, _, doc = planted_run
    conditions = {c["name"]: c for c in doc["probe"]["ablations"]["conditions"]}
    assert conditions["helpful_neurons"]["helpful_delta"] < -0.3
    assert abs(conditions["helpful_neurons"]["harmless_delta"]) < 0.05
    assert conditions["harmless_neurons"]["harmless_delta"] < -0.3
    assert abs(conditions["harmless_neurons"]["helpful_delta"]) < 0.05


def test_probe_is_batch_size_independent(planted_run, tmp_path):
    model, data, doc = planted_run
    out = tmp_path / "org__planted.json"
    assert main(["evaluate", "--model", str(model), "--model-id", "org/planted", "--data-dir", str(data),
                 "--output", str(out), "--quiet", "--batch-size", "1"]) == 0
    single = json.loads(out.read_text())["probe"]
    batched = doc["probe"]

    def numbers(value, path=""):
        if isinstance(value, dict):
            for k, v in value.items():
                yield from numbers(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from numbers(v, f"{path}[{i}]")
        else:
            yield path, value

    for (p1, a), (p2, b) in zip(numbers(batched), numbers(single), strict=True):
        assert p1 == p2
        if isinstance(a, float) or isinstance(b, float):
            assert a == pytest.approx(b, abs=1e-5), p1
        else:
            assert a == b, p1


# ---------------------------------------------------------------- hooks and architectures


def test_hooks_are_removed_after_the_run(tiny_model_dirs, minidata_dir, tmp_path):
    adapter = load_adapter(str(tiny_model_dirs["qwen2"]), device="cpu")
    texts = [("a question", "an answer"), ("another", "reply here")]
    before = score_encoded(adapter, encode_texts(adapter, texts, 64), 2, progress=False).rewards
    from benchmark.probe import ActivationCapture

    capture = ActivationCapture(adapter.probe_sites(), 2)
    score_encoded(adapter, encode_texts(adapter, texts, 64), 2, observer=capture, progress=False)
    capture.discard()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in adapter.model.modules())
    after = score_encoded(adapter, encode_texts(adapter, texts, 64), 2, progress=False).rewards
    np.testing.assert_array_equal(before, after)
    assert capture.units[:, :].any()       # it did capture something at t*


@pytest.mark.parametrize("arch", ["gpt2", "qwen2", "bert"])
def test_every_architecture_runs_the_probe(arch, tiny_model_dirs, minidata_dir, tmp_path):
    out = tmp_path / f"org__{arch}.json"
    assert main(["evaluate", "--model", str(tiny_model_dirs[arch]), "--model-id", f"org/{arch}", "--data-dir",
                 str(minidata_dir), "--output", str(out), "--quiet"]) == 0
    probe = json.loads(out.read_text())["probe"]
    assert len(probe["depths"]) == 9 and probe["n_blocks"] == 3
    assert probe["total_units"] == 3 * (64 if arch != "gpt2" else 128)
    assert probe["gradient_conflict"] is not None and -1 <= probe["gradient_conflict"] <= 1
    assert probe["reward_token"] == ("first" if arch == "bert" else "last")
    assert main(["validate", str(out), "--data-dir", str(minidata_dir)]) == 0


def test_unlocatable_blocks_fail_clearly():
    from benchmark.errors import BenchmarkError
    from benchmark.models.sites import locate_probe_sites

    class Flat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"hidden_size": 4})()
            self.linear = torch.nn.Linear(4, 4)

    with pytest.raises(BenchmarkError, match="cannot locate the transformer blocks.*--no-probe"):
        locate_probe_sites(Flat())
