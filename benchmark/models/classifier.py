"""Sequence-classifier reward models (AutoModelForSequenceClassification with a scalar head), and the
base the classifier-style plugins share."""

from __future__ import annotations

import sys

import torch

from benchmark.errors import BenchmarkError
from benchmark.models.base import Batch, EncodedText, HeadFunction, ModelInfo, Prompt, ProbeSites, RewardToken
from benchmark.models.loading import (ModelSource, ensure_pad_token, is_sequence_classifier, load_config_and_tokenizer,
                                      load_model, model_max_positions, template_sha256)
from benchmark.models.sites import locate_probe_sites
from benchmark.models.text import ConversationEncoder


def _first_output(module: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    return module(hidden)[:, 0]


class _EncoderLogits(torch.nn.Module):
    """An encoder classifier's head (pooler if any, then classifier) as h_L[CLS] → its K outputs."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.pooler = getattr(model, "pooler", None) or getattr(model.base_model, "pooler", None)
        self.classifier = model.classifier

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        sequence = hidden[:, None, :]
        if self.pooler is not None:
            return self.classifier(self.pooler(sequence))
        try:  # RoBERTa-style heads read features[:, 0] themselves
            return self.classifier(sequence)
        except (RuntimeError, IndexError):
            return self.classifier(hidden)


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


class SequenceClassifierBase:
    """Set-up and scoring shared by the classifier-style adapters, given a loaded
    AutoModelForSequenceClassification on its device: decoders (a `score` head) read t* at the last
    token, encoders at [CLS]. Subclasses load the model and turn the head's outputs into one reward."""

    def __init__(self, source: ModelSource, model: torch.nn.Module, tokenizer, device: torch.device):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.pad_token_id = ensure_pad_token(tokenizer, model)
        self.reward_token: RewardToken = "last" if hasattr(model, "score") else "first"
        self.encoder = ConversationEncoder(tokenizer, self.reward_token)
        note = self.encoder.fallback_note(source.model_id)
        if note:
            print(note, file=sys.stderr)
        self.max_positions = model_max_positions(model.config, tokenizer)

    def provenance(self, source: ModelSource, dtype: torch.dtype, **fields) -> ModelInfo:
        """The `model` block's fields every classifier-style adapter fills alike, plus `fields`."""
        return ModelInfo(id=source.model_id, revision=source.revision,
                         n_parameters=sum(p.numel() for p in self.model.parameters()),
                         dtype=str(dtype).replace("torch.", ""),
                         chat_template_sha256=template_sha256(self.tokenizer), **fields)

    def encode(self, prompt: Prompt, response: str, max_length: int) -> EncodedText:
        return self.encoder.encode(prompt, response, max_length)

    def head_outputs(self, batch: Batch) -> torch.Tensor:
        """The head's outputs [B, K] at each row's t*, from one pass through the blocks (not under
        inference_mode: the probe differentiates through it)."""
        if self.reward_token == "last":
            rows = torch.arange(batch.input_ids.shape[0], device=batch.input_ids.device)
            out = self.model.base_model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                        use_cache=False)
            return self.model.score(out[0][rows, batch.reward_positions])
        kwargs = {"token_type_ids": batch.token_type_ids} if batch.token_type_ids is not None else {}
        return self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, **kwargs).logits

    def output_head(self) -> torch.nn.Module:
        """The head as a module from h_L at t* to its K outputs (what `head_outputs` applies)."""
        return self.model.score if self.reward_token == "last" else _EncoderLogits(self.model)

    def probe_sites(self) -> ProbeSites:
        return locate_probe_sites(self.model)


class ClassifierAdapter(SequenceClassifierBase):
    kind = "classifier"

    def __init__(self, source: ModelSource, device: torch.device, dtype: torch.dtype,
                 trust_remote_code: bool = False, allow_pickle: bool = False, head_seed: int = 0,
                 attn_implementation: str | None = None, device_map: str | None = None,
                 seeded_head: bool = False):
        from transformers import AutoModelForSequenceClassification

        config, tokenizer = load_config_and_tokenizer(source, trust_remote_code, allow_pickle)
        has_head = is_sequence_classifier(config)
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
        super().__init__(source, model, tokenizer, device)
        self.info = self.provenance(
            source, dtype, kind=self.kind,
            architecture=(config.architectures or [type(model).__name__])[0] if has_head else type(model).__name__,
            head="trained" if has_head else "seeded", input_format=self.encoder.input_format)

    @torch.inference_mode()
    def score_batch(self, batch: Batch) -> torch.Tensor:
        return self.head_outputs(batch)[:, 0]

    def head(self) -> HeadFunction:
        return HeadFunction(module=self.output_head(), apply=_first_output)
