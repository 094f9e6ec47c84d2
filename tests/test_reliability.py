"""Evaluation runs that survive kills, broken models and unsafe checkpoints."""

import json
import signal
import subprocess
import sys
import time

import torch

from tests import tiny_models
from tests.conftest import REPO
from tests.minidata import write_minidata


def _evaluate_cmd(model, data, out, cache, *extra):
    return [sys.executable, "-m", "benchmark", "evaluate", "--model", str(model), "--model-id", "org/resume",
            "--data-dir", str(data), "--output", str(out), "--cache-dir", str(cache), "--batch-size", "1",
            "--quiet", *extra]


def test_killed_run_resumes_and_matches_an_uninterrupted_run(tiny_model_dirs, tmp_path):
    data = write_minidata(tmp_path / "data", n=120)
    model = tiny_model_dirs["llama"]
    cache = tmp_path / "cache"
    out = tmp_path / "org__resume.json"
    proc = subprocess.Popen(_evaluate_cmd(model, data, out, cache), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 240
    killed_after = None
    while time.time() < deadline and proc.poll() is None:
        logs = list(cache.glob("*/progress.log"))
        if logs and len(logs[0].read_text().splitlines()) >= 40:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_after = len(logs[0].read_text().splitlines())
            break
        time.sleep(0.01)
    assert killed_after is not None, f"the run ended before it could be killed: {proc.stderr.read()[-500:]}"
    assert not out.exists()                              # nothing half-written
    resumed = subprocess.run(_evaluate_cmd(model, data, out, cache), cwd=REPO, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    doc = json.loads(out.read_text())
    # at most one batch (one text at batch size 1) was lost: everything logged was reused
    assert doc["run"]["resumed_texts"] >= killed_after
    assert not any(cache.iterdir())                      # the run cache is cleared after success
    fresh_out = tmp_path / "fresh" / "org__resume.json"
    fresh = subprocess.run(_evaluate_cmd(model, data, fresh_out, tmp_path / "cache2", "--no-resume"), cwd=REPO,
                           capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    reference = json.loads(fresh_out.read_text())
    for block in ("items", "scores", "probe", "benchmark"):
        assert doc[block] == reference[block], block


def test_nan_rewards_fail_clearly_and_write_nothing(tmp_path, minidata_dir):
    path = tiny_models.build("qwen2", tmp_path / "nan-model")
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path)
    with torch.no_grad():
        model.score.weight.fill_(float("nan"))
    model.save_pretrained(path)
    out = tmp_path / "org__nan.json"
    proc = subprocess.run([sys.executable, "-m", "benchmark", "evaluate", "--model", str(path), "--data-dir",
                           str(minidata_dir), "--output", str(out), "--quiet", "--no-probe", "--no-resume"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "NaN reward" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_pickle_checkpoints_need_allow_pickle(tmp_path, minidata_dir):
    path = tiny_models.build("gpt2", tmp_path / "pickled")
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path)
    (path / "model.safetensors").unlink()
    torch.save(model.state_dict(), path / "pytorch_model.bin")
    out = tmp_path / "org__pickled.json"
    args = [sys.executable, "-m", "benchmark", "evaluate", "--model", str(path), "--model-id", "org/pickled",
            "--data-dir", str(minidata_dir), "--output", str(out), "--quiet", "--no-probe", "--no-resume"]
    refused = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "--allow-pickle" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    allowed = subprocess.run(args + ["--allow-pickle"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert allowed.returncode == 0, allowed.stderr[-1500:]
    assert json.loads(out.read_text())["run"]["allow_pickle"] is True


def test_remote_code_needs_trust_remote_code(tmp_path, minidata_dir):
    path = tiny_models.build("bert", tmp_path / "custom")
    marker = tmp_path / "code-ran"
    (path / "modeling_custom.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import BertForSequenceClassification as CustomModel\n")
    config = json.loads((path / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_custom.CustomModel"}
    (path / "config.json").write_text(json.dumps(config))
    proc = subprocess.run([sys.executable, "-m", "benchmark", "evaluate", "--model", str(path), "--data-dir",
                           str(minidata_dir), "--output", str(tmp_path / "x__y.json"), "--quiet", "--no-resume"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert not marker.exists(), "repo code ran without --trust-remote-code"
    if proc.returncode != 0:
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    else:  # transformers ignored auto_map and used the built-in class: still no foreign code ran
        assert json.loads((tmp_path / "x__y.json").read_text())["run"]["trust_remote_code"] is False


def test_empty_responses_are_scored_and_counted(tmp_path, tiny_model_dirs):
    data = write_minidata(tmp_path / "data")
    rows = [json.loads(line) for line in (data / "test" / "helpful_quality.jsonl").read_text().splitlines()]
    # the item schema forbids empty responses, so feed one through the engine directly
    from benchmark.engine import encode_texts, score_encoded
    from benchmark.models import load_adapter

    adapter = load_adapter(str(tiny_model_dirs["llama"]), device="cpu")
    encoded = encode_texts(adapter, [(rows[0]["prompt"], ""), (rows[0]["prompt"], "x")], 64)
    result = score_encoded(adapter, encoded, 2, progress=False)
    assert len(result.nan_texts) == 0 and result.rewards.shape == (2,)
