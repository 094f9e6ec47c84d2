"""The probe end to end (capture, ablations, attribution patching, head gradients, the paper's
block, `compare`) on models whose answers are planted by hand, plus determinism, hook clean-up and
every fixture architecture. Pure statistics are tested in test_probe_stats.py."""

import dataclasses
import json
import types

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.engine import encode_texts, score_encoded
from benchmark.models import load_adapter
from benchmark.models.base import Batch, EncodedText, HeadFunction
from benchmark.models.sites import locate_probe_sites
from benchmark.probe_capture import ActivationCapture, ModelRunner, head_gradients, mean_ablation
from benchmark.probe_stats import unpack_units
from benchmark.validate import check_probe
from tests import planted


def evaluate(model, data, out, *extra):
    assert main(["evaluate", "--model", str(model), "--model-id", f"org/{out.stem.split('__')[-1]}", "--data-dir",
                 str(data), "--output", str(out), "--quiet", "--no-resume", *extra]) == 0
    return json.loads(out.read_text())


# ---------------------------------------------------------------- the reward head's gradients


def test_head_gradients_match_the_linear_formula_for_every_weighting():
    rng = np.random.default_rng(3)
    head = torch.nn.Linear(5, 1).double()
    h_c, h_r = rng.normal(size=(30, 5)), rng.normal(size=(30, 5))
    weights = np.vstack([np.ones(30), rng.integers(1, 3, size=(4, 30))])    # the estimate, then resamples
    got = np.vstack([g for _, g in head_gradients(HeadFunction(head, lambda m, h: m(h)[:, 0]), h_c, h_r,
                                                  weights, chunk=2)])
    w = head.weight.detach().numpy()[0]
    margin = (h_c - h_r) @ w
    per_pair = (1 / (1 + np.exp(margin)))[:, None] * (h_c - h_r)          # σ(−m)·δ
    expected = weights @ per_pair / weights.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got[:, :5], expected, atol=1e-12)
    np.testing.assert_allclose(got[:, 5], 0.0, atol=1e-12)                 # the bias cancels in the margin


def test_head_gradient_products_equal_the_explicit_gradients():
    """The Gram route (products from each linear layer's inputs and output gradients) against
    explicit gradients, on a pooler-style head (linear, tanh, linear)."""
    from benchmark import probe_stats as ps
    from benchmark.probe_capture import head_parameters, head_text_gradients

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)).double()
    head = HeadFunction(module, lambda m, h: m(h)[:, 0])
    rng = np.random.default_rng(1)
    hidden = rng.normal(size=(20, 6))
    chosen_h, rejected_h, chosen_s, rejected_s = np.arange(0, 5), np.arange(5, 10), np.arange(10, 15), np.arange(15, 20)
    weights_h = np.vstack([np.ones(5), rng.integers(0, 3, size=(3, 5)) + 0.0])
    weights_s = np.vstack([np.ones(5), rng.integers(0, 3, size=(3, 5)) + 1.0])
    text = head_text_gradients(head, hidden)
    margins = {k: text.rewards[c] - text.rewards[r] for k, (c, r) in
               {"h": (chosen_h, rejected_h), "s": (chosen_s, rejected_s)}.items()}
    coef_h = weights_h / (1 + np.exp(margins["h"])) / weights_h.sum(axis=1, keepdims=True)
    coef_s = weights_s / (1 + np.exp(margins["s"])) / weights_s.sum(axis=1, keepdims=True)
    ends_h, ends_s = (chosen_h, rejected_h), (chosen_s, rejected_s)
    grams = (ps.pair_gram(text.gram, ends_h, ends_s), ps.pair_gram(text.gram, ends_h, ends_h),
             ps.pair_gram(text.gram, ends_s, ends_s))
    plain, rotation = ps.gradient_cosines(grams, coef_h, coef_s, text.theta_dot[chosen_h] - text.theta_dot[rejected_h],
                                          text.theta_dot[chosen_s] - text.theta_dot[rejected_s], text.theta_norm)
    g_h = np.vstack([g for _, g in head_gradients(head, hidden[chosen_h], hidden[rejected_h], weights_h)])
    g_s = np.vstack([g for _, g in head_gradients(head, hidden[chosen_s], hidden[rejected_s], weights_s)])
    np.testing.assert_allclose(plain, ps.cosine_rows(g_h, g_s), atol=1e-10)
    unit = head_parameters(head) / np.linalg.norm(head_parameters(head))
    expected = ps.cosine_rows(g_h - np.outer(g_h @ unit, unit), g_s - np.outer(g_s @ unit, unit))
    np.testing.assert_allclose(rotation, expected, atol=1e-10)


# ---------------------------------------------------------------- attribution patching


