"""`make bench`: our engine against a RewardBench-style loop on the same model and pairs.

Prints one JSON object: pairs/s for both (model load included), the speedup, the probe overhead
ratios, the achieved model FLOP rate against torch's dense matmul rate on this machine, and peak
memory at 1x and 4x the data. Not a test: targets are read off its output (README, "Performance").

    python benchmarks/bench.py [--model DIR] [--device cpu|cuda] [--dtype float32|bfloat16] [--skip-memory]
                               [--limit N] [--skip-probe]

`--limit N` takes the first N pairs of every subset (a 135M decoder over the whole split takes most of
an hour per pass on 2 CPU cores); `--skip-probe` leaves out the probe timings.

Memory: peak RSS of a whole evaluate (probe on) over the first quarter of every subset (1x) and over
the full test split (4x), each in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmark.data import load_pairs  # noqa: E402
from benchmark.engine import build_text_table, encode_texts, score_encoded  # noqa: E402
from benchmark.evaluate import EvaluateOptions, limit_pairs, run_evaluation  # noqa: E402
from benchmark.models import load_adapter  # noqa: E402
from benchmark.models.base import Batch  # noqa: E402
from benchmark.probe import ActivationCapture  # noqa: E402
from benchmark.probe_stats import is_select_prompt  # noqa: E402


def default_model() -> str:
    """The trained mixed MiniLM reference (`make bench` and `make demo` train it); the packaged
    MiniLM has no reward head, so there is nothing to fall back to."""
    trained = REPO / ".cache" / "reference" / "mixed-s0"
    if not (trained / "model.safetensors").is_file():
        sys.exit(f"bench: no trained model in {trained}; run `make bench` (it trains it) or pass --model DIR")
    return str(trained)


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int = 2048, repeat: int = 10) -> float:
    """Dense matmul FLOP/s torch reaches here: best of `repeat` n×n products."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeat + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def model_flops(model, lengths) -> float:
    """Forward FLOPs: 2·N·T for the dense weights (N = non-embedding parameters) plus attention's
    QKᵀ and AV, 4·L·T²·d per text of T real tokens (padding not counted)."""
    config = model.config
    layers, hidden = config.num_hidden_layers, config.hidden_size
    embedding = sum(p.numel() for n, p in model.named_parameters() if "embed" in n)
    dense = sum(p.numel() for p in model.parameters()) - embedding
    lengths = np.asarray(lengths, dtype=np.float64)
    return float((2 * dense * lengths + 4 * layers * hidden * lengths ** 2).sum())


def rewardbench_loop(model_path: str, pairs, device: str, dtype: str, batch_size: int = 64):
    """The peer's runner: dataset order, fixed batches padded to their longest text, chosen and
    rejected in separate passes, model load included."""
    start = time.perf_counter()
    adapter = load_adapter(model_path, device=device, dtype=dtype)
    enc = adapter.encoder
    rewards = {}
    padded_tokens = 0
    with torch.inference_mode():
        for side in ("chosen", "rejected"):
            for lo in range(0, len(pairs), batch_size):
                chunk = pairs[lo:lo + batch_size]
                ids = [enc.encode(p.prompt, getattr(p, side), 512) for p in chunk]
                width = max(len(e.input_ids) for e in ids)
                input_ids = torch.full((len(ids), width), adapter.pad_token_id)
                mask = torch.zeros((len(ids), width), dtype=torch.long)
                types = torch.zeros((len(ids), width), dtype=torch.long) if ids[0].token_type_ids else None
                for row, e in enumerate(ids):
                    input_ids[row, :len(e.input_ids)] = torch.tensor(e.input_ids)
                    mask[row, :len(e.input_ids)] = 1
                    if types is not None:
                        types[row, :len(e.input_ids)] = torch.tensor(e.token_type_ids)
                padded_tokens += mask.numel()
                batch = Batch(input_ids.to(adapter.device), mask.to(adapter.device),
                              torch.tensor([e.reward_index for e in ids], device=adapter.device),
                              types.to(adapter.device) if types is not None else None)
                values = adapter.score_batch(batch).float().cpu().numpy()
                for p, v in zip(chunk, values):
                    rewards.setdefault(p.id, {})[side] = float(v)
    if adapter.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, rewards, padded_tokens


def timed_evaluation(model_path, device, dtype, probe: bool, out: Path, limit: int | None = None):
    start = time.perf_counter()
    doc, _ = run_evaluation(EvaluateOptions(model=model_path, model_id="bench/model", device=device, dtype=dtype,
                                            probe=probe, output=out, progress=False, resume=False, limit=limit,
                                            force=True))
    return time.perf_counter() - start, doc


