"""train-reference: offline, lowers the loss, deterministic for a seed, reloads through evaluate."""

import json

import pytest
import torch
from safetensors.torch import load_file

from benchmark.cli import main
from benchmark.data import load_pairs
from benchmark.engine import collate
from benchmark.models.text import ConversationEncoder
from benchmark.train import TrainConfig, _load_base, bt_loss, objective_pool, train_reference
from tests.minitrain import write_minitrain

CONFIG = dict(steps=6, batch_pairs=4, max_length=64, learning_rate=2e-4)


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory, minidata_dir):
    return write_minitrain(minidata_dir)


def pool_loss(model, tokenizer, pairs):
    encoder = ConversationEncoder(tokenizer, "first")
    pad = tokenizer.pad_token_id
    chosen = collate([encoder.encode(p.prompt, p.chosen, 64) for p in pairs], pad, torch.device("cpu"))
    rejected = collate([encoder.encode(p.prompt, p.rejected, 64) for p in pairs], pad, torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        return float(bt_loss(model, chosen, rejected))


def test_training_lowers_the_loss_and_is_deterministic(train_dir, tmp_path):
    pairs = load_pairs("train", train_dir)
    pool = objective_pool(pairs, "harmless")
    config = TrainConfig(objective="harmless", seed=3, **CONFIG)
    before_model, tokenizer = _load_base(3)
    before = pool_loss(before_model, tokenizer, pool)
    train_reference("harmless", tmp_path / "a", seed=3, config=config, pairs=pairs, progress=False)
    from transformers import AutoModelForSequenceClassification

    trained = AutoModelForSequenceClassification.from_pretrained(tmp_path / "a")
    after = pool_loss(trained, tokenizer, pool)
    assert after < before - 0.01, (before, after)

    train_reference("harmless", tmp_path / "b", seed=3, config=config, pairs=pairs, progress=False)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    card = (tmp_path / "a" / "README.md").read_text()
    assert "harmless" in card and "seed 3" in card


def test_same_budget_for_every_objective(train_dir):
    pairs = load_pairs("train", train_dir)
    helpful, harmless, mixed = (objective_pool(pairs, o) for o in ("helpful", "harmless", "mixed"))
    assert len(helpful) and len(harmless) and len(mixed) == len(helpful) + len(harmless)
    assert {p.objective for p in helpful} == {"helpful"} and {p.objective for p in harmless} == {"harmless"}


def test_trained_model_reloads_through_evaluate(train_dir, tmp_path, minidata_dir):
    pairs = load_pairs("train", train_dir)
    summary = train_reference("mixed", tmp_path / "mixed", seed=0, config=TrainConfig(objective="mixed", **CONFIG),
                              pairs=pairs, progress=False)
    again = train_reference("mixed", tmp_path / "mixed", seed=0, config=TrainConfig(objective="mixed", **CONFIG),
                            pairs=pairs, progress=False)
    assert again == summary          # reused, not retrained
    out = tmp_path / "org__mixed.json"
    assert main(["evaluate", "--model", str(tmp_path / "mixed"), "--model-id", "org/mixed", "--data-dir",
                 str(minidata_dir), "--output", str(out), "--quiet", "--no-probe"]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"]["head"] == "trained" and doc["model"]["architecture"] == "BertForSequenceClassification"
