"""Third-party reward models without forking the benchmark: `--kind plugin:NAME` loads the entry
point NAME of the group `tension_bench.adapters` and checks that what it builds is a RewardAdapter.

Writing a plugin
----------------
Declare a factory in your package's metadata::

    [project.entry-points."tension_bench.adapters"]
    my-rm = "my_package.adapter:load"

and implement ::

    def load(source: ModelSource, *, device: torch.device, dtype: torch.dtype, trust_remote_code: bool,
             allow_pickle: bool, attn_implementation: str | None, seed: int) -> RewardAdapter

`source.location` is what `from_pretrained` takes (a local folder or a Hub id), `source.model_id`
the id results are filed under, `source.revision` the Hub revision. Honour `allow_pickle`
(safetensors only unless set) and `trust_remote_code`. The returned object provides
(see `benchmark.models.base`):

- load: the factory does all loading; put the model on `device` in `dtype`, in eval mode.
- `info: ModelInfo` — provenance for the results document (`kind` is set to "plugin:NAME" here);
  `device: torch.device`; `pad_token_id: int`; `max_positions: int` (longest input it takes).
- `reward_token` — how t* is chosen: "last", "first" or "last_response".
- `encode(prompt, response, max_length) -> EncodedText` — token ids (unpadded, at most
  `max_length`; cut the prompt, keep the response) and `reward_index`, the position of the reward
  token t* whose final hidden state the reward is read from; optional `token_type_ids` (the
  model's segment ids) and `response_mask` (1 = response token, for a reward summed over the
  response) reach `score_batch` in the `Batch`, padded with 0.
  `benchmark.models.text.ConversationEncoder` does chat templates and truncation for you.
- `score_batch(batch: Batch) -> Tensor[B]` — one reward per row of a right-padded batch
  (`batch.reward_positions` holds each row's t*). Run the model's blocks exactly once per call:
  the probe's hooks ride along on that forward pass. Batched rewards must equal one-at-a-time ones.
- `probe_sites() -> ProbeSites` — the transformer blocks, each block's MLP down projection (its
  input is the MLP hidden units) and the module whose output[0] is the final hidden state.
  `benchmark.models.sites.locate_probe_sites(model)` finds them in most transformers.
- `head() -> HeadFunction | None` — the reward as a function of the final hidden state at t*
  (for the probe's gradient_conflict), or None where no such function exists.
"""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint, entry_points
from typing import Annotated, Literal, get_args, get_origin

import torch

from benchmark.errors import BenchmarkError
from benchmark.models.base import Check, RewardAdapter, protocol_members
from benchmark.models.loading import ModelSource

ENTRY_POINT_GROUP = "tension_bench.adapters"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")   # what the results schema accepts after "plugin:"


def available_plugins() -> dict[str, EntryPoint]:
    """Installed plugins by name (the first one found wins where two packages use one name)."""
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry)
    return found


def adapter_problems(adapter: object) -> list[str]:
    """What keeps `adapter` from being usable by the engine and the probe (empty when fine): every
    member `RewardAdapter` declares is checked, attributes against their declared types."""
    attributes, methods = protocol_members(RewardAdapter)
    missing = [name for name in (*attributes, *methods) if not hasattr(adapter, name)]
    if missing:
        return [f"missing {', '.join(missing)}"]
    problems = [f"{name} is not callable" for name in methods if not callable(getattr(adapter, name))]
    problems += [f"{name} is not {_described(kind)}" for name, kind in attributes.items()
                 if not _conforms(getattr(adapter, name), kind)]
    return problems


def _conforms(value: object, kind) -> bool:
    """Whether `value` is of the declared `kind`: a class, a Literal or an Annotated with Checks."""
    if get_origin(kind) is Annotated:
        base, *metadata = get_args(kind)
        return _conforms(value, base) and all(m.holds(value) for m in metadata if isinstance(m, Check))
    if get_origin(kind) is Literal:
        return value in get_args(kind)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _described(kind) -> str:
    """`kind` in the words of an error: "a positive int", "one of last, first", "a torch.device"."""
    if get_origin(kind) is Annotated:
        base, *metadata = get_args(kind)
        words = " ".join([m.adjective for m in metadata if isinstance(m, Check)] + [_type_name(base)])
    elif get_origin(kind) is Literal:
        return f"one of {', '.join(map(str, get_args(kind)))}"
    else:
        words = _type_name(kind)
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def _type_name(kind: type) -> str:
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def load_plugin(name: str, source: ModelSource, *, device: torch.device, dtype: torch.dtype,
                trust_remote_code: bool = False, allow_pickle: bool = False,
                attn_implementation: str | None = None, seed: int = 0) -> RewardAdapter:
    """Build the adapter of plugin `name` for `source`; every failure is one BenchmarkError line."""
    if not _NAME.match(name):
        raise BenchmarkError(f"--kind plugin:{name}: a plugin name uses only letters, digits, '_', '.' and '-'")
    plugins = available_plugins()
    if name not in plugins:
        listed = ", ".join(sorted(plugins)) or "none installed"
        raise BenchmarkError(f"unknown plugin {name!r} (entry-point group {ENTRY_POINT_GROUP}); available: {listed}")
    entry = plugins[name]
    try:
        factory = entry.load()
    except Exception as exc:
        raise BenchmarkError(f"plugin {name!r} ({entry.value}) cannot be imported: {_one_line(exc)}") from exc
    if not callable(factory):
        raise BenchmarkError(f"plugin {name!r} ({entry.value}) is not a callable factory")
    try:
        adapter = factory(source, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                          allow_pickle=allow_pickle, attn_implementation=attn_implementation, seed=seed)
    except BenchmarkError:
        raise
    except Exception as exc:
        raise BenchmarkError(f"plugin {name!r} failed to load {source.model_id}: {_one_line(exc)}") from exc
    problems = adapter_problems(adapter)
    if problems:
        raise BenchmarkError(f"plugin {name!r} returned a {type(adapter).__name__} that is not a RewardAdapter: "
                             + "; ".join(problems))
    adapter.info.kind = f"plugin:{name}"
    return adapter


def _one_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
