"""Data-parallel evaluation: two CPU processes (gloo) produce the single-process document."""

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmark.cli import main
from tests.conftest import REPO


def test_two_process_run_equals_single_process(tiny_model_dirs, minidata_dir, tmp_path):
    model = tiny_model_dirs["qwen2"]
    # one thread per process in both runs: CPU matmuls then sum in the same order
    env = dict(os.environ, OMP_NUM_THREADS="1")
    single = tmp_path / "single" / "org__dp.json"
    proc = subprocess.run([sys.executable, "-m", "benchmark", "evaluate", "--model", str(model), "--model-id",
                           "org/dp", "--data-dir", str(minidata_dir), "--output", str(single), "--quiet",
                           "--no-resume", "--batch-size", "8", "--device", "cpu"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parallel = tmp_path / "parallel" / "org__dp.json"
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                           "--master_port", str(_free_port()), "-m", "benchmark", "evaluate", "--model", str(model),
                           "--model-id", "org/dp", "--data-dir", str(minidata_dir), "--output", str(parallel),
                           "--quiet", "--no-resume", "--batch-size", "8", "--cache-dir", str(tmp_path / "cache"),
                           "--device", "cpu"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = json.loads(single.read_text()), json.loads(parallel.read_text())
    assert b["run"]["processes"] == 2 and a["run"]["processes"] == 1
    for block in ("benchmark", "model", "items", "scores", "probe"):
        assert a[block] == b[block], block
    assert main(["validate", str(parallel), "--data-dir", str(minidata_dir)]) == 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

