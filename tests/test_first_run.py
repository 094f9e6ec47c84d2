"""A first run that cannot hurt or mislead (issue 18): output safety, no silent random heads, honest
partial runs, one actionable line for a broken model folder, and a command line that behaves in a pipe."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main

REPO = Path(__file__).resolve().parent.parent


def evaluate(model, data_dir, *extra):
    return main(["evaluate", "--model", str(model), "--data-dir", str(data_dir), "--quiet", "--no-probe",
                 "--batch-size", "8", *extra])


@pytest.fixture(scope="module")
def full_result(tmp_path_factory, tiny_model_dirs, minidata_dir):
    out = tmp_path_factory.mktemp("full") / "org__tiny-llama.json"
    assert evaluate(tiny_model_dirs["llama"], minidata_dir, "--model-id", "org/tiny-llama", "--output", str(out)) == 0
    return out


def test_a_symlink_or_device_output_is_refused_and_left_alone(tiny_model_dirs, minidata_dir, tmp_path, capsys):
    target = tmp_path / "real.json"
    target.write_text("keep me")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    for output in (link, Path("/dev/stdout")):
        assert evaluate(tiny_model_dirs["llama"], minidata_dir, "--output", str(output)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not a regular file" in err[0]
    assert link.is_symlink() and target.read_text() == "keep me"
    assert Path("/dev/stdout").is_symlink() or Path("/dev/stdout").is_char_device()


def test_output_dash_writes_the_json_to_stdout_and_the_summary_to_stderr(tiny_model_dirs, minidata_dir, capsys):
    assert evaluate(tiny_model_dirs["llama"], minidata_dir, "--model-id", "org/tiny-llama", "--output", "-") == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["model"]["id"] == "org/tiny-llama" and doc["benchmark"]["complete"] is True
    assert "balance" in captured.err


def test_a_causal_lm_without_kind_dpo_is_an_error_naming_the_flag(tmp_path, minidata_dir, capsys):
    from tests.tiny_models import byte_level_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = byte_level_tokenizer(["<s>", "</s>"])
    tok.eos_token = tok.pad_token = "</s>"
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    LlamaForCausalLM(config).save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    assert evaluate(tmp_path / "lm", minidata_dir, "--output", str(tmp_path / "x.json")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--kind dpo" in err[0]
    assert not (tmp_path / "x.json").exists()


def test_a_seeded_head_needs_the_flag_and_never_validates(tiny_model_dirs, minidata_dir, tmp_path, capsys):
    from transformers import AutoModel

    bare = tmp_path / "bare-bert"
    AutoModel.from_pretrained(tiny_model_dirs["bert"]).save_pretrained(bare)   # encoder without a head
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_model_dirs["bert"] / name).exists():
            shutil.copy(tiny_model_dirs["bert"] / name, bare / name)
    out = tmp_path / "org__bare.json"
    assert evaluate(bare, minidata_dir, "--model-id", "org/bare", "--output", str(out)) == 2
    assert "--seeded-head" in capsys.readouterr().err
    assert evaluate(bare, minidata_dir, "--model-id", "org/bare", "--output", str(out), "--seeded-head") == 0
    assert "SEEDED HEAD" in capsys.readouterr().out
    assert json.loads(out.read_text())["model"]["head"] == "seeded"
    assert main(["validate", str(out), "--data-dir", str(minidata_dir)]) == 1
    assert "seeded" in capsys.readouterr().out


def test_a_partial_run_is_labelled_and_never_replaces_a_full_one(full_result, tiny_model_dirs, minidata_dir,
                                                                  capsys, monkeypatch, tmp_path):
    before = full_result.read_text()
    assert evaluate(tiny_model_dirs["llama"], minidata_dir, "--model-id", "org/tiny-llama", "--limit", "3",
                    "--output", str(full_result)) == 2
    assert "--force" in capsys.readouterr().err
    assert full_result.read_text() == before
    # default output of a partial run: its own .partial.json file, labelled
    monkeypatch.chdir(tmp_path)
    assert evaluate(tiny_model_dirs["llama"], minidata_dir, "--model-id", "org/tiny-llama", "--limit", "3") == 0
    assert "PARTIAL RUN" in capsys.readouterr().out
    partial = tmp_path / "results" / "org__tiny-llama.partial.json"
    assert json.loads(partial.read_text())["benchmark"]["complete"] is False
    assert main(["validate", str(partial), "--data-dir", str(minidata_dir)]) == 1
    assert "partial" in capsys.readouterr().out


def test_a_no_probe_rerun_does_not_replace_a_probed_result_without_force(full_result, tiny_model_dirs,
                                                                          minidata_dir, tmp_path, capsys):
    probed = tmp_path / "org__tiny-llama.json"
    doc = json.loads(full_result.read_text())
    doc["probe"] = {"version": "stand-in: any probe block"}
    probed.write_text(json.dumps(doc))
    args = ("--model-id", "org/tiny-llama", "--output", str(probed))
    assert evaluate(tiny_model_dirs["llama"], minidata_dir, *args) == 2
    assert "--no-probe" in capsys.readouterr().err
    assert evaluate(tiny_model_dirs["llama"], minidata_dir, *args, "--force") == 0
    assert json.loads(probed.read_text())["probe"] is None


def test_validate_file_applies_the_ci_checks(full_result, minidata_dir, tmp_path, capsys):
    assert main(["validate", str(full_result), "--data-dir", str(minidata_dir)]) == 0
    renamed = tmp_path / "someone__else.json"
    shutil.copy(full_result, renamed)
    assert main(["validate", str(renamed), "--data-dir", str(minidata_dir)]) == 1
    assert "file name must be org__tiny-llama.json" in capsys.readouterr().out
    local = tmp_path / "local__x.json"
    doc = json.loads(full_result.read_text())
    doc["model"]["id"] = "local/x"
    local.write_text(json.dumps(doc))
    assert main(["validate", str(local), "--data-dir", str(minidata_dir)]) == 1
    assert "--model-id" in capsys.readouterr().out


def test_no_chat_template_is_said_once_and_shown_in_the_summary(tiny_model_dirs, minidata_dir, tmp_path, capsys):
    out = tmp_path / "org__tiny-gpt2.json"
    assert evaluate(tiny_model_dirs["gpt2"], minidata_dir, "--model-id", "org/tiny-gpt2", "--output", str(out)) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if "no chat template" in line]
    assert len(notes) == 1 and "plain text" in notes[0]
    assert "input: plain text" in captured.out
    assert json.loads(out.read_text())["model"]["input_format"] == "plain_text"


def test_a_missing_tokenizer_and_a_head_size_mismatch_are_one_actionable_line(tiny_model_dirs, minidata_dir,
                                                                              tmp_path, capsys):
    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model_dirs["llama"], no_tokenizer)
    for path in no_tokenizer.glob("*token*"):
        path.unlink()
    assert evaluate(no_tokenizer, minidata_dir, "--output", str(tmp_path / "a.json")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tokenizer" in err[0] and "save_pretrained" in err[0]

    mismatch = tmp_path / "mismatch"
    shutil.copytree(tiny_model_dirs["llama"], mismatch)
    config = json.loads((mismatch / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "a", "1": "b"}, {"a": 0, "b": 1}
    (mismatch / "config.json").write_text(json.dumps(config))
    assert evaluate(mismatch, minidata_dir, "--output", str(tmp_path / "b.json")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "num_labels" in err[0]


def run_cli(*args, pipe_to_head=False):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, "-m", "benchmark", *args]
    if pipe_to_head:
        shell = " ".join(map(repr, command)) + " | head -1"
        return subprocess.run(["bash", "-o", "pipefail", "-c", shell], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_piping_into_head_ends_quietly(full_result, minidata_dir):
    many = [str(full_result)] * 400    # enough output to outlast head's pipe buffer
    done = run_cli("validate", *many, "--data-dir", str(minidata_dir), pipe_to_head=True)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and done.stdout.strip().endswith("OK")


def test_version_and_bare_command():
    from benchmark import __version__

    assert run_cli("--version").stdout.strip() == f"tension-bench {__version__}"
    bare = run_cli()
    assert bare.returncode == 0 and "evaluate" in bare.stdout and "validate" in bare.stdout
