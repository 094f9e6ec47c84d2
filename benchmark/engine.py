"""Scoring engine: every distinct (prompt, response) text scored once, in length-sorted,
right-padded batches under `torch.inference_mode`, with optional activation hooks riding along."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmark.data import Pair
from benchmark.errors import BenchmarkError
from benchmark.models.base import Batch, EncodedText, Prompt, RewardAdapter

AUTO_TOKEN_BUDGET = {"cpu": 16384, "cuda": 131072}
AUTO_MAX_ROWS = 256


class BatchObserver(Protocol):
    """Something that rides along a forward pass (the probe's activation capture)."""

    def begin_batch(self, text_indices: np.ndarray, positions: torch.Tensor) -> None: ...

    def end_batch(self) -> None: ...

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The stores a checkpoint must flush before it records a finished batch."""
        ...


@dataclass
class TextTable:
    """The distinct texts of a run and, per pair, which texts are its chosen and rejected."""
    texts: list[tuple[Prompt, str]]
    chosen_index: np.ndarray
    rejected_index: np.ndarray


@dataclass
class ScoreResult:
    rewards: np.ndarray                    # one float64 per distinct text
    truncated: int                         # texts whose prompt (or response) was cut
    tokens: int                            # real (unpadded) tokens scored
    padded_tokens: int
    seconds: float
    nan_texts: list[int] = field(default_factory=list)
    oom_retries: int = 0
    resumed_texts: int = 0


def _prompt_key(prompt: Prompt):
    return prompt if isinstance(prompt, str) else tuple((t["role"], t["content"]) for t in prompt)


def build_text_table(pairs: Sequence[Pair]) -> TextTable:
    index: dict[tuple, int] = {}
    texts: list[tuple[Prompt, str]] = []
    chosen, rejected = [], []
    for pair in pairs:
        for response, out in ((pair.chosen, chosen), (pair.rejected, rejected)):
            key = (_prompt_key(pair.prompt), response)
            if key not in index:
                index[key] = len(texts)
                texts.append((pair.prompt, response))
            out.append(index[key])
    return TextTable(texts, np.asarray(chosen, dtype=np.int64), np.asarray(rejected, dtype=np.int64))


def plan_batches(lengths: Sequence[int], batch_size: int | str, device: torch.device) -> list[np.ndarray]:
    """Length-sorted batches (longest first, so a memory problem shows at once). A number is rows
    per batch; "auto" fills a padded-token budget."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    if batch_size != "auto":
        size = int(batch_size)
        return [order[i:i + size] for i in range(0, len(order), size)]
    budget = AUTO_TOKEN_BUDGET["cuda" if device.type == "cuda" else "cpu"]
    batches, start = [], 0
    while start < len(order):
        longest = lengths[order[start]]
        rows = max(1, min(AUTO_MAX_ROWS, budget // max(1, longest)))
        batches.append(order[start:start + rows])
        start += rows
    return batches


def collate(encoded: Sequence[EncodedText], pad_token_id: int, device: torch.device) -> Batch:
    width = max(len(e.input_ids) for e in encoded)
    input_ids = torch.full((len(encoded), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, enc in enumerate(encoded):
        n = len(enc.input_ids)
        input_ids[row, :n] = torch.tensor(enc.input_ids)
        mask[row, :n] = 1
    positions = torch.tensor([e.reward_index for e in encoded], dtype=torch.long)
    return Batch(input_ids.to(device), mask.to(device), positions.to(device),
                 token_type_ids=_padded(encoded, "token_type_ids", width, device),
                 response_mask=_padded(encoded, "response_mask", width, device))


def _padded(encoded: Sequence[EncodedText], field: str, width: int, device: torch.device) -> torch.Tensor | None:
    """A per-token field of the encoded texts right-padded with 0 (None where the texts lack it)."""
    if getattr(encoded[0], field) is None:
        return None
    values = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, enc in enumerate(encoded):
        values[row, :len(enc.input_ids)] = torch.tensor(getattr(enc, field))
    return values.to(device)


def encode_texts(adapter: RewardAdapter, texts: Sequence[tuple[Prompt, str]], max_length: int) -> list[EncodedText]:
    return [adapter.encode(prompt, response, max_length) for prompt, response in texts]


def _is_cpu_oom(exc: RuntimeError) -> bool:
    text = str(exc)
    return "DefaultCPUAllocator" in text or "not enough memory" in text or "can't allocate memory" in text


def score_encoded(adapter: RewardAdapter, encoded: Sequence[EncodedText], batch_size: int | str = "auto",
                  observer: BatchObserver | None = None, progress: bool = True, desc: str = "scoring",
                  checkpoint=None, shard: tuple[int, int] = (0, 1)) -> ScoreResult:
    """Rewards for encoded texts. The batch plan depends only on the texts and the batch size, so
    a resumed run (`checkpoint`, a RunCache) skips finished batches and redoes the rest exactly.
    On CUDA out-of-memory a batch is halved and retried (counted in `oom_retries`)."""
    start = time.perf_counter()
    rewards = np.full(len(encoded), np.nan, dtype=np.float64)
    lengths = [len(e.input_ids) for e in encoded]
    batches = plan_batches(lengths, batch_size, adapter.device) if encoded else []
    if checkpoint is not None:
        rewards[:] = checkpoint.rewards
    rank, world = shard     # data parallel: this process takes every world-th batch
    todo = [(i, b) for i, b in enumerate(batches)
            if i % world == rank and (checkpoint is None or not checkpoint.is_done(i))]
    tokens = padded = oom_retries = 0
    mine = sum(len(b) for i, b in enumerate(batches) if i % world == rank)
    bar = tqdm(total=mine, initial=mine - sum(len(b) for _, b in todo), desc=desc, unit="text",
               disable=not progress, file=sys.stderr, leave=False)

    def run(indices: np.ndarray) -> np.ndarray:
        nonlocal tokens, padded, oom_retries
        batch = collate([encoded[i] for i in indices], adapter.pad_token_id, adapter.device)
        try:
            if observer is not None:
                observer.begin_batch(indices, batch.reward_positions)
            try:
                values = adapter.score_batch(batch)
            finally:
                if observer is not None:
                    observer.end_batch()
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(indices) == 1:
                raise BenchmarkError("out of GPU memory on a single text; lower --max-length or use a bigger GPU") from None
            oom_retries += 1
            half = len(indices) // 2
            return np.concatenate([run(indices[:half]), run(indices[half:])])
        except RuntimeError as exc:
            if _is_cpu_oom(exc):
                raise BenchmarkError(f"out of CPU memory on a batch of {len(indices)} texts; "
                                     "rerun with a smaller --batch-size") from None
            raise
        tokens += int(batch.attention_mask.sum())
        padded += batch.attention_mask.numel()
        return values.detach().to(torch.float64).cpu().numpy()

    try:
        for batch_index, indices in todo:
            values = run(indices)
            rewards[indices] = values
            if checkpoint is not None:
                checkpoint.record(batch_index, indices, values,
                                  flush=observer.arrays() if observer is not None else ())
            bar.update(len(indices))
    finally:
        bar.close()
    return ScoreResult(rewards, sum(e.truncated for e in encoded), tokens, padded, time.perf_counter() - start,
                       nan_texts=[int(i) for i in np.flatnonzero(np.isnan(rewards))], oom_retries=oom_retries,
                       resumed_texts=mine - sum(len(b) for _, b in todo))


def rewards_by_pair(pairs: Sequence[Pair], table: TextTable, text_rewards: np.ndarray) -> dict[str, tuple[float, float]]:
    return {p.id: (float(text_rewards[c]), float(text_rewards[r]))
            for p, c, r in zip(pairs, table.chosen_index, table.rejected_index)}


@dataclass
class PairScores:
    """Both rewards of each pair, keyed by pair id, and the ids of pairs with a cut text."""
    rewards: dict[str, tuple[float, float]]
    truncated: set[str]


def score_pairs(adapter: RewardAdapter, pairs: Sequence[Pair], max_length: int, batch_size: int | str = "auto",
                progress: bool = True, desc: str = "scoring", nan_message: str | None = None) -> PairScores:
    """table → encode → score → rewards per pair, every distinct text once: the whole scoring
    sequence for callers without evaluate's run cache, data parallelism or probe hooks (anchors,
    verify). A NaN reward raises `nan_message` (when given) before anything is used."""
    if len({p.id for p in pairs}) != len(pairs):   # rewards are keyed by id: a clash would mix pairs up
        raise BenchmarkError("internal error: two pairs share an id")
    table = build_text_table(pairs)
    encoded = encode_texts(adapter, table.texts, max_length)
    result = score_encoded(adapter, encoded, batch_size, progress=progress, desc=desc)
    if result.nan_texts and nan_message is not None:
        raise BenchmarkError(nan_message.format(n=len(result.nan_texts)))
    truncated = {p.id for p, c, r in zip(pairs, table.chosen_index, table.rejected_index)
                 if encoded[c].truncated or encoded[r].truncated}
    return PairScores(rewards_by_pair(pairs, table, result.rewards), truncated)
