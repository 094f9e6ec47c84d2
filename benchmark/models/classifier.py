"""Sequence-classifier reward models (AutoModelForSequenceClassification with a scalar head)."""

from __future__ import annotations

import sys

import torch

from benchmark.errors import BenchmarkError
from benchmark.models.base import Batch, EncodedText, HeadFunction, ModelInfo, Prompt, ProbeSites
from benchmark.models.loading import (ModelSource, ensure_pad_token, load_config_and_tokenizer, load_model,
                                      template_sha256)
from benchmark.models.sites import locate_probe_sites
from benchmark.models.text import ConversationEncoder


def _apply_score(module: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    return module(hidden)[:, 0]


class _EncoderHead(torch.nn.Module):
    """An encoder classifier's head (pooler if any, then classifier) as a function of h_L at t*."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        base = model.base_model
        self.pooler = getattr(model, "pooler", None) or getattr(base, "pooler", None)
        self.classifier = model.classifier

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        sequence = hidden[:, None, :]
        if self.pooler is not None:
            return self.classifier(self.pooler(sequence))[:, 0]
        try:  # RoBERTa-style heads read features[:, 0] themselves
            return self.classifier(sequence)[:, 0]
        except (RuntimeError, IndexError):
            return self.classifier(hidden)[:, 0]


CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def check_seeded_head_allowed(model_id: str, config, seeded_head: bool) -> None:
    """A checkpoint without a reward head would be scored by a random head: refuse unless asked."""
    architectures = config.architectures or []
    if any(a.endswith(CAUSAL_LM_SUFFIXES) for a in architectures):
        raise BenchmarkError(f"{model_id} is a language model ({architectures[0]}) with no reward head; score it as a "
                             "DPO policy with --kind dpo --ref-model REF (or --ref-free)")
    if not seeded_head:
        shown = architectures[0] if architectures else config.model_type
        raise BenchmarkError(f"{model_id} ({shown}) has no reward head (no ...ForSequenceClassification); pass a "
                             "reward model, or --seeded-head to exercise the pipeline with a random head")


class ClassifierAdapter:
    kind = "classifier"

    def __init__(self, source: ModelSource, device: torch.device, dtype: torch.dtype,
                 trust_remote_code: bool = False, allow_pickle: bool = False, head_seed: int = 0,
                 attn_implementation: str | None = None, device_map: str | None = None,
                 seeded_head: bool = False):
        from transformers import AutoModelForSequenceClassification

        config, tokenizer = load_config_and_tokenizer(source, trust_remote_code, allow_pickle)
        has_head = any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
        if not has_head:
            check_seeded_head_allowed(source.model_id, config, seeded_head)
            config.num_labels = 1
            print(f"note: {source.model_id} has no reward head; initialised a scalar head with seed "
                  f"{head_seed} (its scores only exercise the pipeline)", file=sys.stderr)
        with torch.random.fork_rng(devices=[]):   # seed the new head without touching the caller's RNG
            torch.manual_seed(head_seed)
            model = load_model(AutoModelForSequenceClassification, source, config, dtype=dtype,
                               trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                               attn_implementation=attn_implementation, device_map=device_map)
        if model.config.num_labels != 1:
            raise BenchmarkError(f"{source.model_id} has {model.config.num_labels} outputs; a reward model needs "
                                 "one scalar (use --kind plugin:multi-objective for multi-output heads)")
        model.eval()
        if device_map:
            device = model.get_input_embeddings().weight.device   # inputs go where the embeddings are
        else:
            model.to(device)
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.pad_token_id = ensure_pad_token(tokenizer, model)
        # Decoder classifiers (`score` head) read the last token; encoders read [CLS].
        self.reward_at = "last" if hasattr(model, "score") else "first"
        self.reward_token = self.reward_at
        self.encoder = ConversationEncoder(tokenizer, self.reward_at)
        note = self.encoder.fallback_note(source.model_id)
        if note:
            print(note, file=sys.stderr)
        self.max_positions = _max_positions(model.config, tokenizer)
        self.info = ModelInfo(
            id=source.model_id, revision=source.revision, kind=self.kind,
            architecture=(config.architectures or [type(model).__name__])[0] if has_head else type(model).__name__,
            n_parameters=sum(p.numel() for p in model.parameters()),
            dtype=str(dtype).replace("torch.", ""), chat_template_sha256=template_sha256(tokenizer),
            head="trained" if has_head else "seeded", input_format=self.encoder.input_format)

    def encode(self, prompt: Prompt, response: str, max_length: int) -> EncodedText:
        return self.encoder.encode(prompt, response, max_length)

    @torch.inference_mode()
    def score_batch(self, batch: Batch) -> torch.Tensor:
        rows = torch.arange(batch.input_ids.shape[0], device=batch.input_ids.device)
        if self.reward_at == "last":
            out = self.model.base_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                        use_cache=False)
            hidden = out[0][rows, batch.reward_positions]
            return self.model.score(hidden)[:, 0]
        kwargs = {"token_type_ids": batch.token_type_ids} if batch.token_type_ids is not None else {}
        return self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, **kwargs).logits[:, 0]

    def probe_sites(self) -> ProbeSites:
        return locate_probe_sites(self.model)

    def head(self) -> HeadFunction:
        if self.reward_at == "last":
            return HeadFunction(module=self.model.score, apply=_apply_score)
        return HeadFunction(module=_EncoderHead(self.model), apply=lambda m, h: m(h))


def _max_positions(config, tokenizer) -> int:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    limits = [getattr(text, name) for name in ("max_position_embeddings", "n_positions")
              if isinstance(getattr(text, name, None), int)]
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and model_max < 1_000_000:
        limits.append(model_max)
    return min(limits) if limits else 4096
