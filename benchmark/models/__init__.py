"""Model adapters: how a reward model turns (prompt, response) into one scalar, and where the
probe hooks attach. `load_adapter` picks one by `--kind`."""

from __future__ import annotations

from benchmark.errors import BenchmarkError
from benchmark.models.base import Batch, EncodedText, ModelInfo, ProbeSites, RewardAdapter
from benchmark.models.loading import NO_MODEL, resolve_device, resolve_dtype, resolve_source

__all__ = ["Batch", "EncodedText", "ModelInfo", "ProbeSites", "RewardAdapter", "load_adapter"]


def load_adapter(model: str, kind: str = "classifier", model_id: str | None = None,
                 revision: str | None = None, device: str = "auto", dtype: str = "auto",
                 trust_remote_code: bool = False, allow_pickle: bool = False,
                 attn_implementation: str | None = None, ref_model: str | None = None,
                 ref_free: bool = False, seed: int = 0, device_map: str | None = None,
                 seeded_head: bool = False) -> RewardAdapter:
    source = resolve_source(model, model_id, revision)
    if source.location == NO_MODEL and not kind.startswith("plugin:"):
        raise BenchmarkError(f"--model {NO_MODEL} is for plugins that score text without weights "
                             "(e.g. --kind plugin:baseline-random)")
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    common = dict(device=torch_device, dtype=torch_dtype, trust_remote_code=trust_remote_code,
                  allow_pickle=allow_pickle, attn_implementation=attn_implementation)
    if kind == "classifier":
        from benchmark.models.classifier import ClassifierAdapter

        if ref_model or ref_free:
            raise BenchmarkError("--ref-model and --ref-free only apply to --kind dpo")
        return ClassifierAdapter(source, head_seed=seed, device_map=device_map, seeded_head=seeded_head, **common)
    if device_map:
        raise BenchmarkError("--device-map is supported for --kind classifier; shard other kinds in their plugin")
    if kind == "dpo":
        from benchmark.models.dpo import DPOAdapter

        if ref_model and ref_free:
            raise BenchmarkError("--ref-model and --ref-free exclude each other; give one")
        if not ref_model and not ref_free:
            raise BenchmarkError("--kind dpo needs --ref-model REF (or --ref-free for the reference-free reward)")
        ref_source = None
        if ref_model:
            try:
                ref_source = resolve_source(ref_model)
            except BenchmarkError as exc:
                raise BenchmarkError(f"--ref-model: {exc}") from None
        return DPOAdapter(source, ref_source, **common)
    if kind.startswith("plugin:"):
        from benchmark.models.plugins import load_plugin

        if ref_model or ref_free:
            raise BenchmarkError("--ref-model and --ref-free only apply to --kind dpo")
        return load_plugin(kind.split(":", 1)[1], source, seed=seed, **common)
    raise BenchmarkError(f"unknown --kind {kind!r}; use classifier, dpo or plugin:NAME")
