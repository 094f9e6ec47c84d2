"""Locate the probe's hook sites in any transformer by structure, not by architecture name:
blocks are the largest ModuleList of identical modules; an MLP's down projection is the one
linear map in a block that takes a wider input back to the hidden size."""

from __future__ import annotations

import torch

from benchmark.errors import BenchmarkError
from benchmark.models.base import ProbeSites


def _linear_shape(module: torch.nn.Module) -> tuple[int, int] | None:
    """(in_features, out_features) for nn.Linear and GPT-2's Conv1D (weight stored in × out)."""
    if isinstance(module, torch.nn.Linear):
        return module.in_features, module.out_features
    if type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None:
        rows, cols = module.weight.shape
        return rows, cols
    return None


def hidden_size_of(config) -> int:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("hidden_size", "n_embd", "d_model", "dim"):
        value = getattr(text, name, None)
        if isinstance(value, int):
            return value
    raise BenchmarkError(f"{type(config).__name__} names no hidden size (looked for hidden_size, n_embd, d_model, dim)")


def locate_probe_sites(model: torch.nn.Module) -> ProbeSites:
    base = getattr(model, "base_model", model)
    hidden = hidden_size_of(model.config)
    lists = []
    for name, module in base.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0 and len({type(m) for m in module}) == 1:
            size = sum(p.numel() for p in module.parameters())
            lists.append((size, name, module))
    if not lists:
        raise BenchmarkError(
            f"probe: cannot locate the transformer blocks of {type(model).__name__} "
            "(looked for a ModuleList of identical blocks); rerun with --no-probe")
    _, block_path, blocks = max(lists, key=lambda entry: entry[0])
    down_projections, units = [], []
    for index, block in enumerate(blocks):
        found = []
        for name, module in block.named_modules():
            shape = _linear_shape(module)
            if shape is not None and shape[0] > hidden and shape[1] == hidden:
                found.append((name, module, shape[0]))
        if len(found) != 1:
            names = ", ".join(name for name, _, _ in found) or "none"
            raise BenchmarkError(
                f"probe: block {block_path}.{index} of {type(model).__name__} has {len(found)} MLP down "
                f"projections (looked for one linear map from a width above {hidden} to {hidden}; "
                f"found: {names}); rerun with --no-probe")
        down_projections.append(found[0][1])
        units.append(found[0][2])
    return ProbeSites(blocks=list(blocks), down_projections=down_projections, units_per_block=units,
                      final=base, hidden_size=hidden)
