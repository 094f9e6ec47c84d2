"""Example plugin `multi-objective`: a sequence classifier with K outputs (say helpfulness and
harmlessness) combined by a fixed weight vector into one reward, r = Σ_k w_k · logit_k.

The weights come from `tension_bench_weights.json` in the model folder (or Hub repo), e.g.
{"weights": [0.7, 0.3]}; without that file every output weighs 1/K. Registered as
`multi-objective = "benchmark.plugins.multi_objective:load"` (group `tension_bench.adapters`).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

from benchmark.errors import BenchmarkError
from benchmark.models.base import Batch, HeadFunction
from benchmark.models.classifier import SequenceClassifierBase
from benchmark.models.loading import ModelSource, is_sequence_classifier, load_config_and_tokenizer, load_model

WEIGHTS_FILE = "tension_bench_weights.json"


def parse_weights(text: str, n_outputs: int, where: str) -> list[float]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BenchmarkError(f"{where} is not valid JSON: {exc}") from None
    weights = data.get("weights") if isinstance(data, dict) else None
    if not isinstance(weights, list) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) for w in weights):
        raise BenchmarkError(f'{where} must hold {{"weights": [...]}}, a list of {n_outputs} finite numbers')
    if len(weights) != n_outputs:
        raise BenchmarkError(f"{where} has {len(weights)} weights but the model has {n_outputs} outputs")
    return [float(w) for w in weights]


def read_weights(source: ModelSource, n_outputs: int) -> list[float]:
    """The weight vector from the model's folder or repo; equal weights when it ships none."""
    text = None
    if source.local:
        path = Path(source.location) / WEIGHTS_FILE
        if path.is_file():
            text = path.read_text(encoding="utf-8")
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            text = Path(hf_hub_download(source.location, WEIGHTS_FILE, revision=source.revision)).read_text(
                encoding="utf-8")
        except EntryNotFoundError:   # also: offline and never downloaded
            text = None
        except Exception as exc:
            raise BenchmarkError(f"cannot fetch {WEIGHTS_FILE} of {source.model_id}: {exc}") from None
    if text is None:
        print(f"note: {source.model_id} ships no {WEIGHTS_FILE}; its {n_outputs} outputs weigh 1/{n_outputs} each",
              file=sys.stderr)
        return [1.0 / n_outputs] * n_outputs
    return parse_weights(text, n_outputs, f"{source.model_id}/{WEIGHTS_FILE}")


class WeightedHead(torch.nn.Module):
    """logits(h) · w: the K-output head as one scalar reward of h_L at t*."""

    def __init__(self, logits: torch.nn.Module, weights: torch.Tensor):
        super().__init__()
        self.logits = logits
        self.register_buffer("weights", weights)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.logits(hidden).to(self.weights.dtype) @ self.weights


class MultiObjectiveAdapter(SequenceClassifierBase):
    """Like ClassifierAdapter (which insists on one output), with a weighted K-output head."""

    def __init__(self, source: ModelSource, device: torch.device, dtype: torch.dtype,
                 trust_remote_code: bool = False, allow_pickle: bool = False,
                 attn_implementation: str | None = None):
        from transformers import AutoModelForSequenceClassification

        config, tokenizer = load_config_and_tokenizer(source, trust_remote_code, allow_pickle)
        if not is_sequence_classifier(config):
            raise BenchmarkError(f"{source.model_id} has no classification head; the multi-objective plugin "
                                 "needs a trained K-output sequence classifier")
        model = load_model(AutoModelForSequenceClassification, source, config, dtype=dtype,
                           trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                           attn_implementation=attn_implementation)
        model.eval().to(device)
        self.weights = torch.tensor(read_weights(source, model.config.num_labels), dtype=torch.float32,
                                    device=device)
        super().__init__(source, model, tokenizer, device)
        self.weighted_head = WeightedHead(self.output_head(), self.weights)
        self.info = self.provenance(source, dtype, kind="plugin:multi-objective",
                                    architecture=config.architectures[0])

    @torch.inference_mode()
    def score_batch(self, batch: Batch) -> torch.Tensor:
        return self.head_outputs(batch).to(self.weights.dtype) @ self.weights

    def head(self) -> HeadFunction:
        return HeadFunction(module=self.weighted_head, apply=_apply_module)


def _apply_module(module: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    return module(hidden)


def load(source: ModelSource, *, device: torch.device, dtype: torch.dtype, trust_remote_code: bool = False,
         allow_pickle: bool = False, attn_implementation: str | None = None, seed: int = 0) -> MultiObjectiveAdapter:
    """The plugin factory (`--kind plugin:multi-objective`); `seed` is unused: nothing is random."""
    return MultiObjectiveAdapter(source, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                                 allow_pickle=allow_pickle, attn_implementation=attn_implementation)
