"""`train-reference --base smollm2-135m` on tiny decoders: the top blocks train on a shared trunk cache,
and the saved model scores through evaluate exactly as training saw it."""

import pytest
import torch
from safetensors.torch import load_file

from benchmark.cli import main
from benchmark.data import load_pairs
from benchmark.train_decoder import (DecoderTrainConfig, TopBlocks, check_against_engine, load_base,
                                     step_batches, train_decoder_reference)


def _config(objective: str) -> DecoderTrainConfig:
    return DecoderTrainConfig(objective=objective, steps=6, batch_pairs=3, trained_blocks=2, learning_rate=1e-3)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_top_blocks_train_and_score_as_evaluate_does(arch, tiny_model_dirs, minidata_dir, tmp_path):
    base = tiny_model_dirs[arch]
    pairs = load_pairs("test", minidata_dir)
    out = tmp_path / "mixed"
    summary = train_decoder_reference("mixed", out, base_dir=base, pairs=pairs, config=_config("mixed"),
                                      progress=False, trunk_cache=tmp_path / "trunk")
    assert summary["trained_blocks"] == [1, 2] and summary["n_blocks"] == 3
    assert summary["last_loss"] < summary["first_loss"]
    # the training forward (stored trunk output -> top blocks -> head at t*) is evaluate's reward
    assert check_against_engine(out, pairs[:8], trained_blocks=2) < 1e-4
    before, after = load_file(str(base / "model.safetensors")), load_file(str(out / "model.safetensors"))
    frozen = [k for k in before if k.startswith(("model.embed_tokens", "model.layers.0."))]
    trained = [k for k in before if k.startswith(("model.layers.2.", "score"))]
    assert frozen and trained
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    assert all(not torch.equal(before[k], after[k]) for k in trained)
    assert "blocks 1-2 of 0-2" in (out / "README.md").read_text()


def test_objectives_share_one_trunk_cache_and_a_trained_folder_is_reused(tiny_model_dirs, minidata_dir, tmp_path,
                                                                         capsys):
    base, pairs, trunk = tiny_model_dirs["llama"], load_pairs("test", minidata_dir), tmp_path / "trunk"
    train_decoder_reference("helpful", tmp_path / "h", base_dir=base, pairs=pairs, config=_config("helpful"),
                            progress=False, trunk_cache=trunk)
    (cached,) = list(trunk.glob("*.safetensors"))
    stamp = cached.stat().st_mtime_ns
    train_decoder_reference("harmless", tmp_path / "s", base_dir=base, pairs=pairs, config=_config("harmless"),
                            progress=False, trunk_cache=trunk)
    assert list(trunk.glob("*.safetensors")) == [cached] and cached.stat().st_mtime_ns == stamp
    weights = (tmp_path / "h" / "model.safetensors").stat().st_mtime_ns
    train_decoder_reference("helpful", tmp_path / "h", base_dir=base, pairs=pairs, config=_config("helpful"),
                            progress=False, trunk_cache=trunk)
    assert "reusing the trained helpful" in capsys.readouterr().err
    assert (tmp_path / "h" / "model.safetensors").stat().st_mtime_ns == weights


def test_a_damaged_trunk_cache_is_recomputed(tiny_model_dirs, minidata_dir, tmp_path):
    base, pairs, trunk = tiny_model_dirs["llama"], load_pairs("test", minidata_dir), tmp_path / "trunk"
    first = train_decoder_reference("helpful", tmp_path / "a", base_dir=base, pairs=pairs, config=_config("helpful"),
                                    progress=False, trunk_cache=trunk)
    (cached,) = list(trunk.glob("*.safetensors"))
    cached.write_bytes(b"not a safetensors file")
    second = train_decoder_reference("helpful", tmp_path / "b", base_dir=base, pairs=pairs,
                                     config=_config("helpful"), progress=False, trunk_cache=trunk)
    assert second["last_loss"] == first["last_loss"]      # same numbers from the recomputed trunk


def test_mixed_sees_exactly_the_examples_of_both_single_models(minidata_dir):
    pairs = load_pairs("test", minidata_dir)
    helpful, harmless = step_batches(pairs, "helpful", _config("helpful")), step_batches(pairs, "harmless", _config("harmless"))
    mixed = step_batches(pairs, "mixed", _config("mixed"))
    assert len(mixed) == len(helpful) == len(harmless) == 6
    assert all(m == h + s for m, h, s in zip(mixed, helpful, harmless))
    assert {p.objective for step in helpful for p in step} == {"helpful"}
    assert {p.objective for step in harmless for p in step} == {"harmless"}


def test_top_blocks_reject_an_impossible_count(tiny_model_dirs):
    model, *_ = load_base(tiny_model_dirs["llama"], seed=0)
    with pytest.raises(Exception, match="between 1 and 3"):
        TopBlocks(model, 4)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["train-reference", "--base", "smollm2-135m", "--base-dir", str(tmp_path / "missing"),
                 "--objective", "mixed", "--output", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip()
    assert "make smollm2" in err and len(err.splitlines()) == 1
    assert main(["train-reference", "--objective", "mixed", "--trained-blocks", "2",
                 "--output", str(tmp_path / "out")]) != 0
    assert "--base smollm2-135m" in capsys.readouterr().err
