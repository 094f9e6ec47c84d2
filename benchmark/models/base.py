"""What every model adapter provides to the engine and the probe (the plugin protocol)."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Annotated, Callable, Literal, Protocol, Sequence, Union, get_args, runtime_checkable

import torch

from benchmark.records import ModelInfo

# A prompt is the user turn, or a list of {"role", "content"} turns ending with a user turn.
Prompt = Union[str, Sequence[dict]]

# How t* is chosen: the last token (decoder classifiers), the first ([CLS] of encoders), or the last
# response token of a sequence whose reward sums over response tokens (DPO).
RewardToken = Literal["last", "first", "last_response"]
REWARD_TOKENS: tuple[str, ...] = get_args(RewardToken)


@dataclass(frozen=True)
class Check:
    """`Annotated` metadata on a protocol attribute: a condition beyond its type, and its adjective
    for the plugin error ("max_positions is not a positive int")."""
    holds: Callable[[object], bool]
    adjective: str


PositiveInt = Annotated[int, Check(lambda n: n >= 1, "positive")]


@dataclass(frozen=True)
class EncodedText:
    """One (prompt, response) text as token ids, unpadded, with the reward token's position.
    `token_type_ids` are the model's own segment ids (text-pair encoders) and are passed to it;
    `response_mask` (1 = response token) is for adapters whose reward sums over the response, and
    is never passed to the model."""
    input_ids: tuple[int, ...]
    reward_index: int
    truncated: bool = False
    token_type_ids: tuple[int, ...] | None = None
    response_mask: tuple[int, ...] | None = None


@dataclass
class Batch:
    """Right-padded tensors for one forward pass; `reward_positions` index t* in each row; the
    optional per-token fields are those of `EncodedText`, padded with 0."""
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    reward_positions: torch.Tensor
    token_type_ids: torch.Tensor | None = None
    response_mask: torch.Tensor | None = None


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

    - `reward_token` says how `encode` chooses t* (recorded in the probe block);
    - `max_positions` is the longest input the model takes (the default `--max-length` caps at it);
    - `encode` turns a (prompt, response) into token ids and declares the reward token t*;
    - `score_batch` returns one scalar reward per row of a right-padded batch;
    - `probe_sites` locates blocks, MLP down projections and the final hidden state for hooks;
    - `head` maps the final hidden state at t* to the reward (for the head-gradient statistic),
      or None where the reward is not a function of one hidden state (e.g. DPO log-ratios).

    `benchmark.models.plugins.adapter_problems` checks a plugin against the members declared here.
    """
    info: ModelInfo
    pad_token_id: int
    device: torch.device
    reward_token: RewardToken
    max_positions: PositiveInt

    def encode(self, prompt: Prompt, response: str, max_length: int) -> EncodedText: ...

    def score_batch(self, batch: Batch) -> torch.Tensor: ...

    def probe_sites(self) -> ProbeSites: ...

    def head(self) -> "HeadFunction | None": ...


def protocol_members(protocol: type) -> tuple[dict[str, object], tuple[str, ...]]:
    """The attributes (name → type, `Annotated` kept) and the methods a Protocol declares, in
    declaration order."""
    attributes = typing.get_type_hints(protocol, include_extras=True)
    methods = tuple(name for name, value in vars(protocol).items()
                    if callable(value) and not name.startswith("_"))
    return attributes, methods


@dataclass
class HeadFunction:
    """The reward head as a function of h_L at t*, with the parameters it owns."""
    module: torch.nn.Module
    apply: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]   # (module, h[B, H]) -> reward[B]