class _LinearUnitsModel(torch.nn.Module):
    """Embeddings → blocks whose MLP reads only the embedding dimensions and writes elsewhere →
    mean over non-pad tokens → linear head: the reward is exactly linear in every MLP unit."""

    class Block(torch.nn.Module):
        def __init__(self, hidden, units):
            super().__init__()
            self.up = torch.nn.Linear(hidden, units)
            self.act = torch.nn.GELU()
            self.down = torch.nn.Linear(units, hidden)

        def forward(self, h):
            return h + self.down(self.act(self.up(h)))

    def __init__(self, vocab=40, hidden=8, units=16, blocks=2):
        super().__init__()
        self.config = types.SimpleNamespace(hidden_size=hidden)
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.layers = torch.nn.ModuleList([self.Block(hidden, units) for _ in range(blocks)])
        self.head = torch.nn.Linear(hidden, 1)
        with torch.no_grad():
            self.embed.weight[:, hidden // 2:] = 0.0
            for block in self.layers:
                block.up.weight[:, hidden // 2:] = 0.0          # never reads what a block wrote
                block.down.weight[: hidden // 2] = 0.0          # writes only the upper half

    def forward(self, ids, mask):
        h = self.embed(ids)
        for block in self.layers:
            h = block(h)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return self.head(pooled)[:, 0]


class _LinearAdapter:
    pad_token_id = 0
    device = torch.device("cpu")

    def __init__(self):
        torch.manual_seed(0)
        self.model = _LinearUnitsModel().double().eval()

    @torch.inference_mode()
    def score_batch(self, batch: Batch) -> torch.Tensor:
        return self.model(batch.input_ids, batch.attention_mask.double())

    def probe_sites(self):
        return locate_probe_sites(self.model)


def test_attribution_patching_equals_exact_mean_ablation_on_a_linear_model():
    adapter = _LinearAdapter()
    rng = np.random.default_rng(0)
    encoded = [EncodedText(tuple(int(t) for t in rng.integers(1, 40, size=n)), n - 1)
               for n in rng.integers(3, 14, size=25)]
    runner = ModelRunner(adapter, encoded, batch_size=4)
    texts = np.arange(len(encoded))
    means = rng.normal(size=32)
    attribution = runner.attribution(texts, means)
    effects = attribution.effects
    assert effects.shape == (25, 32)
    base = runner.rewards(texts)
    np.testing.assert_allclose(attribution.rewards, base, atol=1e-12)    # the same forward scores the texts
    for units in (np.array([0, 3, 17]), np.arange(32), np.array([31])):
        exact = runner.rewards(texts, mean_ablation(runner.sites, units, means)) - base
        np.testing.assert_allclose(effects[:, units].sum(axis=1), exact, atol=1e-10)
    assert all(p.requires_grad for p in adapter.model.parameters())      # restored afterwards
    assert not any(m._forward_pre_hooks for m in adapter.model.modules())


def test_an_adapter_that_cannot_backpropagate_gets_no_attribution():
    class NoGrad(_LinearAdapter):
        def score_batch(self, batch):
            with torch.no_grad():
                return self.model(batch.input_ids, batch.attention_mask.double())

    adapter = NoGrad()
    encoded = [EncodedText((1, 2, 3), 2), EncodedText((4, 5), 1)]
    assert ModelRunner(adapter, encoded).attribution(np.arange(2), np.zeros(32)) is None


# ---------------------------------------------------------------- planted neurons


@pytest.fixture(scope="module")
def planted_data(tmp_path_factory):
    return planted.write_planted_data(tmp_path_factory.mktemp("planted-data"))


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory, planted_data):
    root = tmp_path_factory.mktemp("planted")
    model = planted.build_planted(root / "model")
    return model, evaluate(model, planted_data, root / "org__planted.json", "--batch-size", "8")


def test_planted_units_are_recovered_and_removing_them_costs_their_objective(planted_run):
    _, doc = planted_run
    probe = doc["probe"]
    neurons = probe["neurons"]
    assert planted.DETAIL_UNIT in neurons["helpful"] and planted.DETAIL_UNIT not in neurons["harmless"]
    assert planted.REFUSAL_UNIT in neurons["harmless"] and planted.REFUSAL_UNIT not in neurons["helpful"]
    assert doc["scores"]["helpful"] == 1.0 and doc["scores"]["harmless"] == 1.0
    conditions = {c["name"]: c for c in probe["ablations"]["conditions"]}
    own_h, own_s = conditions["helpful_neurons"]["helpful"], conditions["harmless_neurons"]["harmless"]
    assert own_h["accuracy_delta"] < -0.3 and own_s["accuracy_delta"] < -0.3
    assert own_h["margin_effect_ci95"][1] < -1.0 and own_s["margin_effect_ci95"][1] < -1.0
    assert conditions["helpful_neurons"]["harmless"]["accuracy_delta"] == 0.0
    assert conditions["harmless_neurons"]["helpful"]["accuracy_delta"] > -0.15
    ablations = probe["ablations"]
    assert ablations["null_method"] == "attribution" and ablations["null"]["sets"] == 200
    assert ablations["attribution_r"] > 0.5
    assert [d["fraction"] for d in ablations["dose"]] == [0.005, 0.02, 0.1]
    assert check_probe(probe) is None


def test_objective_units_in_different_blocks_both_get_units_in_every_block(tmp_path, planted_data):
    """Equal strength, different blocks: a global ranking lets the stronger-looking block take all
    the units; the per-block choice gives both objectives k_b units in each block."""
    doc = evaluate(planted.build_planted(tmp_path / "model", refusal_block=1), planted_data,
                   tmp_path / "org__split.json")
    neurons = doc["probe"]["neurons"]
    assert all(b["helpful"] == b["k"] and b["harmless"] == b["k"] for b in neurons["per_block"])
    assert planted.DETAIL_UNIT in neurons["helpful"]
    assert planted.refusal_unit(1) in neurons["harmless"]


def test_probe_is_batch_size_independent_and_deterministic(planted_run, planted_data, tmp_path):
    model, doc = planted_run
    single = evaluate(model, planted_data, tmp_path / "org__planted.json", "--batch-size", "1")["probe"]
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


def test_without_backpropagation_the_null_is_exact(planted_run, planted_data, tmp_path, monkeypatch):
    monkeypatch.setattr(ModelRunner, "attribution", lambda self, texts, means, capture=None: None)
    model, _ = planted_run
    probe = evaluate(model, planted_data, tmp_path / "org__planted.json")["probe"]
    ablations = probe["ablations"]
    assert ablations["null_method"] == "exact" and ablations["null"]["sets"] == 10
    assert ablations["attribution_r"] is None and ablations["dose"] is None
    assert ablations["interference_p"] >= 1 / 11
    assert any("cannot backpropagate" in note for note in probe["notes"])
    assert check_probe(probe) is None


# ---------------------------------------------------------------- the paper's measure and compare

SHARED = [3, 10, 40, 70, 90, 100, 120]
HELPFUL = [5, 20, 66, 80, 110, 125]
HARMLESS = [7, 30, 50, 75, 95, 127]
# model B: its harmless set shares 4 shared units and 2 of A's helpful units
B_SHARED = [3, 10, 40, 70, 11, 12, 13]
B_HELPFUL = [14, 15, 16, 17, 18, 19]
B_HARMLESS = [5, 20, 60, 61, 62, 63]


@pytest.fixture(scope="module")
def marker_data(tmp_path_factory):
    return planted.write_marker_data(tmp_path_factory.mktemp("marker-data"))


@pytest.fixture(scope="module")
def magnitude_runs(tmp_path_factory, marker_data):
    root = tmp_path_factory.mktemp("magnitude")
    paths = {}
    for name, sets in (("a", (SHARED, HELPFUL, HARMLESS)), ("b", (B_SHARED, B_HELPFUL, B_HARMLESS))):
        model = planted.build_magnitude_planted(root / f"model-{name}", *sets)
        paths[name] = root / f"org__mag-{name}.json"
        evaluate(model, marker_data, paths[name])
    return paths


def test_the_paper_block_finds_planted_magnitudes(magnitude_runs):
    paper = json.loads(magnitude_runs["a"].read_text())["probe"]["paper"]
    assert paper["site_kind"] == "activation" and "act_fn" in paper["site"]
    assert paper["k"] == 13 and paper["total_units"] == 128
    assert unpack_units(paper["helpful_set"], 128).tolist() == sorted(SHARED + HELPFUL)
    assert unpack_units(paper["harmless_set"], 128).tolist() == sorted(SHARED + HARMLESS)
    assert paper["overlap"] == 7 and paper["jaccard"] == pytest.approx(7 / 19)
    assert paper["jaccard_chance"] == pytest.approx(0.1 / 1.9, abs=0.002)
    assert [c["name"] for c in paper["ablations"]["conditions"]] == ["helpful_set", "harmless_set"]


def test_compare_reports_the_known_cross_model_jaccard(magnitude_runs, capsys):
    assert main(["compare", str(magnitude_runs["a"]), str(magnitude_runs["b"])]) == 0
    out = capsys.readouterr().out
    a_helpful, b_harmless = set(SHARED + HELPFUL), set(B_SHARED + B_HARMLESS)
    expected = len(a_helpful & b_harmless) / len(a_helpful | b_harmless)
    assert expected == pytest.approx(6 / 20)
    assert f"A's helpful set vs B's harmless set: {expected:.3f}" in out
    row = next(line for line in out.splitlines() if line.startswith("A helpful   B harmless"))
    assert row.split()[4] == "6" and row.split()[5] == f"{expected:.3f}"


def test_compare_refuses_different_unit_layouts(magnitude_runs, tmp_path, capsys):
    doc = json.loads(magnitude_runs["b"].read_text())
    doc["probe"]["paper"]["units_per_block"] = [32, 96]
    other = tmp_path / "org__other.json"
    other.write_text(json.dumps(doc))
    assert main(["compare", str(magnitude_runs["a"]), str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different unit layouts" in err[0]


# ---------------------------------------------------------------- hooks and architectures


def test_hooks_are_removed_after_the_run(tiny_model_dirs):
    adapter = load_adapter(str(tiny_model_dirs["qwen2"]), device="cpu")
    texts = [("a question", "an answer"), ("another", "reply here")]
    encoded = encode_texts(adapter, texts, 64)
    before = score_encoded(adapter, encoded, 2, progress=False).rewards
    capture = ActivationCapture(adapter.probe_sites(), [len(e.input_ids) for e in encoded], [True, False])
    score_encoded(adapter, encoded, 2, observer=capture, progress=False)
    assert capture.units.any() and capture.unit_sums.any() and capture.paper_sums.any()
    means = capture.unit_means(np.array([0]))
    np.testing.assert_allclose(means * len(encoded[0].input_ids), capture.unit_sums[0], rtol=1e-6)
    capture.discard()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in adapter.model.modules())
    after = score_encoded(adapter, encoded, 2, progress=False).rewards
    np.testing.assert_array_equal(before, after)


def test_stores_spill_to_disk_over_the_budget_and_are_removed(tiny_model_dirs, tmp_path):
    adapter = load_adapter(str(tiny_model_dirs["llama"]), device="cpu")
    encoded = encode_texts(adapter, [("a question", "an answer"), ("another", "reply here")], 64)
    capture = ActivationCapture(adapter.probe_sites(), [len(e.input_ids) for e in encoded], [True, True],
                                cache_dir=tmp_path, budget_bytes=0)
    score_encoded(adapter, encoded, 2, observer=capture, progress=False)
    assert isinstance(capture.units, np.memmap) and capture.units.any()
    assert len(list(tmp_path.glob("probe-*.bin"))) == 4          # residual, units, unit sums, paper sums
    capture.discard()
    assert not list(tmp_path.glob("probe-*.bin"))


def test_the_paper_site_falls_back_to_the_down_projection_input_or_says_why_not():
    from benchmark.probe_capture import activation_site

    class Functional(_LinearUnitsModel.Block):       # keeps an activation module it never calls
        def forward(self, h):
            return h + self.down(torch.nn.functional.gelu(self.up(h)))

    adapter = _LinearAdapter()
    assert activation_site(adapter.probe_sites()).kind == "activation"
    adapter.model.layers = torch.nn.ModuleList([Functional(8, 16) for _ in range(2)]).double()
    encoded = [EncodedText((1, 2, 3), 2), EncodedText((4, 5), 1)]
    sites = dataclasses.replace(adapter.probe_sites(), final=adapter.model.layers[-1])   # its base returns rewards
    capture = ActivationCapture(sites, [3, 2], [True, False])
    score_encoded(adapter, encoded, 2, observer=capture, progress=False)
    assert "did not run" in capture.paper_problem          # the paper block is then null, with a note
    capture.discard()
    for block in adapter.model.layers:
        del block.act
    site = activation_site(adapter.probe_sites())
    assert site.kind == "down_projection_input" and "down-projection input" in site.description


@pytest.mark.parametrize("arch", ["gpt2", "qwen2", "bert"])
def test_every_architecture_runs_the_probe(arch, tiny_model_dirs, minidata_dir, tmp_path):
    out = tmp_path / f"org__{arch}.json"
    probe = evaluate(tiny_model_dirs[arch], minidata_dir, out)["probe"]
    assert [d["layer"] for d in probe["depths"]] == [0, 1, 2, 3] and probe["n_blocks"] == 3
    assert probe["total_units"] == 3 * (64 if arch != "gpt2" else 128)
    assert probe["gradient_conflict"] is not None and probe["gradient_conflict_ci95"] is not None
    assert probe["reward_token"] == ("first" if arch == "bert" else "last")
    assert probe["paper"]["site_kind"] == "activation"
    assert probe["refusal_flip_pairs"]["comply_benign"] > 0
    assert main(["validate", str(out), "--data-dir", str(minidata_dir)]) == 0


def test_unlocatable_blocks_fail_clearly():
    from benchmark.errors import BenchmarkError

    class Flat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"hidden_size": 4})()
            self.linear = torch.nn.Linear(4, 4)

    with pytest.raises(BenchmarkError, match="cannot locate the transformer blocks.*--no-probe"):
        locate_probe_sites(Flat())
