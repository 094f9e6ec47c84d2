"""A built wheel carries what the package needs (schemas, prompt sets, the app): installed on its
own, away from the repository, it validates the shipped submissions and prints the board."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    """The package built as a wheel and unpacked into a bare folder (dependencies come from the
    test environment; the package itself only from the wheel)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\n")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(root / "dist"), str(source)], check=True, capture_output=True)
    wheel = next((root / "dist").glob("tension_bench-*.whl"))
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    return target


def run_from_wheel(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import benchmark; "
            "assert benchmark.__file__.startswith(sys.argv[1]), benchmark.__file__; "
            "from benchmark.cli import main; sys.exit(main(sys.argv[2:]))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code, str(target), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_wheel_carries_schemas_prompt_sets_and_the_app(installed_wheel):
    package = installed_wheel / "benchmark"
    assert (package / "schemas" / "results.schema.json").is_file()
    assert (package / "schemas" / "prompt_item.schema.json").is_file()
    assert sorted(p.name for p in (package / "data" / "test").glob("*.jsonl")) == [
        "borderline.jsonl", "comply_benign.jsonl", "harmless_quality.jsonl", "helpful_quality.jsonl",
        "refuse_harmful.jsonl"]
    assert (installed_wheel / "leaderboard_app" / "app.py").is_file()


def test_a_wheel_install_validates_the_submissions(installed_wheel, tmp_path):
    shutil.copytree(REPO / "submissions", tmp_path / "submissions")
    done = run_from_wheel(installed_wheel, tmp_path, "validate", "submissions/")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == len(list((tmp_path / "submissions").glob("*.json")))
    board = run_from_wheel(installed_wheel, tmp_path, "leaderboard", "--submissions", "submissions", "--format", "csv")
    assert board.returncode == 0, board.stderr
    assert "tension-bench/reference-mixed" in board.stdout
