"""What every model adapter provides to the engine and the probe (the plugin protocol)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, Union, runtime_checkable

import torch

from benchmark.records import ModelInfo

# A prompt is the user turn, or a list of {"role", "content"} turns ending with a user turn.
Prompt = Union[str, Sequence[dict]]


@dataclass(frozen=True)
class EncodedText:
    """One (prompt, response) text as token ids, unpadded, with the reward token's position."""
    input_ids: tuple[int, ...]
    reward_index: int
    truncated: bool = False
    token_type_ids: tuple[int, ...] | None = None


@dataclass
class Batch:
    """Right-padded tensors for one forward pass; `reward_positions` index t* in each row."""
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    reward_positions: torch.Tensor
    token_type_ids: torch.Tensor | None = None


@dataclass
class ProbeSites:
    """Where the probe hooks attach, found by one mechanism for every architecture."""
    blocks: list[torch.nn.Module]
    down_projections: list[torch.nn.Module]   # per block; the input is the MLP hidden units
    units_per_block: list[int]
    final: torch.nn.Module                    # output[0] is the hidden state the head reads
    hidden_size: int

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)


@runtime_checkable
class RewardAdapter(Protocol):
    """The interface a plugin implements (entry-point group `tension_bench.adapters`).

    - `encode` turns a (prompt, response) into token ids and declares the reward token t*;
    - `score_batch` returns one scalar reward per row of a right-padded batch;
    - `probe_sites` locates blocks, MLP down projections and the final hidden state for hooks;
    - `head` maps the final hidden state at t* to the reward (for the head-gradient statistic),
      or None where the reward is not a function of one hidden state (e.g. DPO log-ratios).
    """
    info: ModelInfo
    pad_token_id: int
    device: torch.device

    def encode(self, prompt: Prompt, response: str, max_length: int) -> EncodedText: ...

    def score_batch(self, batch: Batch) -> torch.Tensor: ...

    def probe_sites(self) -> ProbeSites: ...

    def head(self) -> "HeadFunction | None": ...


@dataclass
class HeadFunction:
    """The reward head as a function of h_L at t*, with the parameters it owns."""
    module: torch.nn.Module
    apply: object  # Callable[[nn.Module, torch.Tensor], torch.Tensor]: (module, h[B, H]) -> reward[B]
