"""DPO policies as reward models: the implicit reward is the summed log-ratio of the policy to its
reference over the response tokens (or, with --ref-free, the policy's mean response log-probability)."""

from __future__ import annotations

import inspect

import torch

from benchmark.errors import BenchmarkError
from benchmark.models.base import Batch, EncodedText, ModelInfo, Prompt, ProbeSites, RewardToken
from benchmark.models.loading import (ensure_pad_token, is_sequence_classifier, load_config_and_tokenizer, load_model,
                                      model_max_positions, ModelSource, template_sha256)
from benchmark.models.sites import locate_probe_sites
from benchmark.models.text import ConversationEncoder, as_turns

# With an empty response the conversation equals the prompt-only rendering; comparing with this
# one-character response finds where the response (then only the end-of-turn markup) begins.
_PROBE_RESPONSE = "x"


def _common_prefix(a, b) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _common_suffix(a, b) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def load_causal_lm(source: ModelSource, device: torch.device, dtype: torch.dtype, trust_remote_code: bool,
                   allow_pickle: bool, attn_implementation: str | None):
    """(config, tokenizer, model) for a causal LM, with the same safety rules as classifiers."""
    from transformers import AutoModelForCausalLM

    config, tokenizer = load_config_and_tokenizer(source, trust_remote_code, allow_pickle)
    if is_sequence_classifier(config):
        raise BenchmarkError(f"{source.model_id} is a sequence classifier, not a language model; "
                             "use --kind classifier")
    model = load_model(AutoModelForCausalLM, source, config, dtype=dtype, trust_remote_code=trust_remote_code,
                       allow_pickle=allow_pickle, attn_implementation=attn_implementation)
    model.eval().to(device)
    return config, tokenizer, model


def _check_same_tokenizer(policy_tok, ref_tok, policy_id: str, ref_id: str) -> None:
    policy_vocab, ref_vocab = policy_tok.get_vocab(), ref_tok.get_vocab()
    if policy_vocab == ref_vocab:
        return
    differing = sorted(set(policy_vocab.items()) ^ set(ref_vocab.items()), key=lambda item: item[1])
    example = differing[0][0] if differing else "?"
    raise BenchmarkError(f"--ref-model {ref_id} does not share the tokenizer of {policy_id} "
                         f"({len(ref_vocab)} vs {len(policy_vocab)} tokens; first difference: {example!r}); "
                         "DPO log-ratios need one tokenizer")


class DPOAdapter:
    """Implicit DPO reward r = Σ_response [log π(y_t | ·) − log π_ref(y_t | ·)] (β is left out:
    it scales every reward alike, so no accuracy changes). t* is the last response token.

    The response tokens are marked in `EncodedText.response_mask`, which the engine collates (and
    halves on OOM) with the ids; it is never passed to the models."""

    reward_token: RewardToken = "last_response"

    def __init__(self, source: ModelSource, ref_source: ModelSource | None, device: torch.device,
                 dtype: torch.dtype, trust_remote_code: bool = False, allow_pickle: bool = False,
                 attn_implementation: str | None = None):
        load = dict(device=device, dtype=dtype, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                    attn_implementation=attn_implementation)
        config, tokenizer, model = load_causal_lm(source, **load)
        self.model = model
        self.tokenizer = tokenizer
        self.ref_model = None
        max_positions = model_max_positions(model.config, tokenizer)
        if ref_source is not None:
            _, ref_tokenizer, ref_model = load_causal_lm(ref_source, **load)
            _check_same_tokenizer(tokenizer, ref_tokenizer, source.model_id, ref_source.model_id)
            self.ref_model = ref_model
            max_positions = min(max_positions, model_max_positions(ref_model.config, ref_tokenizer))
        self.device = device
        self.pad_token_id = ensure_pad_token(tokenizer, model)
        self.encoder = ConversationEncoder(tokenizer, "last")
        self.max_positions = max_positions
        self._keeps_logits = {id(m): "logits_to_keep" in inspect.signature(m.forward).parameters
                              for m in (model, self.ref_model) if m is not None}
        self.info = ModelInfo(
            id=source.model_id, revision=source.revision, kind="dpo" if ref_source else "dpo-ref-free",
            architecture=(config.architectures or [type(model).__name__])[0],
            n_parameters=sum(p.numel() for p in model.parameters()),
            dtype=str(dtype).replace("torch.", ""), chat_template_sha256=template_sha256(tokenizer),
            input_format=self.encoder.input_format,
            extra={"ref_model": ref_source.model_id if ref_source else None})

    def encode(self, prompt: Prompt, response: str, max_length: int) -> EncodedText:
        turns = as_turns(prompt)
        full, _, prompt_length = self.encoder.prompt_ids(turns, response)
        if prompt_length >= len(full):   # empty response
            prompt_length = _common_prefix(full, self.encoder.ids(turns, _PROBE_RESPONSE)[0])
        response_length = len(full) - prompt_length
        encoded = self.encoder.encode(prompt, response, max_length)
        ids = encoded.input_ids
        # Truncation only cuts the prompt (from the left), so the response is the shared tail;
        # position 0 predicts nothing and never counts.
        kept = min(response_length, _common_suffix(ids, full))
        start = max(1, len(ids) - kept)
        response_mask = (0,) * start + (1,) * (len(ids) - start)
        return EncodedText(ids, len(ids) - 1, encoded.truncated, response_mask=response_mask)

    def _token_logprobs(self, model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                        first: int) -> torch.Tensor:
        """log p(token j+1 | tokens ≤ j) for positions j = first … T−2, as float32 [B, T−1−first]."""
        width = input_ids.shape[1]
        kwargs = {"logits_to_keep": width - first} if self._keeps_logits[id(model)] else {}
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs).logits
        logits = logits[:, logits.shape[1] - (width - first):-1]
        targets = input_ids[:, first + 1:]
        rows = []
        for row in range(logits.shape[0]):   # one row at a time bounds the float32 copy of the logits
            values = logits[row].float()
            rows.append(values.gather(-1, targets[row, :, None])[:, 0] - torch.logsumexp(values, dim=-1))
        return torch.stack(rows)

    @torch.inference_mode()
    def score_batch(self, batch: Batch) -> torch.Tensor:
        if batch.response_mask is None:
            raise BenchmarkError("internal error: a DPO batch without its response mask (encode with this adapter)")
        input_ids, mask = batch.input_ids, batch.attention_mask
        # Position j predicts token j+1: it counts when token j+1 is a real response token.
        counted = (batch.response_mask[:, 1:] * mask[:, 1:]).bool()
        columns = torch.nonzero(counted.any(dim=0))
        if len(columns) == 0:
            return torch.zeros(input_ids.shape[0], dtype=torch.float64, device=input_ids.device)
        first = int(columns[0])
        counted = counted[:, first:]
        # One policy forward per batch: the probe's hooks ride along on it.
        logprobs = self._token_logprobs(self.model, input_ids, mask, first).double()
        if self.ref_model is None:
            return (logprobs * counted).sum(dim=1) / counted.sum(dim=1).clamp(min=1)
        ref_logprobs = self._token_logprobs(self.ref_model, input_ids, mask, first).double()
        return ((logprobs - ref_logprobs) * counted).sum(dim=1)

    def probe_sites(self) -> ProbeSites:
        return locate_probe_sites(self.model)

    def head(self) -> None:
        return None   # the reward is a sum over tokens, not a function of one hidden state