def scoring_overhead(model_path, pairs, device, dtype, repeat=1, hooks=True):
    adapter = load_adapter(model_path, device=device, dtype=dtype)
    table = build_text_table(pairs)
    encoded = encode_texts(adapter, table.texts, min(adapter.max_positions, 4096))
    plain, hooked = [], []
    for _ in range(repeat):
        result = score_encoded(adapter, encoded, "auto", progress=False)
        plain.append(result.seconds)
        if hooks:
            capture = ActivationCapture(adapter.probe_sites(), [len(e.input_ids) for e in encoded],
                                        [is_select_prompt(prompt) for prompt, _ in table.texts])
            hooked.append(score_encoded(adapter, encoded, "auto", observer=capture, progress=False).seconds)
            capture.discard()
    lengths = [len(e.input_ids) for e in encoded]
    return min(plain), (min(hooked) if hooked else None), model_flops(adapter.model, lengths), result


def write_quarter_data(folder: Path) -> Path:
    """The first quarter of every subset file (ids sorted, so twins and borderline siblings stay
    together): the 1x set whose 4x is the full test split."""
    target = folder / "test"
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted((REPO / "benchmark" / "data" / "test").glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        (target / path.name).write_text("".join(lines[: len(lines) // 4]), encoding="utf-8")
    return folder


def peak_memory_mb(model_path, data_dir: Path | None, device, dtype, out_dir: Path) -> float:
    """Peak resident memory (MB) of a whole evaluate (probe on) in a fresh process."""
    code = (
        "import resource, sys; sys.path.insert(0, %r)\n"
        "from pathlib import Path\n"
        "from benchmark.evaluate import EvaluateOptions, run_evaluation\n"
        "run_evaluation(EvaluateOptions(model=%r, model_id='bench/model', device=%r, dtype=%r, progress=False,"
        " resume=False, data_dir=%s, output=Path(%r)))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    ) % (str(REPO), model_path, device, dtype, f"Path({str(data_dir)!r})" if data_dir else "None",
         str(out_dir / "bench__model.json"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=dict(os.environ, TQDM_DISABLE="1"))
    return int(proc.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="a reward model folder (default: the trained mixed MiniLM reference)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--limit", type=int, help="the first N pairs of every subset")
    parser.add_argument("--skip-probe", action="store_true", help="no probe timings")
    args = parser.parse_args()
    args.model = args.model or default_model()
    os.environ.setdefault("TQDM_DISABLE", "1")
    from benchmark.cli import _quiet_libraries

    _quiet_libraries()
    pairs = limit_pairs(load_pairs("test"), args.limit)
    device = torch.device(args.device)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    peak = matmul_rate(device, torch_dtype)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base_seconds, base_rewards, base_padded = rewardbench_loop(args.model, pairs, args.device, args.dtype)
        ours_seconds, doc = timed_evaluation(args.model, args.device, args.dtype, False, tmp / "a.json", args.limit)
        probe_seconds = None
        if not args.skip_probe:
            probe_seconds, _ = timed_evaluation(args.model, args.device, args.dtype, True, tmp / "b.json", args.limit)
        plain, hooked, flops, result = scoring_overhead(args.model, pairs, args.device, args.dtype,
                                                        hooks=not args.skip_probe)
        ours = {i["id"]: (i["chosen"], i["rejected"]) for i in doc["items"]}
        max_diff = max(max(abs(ours[k][0] - v["chosen"]), abs(ours[k][1] - v["rejected"])) for k, v in base_rewards.items())
        memory = {}
        if not args.skip_memory:
            memory["1x"] = round(peak_memory_mb(args.model, write_quarter_data(tmp / "quarter"), args.device,
                                                args.dtype, tmp / "m1"), 1)
            memory["4x"] = round(peak_memory_mb(args.model, None, args.device, args.dtype, tmp / "m4"), 1)
    report = {
        "model": args.model, "device": args.device, "dtype": args.dtype, "threads": torch.get_num_threads(),
        "pairs": len(pairs), "texts": len(result.rewards),
        "baseline_pairs_per_s": round(len(pairs) / base_seconds, 2),
        "ours_pairs_per_s": round(len(pairs) / ours_seconds, 2),
        "speedup": round(base_seconds / ours_seconds, 2),
        "baseline_padded_tokens": base_padded, "ours_padded_tokens": result.padded_tokens, "real_tokens": result.tokens,
        "probe_hooks_overhead": round(hooked / plain, 3) if hooked is not None else None,
        "evaluate_probe_vs_no_probe": round(probe_seconds / ours_seconds, 3) if probe_seconds is not None else None,
        "model_gflop": round(flops / 1e9, 1),
        "achieved_gflops": round(flops / plain / 1e9, 1),
        "peak_matmul_gflops": round(peak / 1e9, 1),
        "flop_utilisation": round(flops / plain / peak, 3),
        "peak_memory_mb": memory,
        "memory_growth_4x": round(memory["4x"] / memory["1x"] - 1, 3) if memory else None,
        "max_reward_diff_vs_baseline": max_diff,
        "seconds": {"baseline": round(base_seconds, 2), "ours_no_probe": round(ours_seconds, 2),
                    "ours_probe": round(probe_seconds, 2) if probe_seconds is not None else None,
                    "scoring_plain": round(plain, 2),
                    "scoring_hooked": round(hooked, 2) if hooked is not None else None},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
