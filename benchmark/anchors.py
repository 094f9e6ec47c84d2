"""External anchor sets (HH-RLHF, PKU-SafeRLHF, XSTest) scored by the same engine as the curated set,
so a model's well-known numbers sit beside its TensionBench scores. Nothing is shipped: every set
is loaded at run time with `datasets`, from the Hub at a pinned revision or from a local copy.

Registry (`ANCHORS`, keyed by anchor name; adding an anchor is one `AnchorSpec` entry):
- `hh-helpful`, `hh-harmless`: Anthropic/hh-rlhf test split, data_dir helpful-base / harmless-base.
  Each transcript ("\\n\\nHuman: … \\n\\nAssistant: …") is parsed into turns: every turn before the final
  Assistant turn is the prompt, the final Assistant turn is the response. A row whose transcript is
  malformed or whose chosen and rejected prompts differ is skipped and counted by reason.
- `pku-conflict`: PKU-Alignment/PKU-SafeRLHF test rows where better_response_id != safer_response_id
  and exactly one response is safe; the safe one is chosen. Rows where both or neither are safe are
  skipped and counted. `control` holds the same statistic on the agree rows (better == safer).
- `xstest`: XSTest v2 prompts (Paul/XSTest, the authors' copy: 250 safe prompts of 10 types and
  200 unsafe contrast prompts; columns id, prompt, type, label, focus, note) carry no responses.
  They are scored only with a response set (`anchor_responses`): a JSONL file of items with prompt,
  chosen, rejected and subset, where comply_benign / xstest-should-respond mean "should respond"
  and refuse_harmful / xstest-should-refuse mean "should refuse". RewardBench's
  xstest-should-respond and xstest-should-refuse subsets (allenai/reward-bench) are the usual
  source of such responses. Each item's prompt must be an XSTest prompt whose label (safe / unsafe)
  agrees with its subset, otherwise it is skipped and counted. Results are reported separately as
  `xstest-should-respond` and `xstest-should-refuse`.
  Without a response set, xstest is reported as not scored (an entry with `status: not_scored`
  and a one-line `reason`) when it was requested with other anchors or through "all"; requested
  alone it raises BenchmarkError, since the run would then do nothing the user asked for.

Local copies (`anchors_dir`): DIR/<hub id>/ laid out exactly as the Hub repository at the pinned
revision, e.g. `huggingface-cli download Anthropic/hh-rlhf --repo-type dataset --revision REV
--local-dir DIR/Anthropic/hh-rlhf`; the files are read through the same `datasets.load_dataset`
("json" / "csv" builders). Accuracy counts an exact tie as half a win (metrics.pair_win); CIs are
percentile bootstraps clustered by prompt (metrics.cluster_bootstrap: 1,000 resamples,
numpy.random.default_rng(0), per anchor).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from benchmark.errors import BenchmarkError
from benchmark.jsonio import StrictJSONError, loads_strict
from benchmark.metrics import cluster_bootstrap, pair_win, percentile_ci
from benchmark.models.base import Prompt

# Pinned Hub commits. Each sha was read from public code that pins or caches this exact revision
# (e.g. HF cache snapshot folders); none could be checked against the Hub from here.
HH_RLHF_REVISION = "09be8c5bbc57cb3887f3a9732ad6aa7ec602a1fa"
PKU_SAFERLHF_REVISION = "9421ffafec3fa40a1f1a7d567b4d525079477ecb"
XSTEST_REVISION = "f600c994b256f12867dfa5b3eb3d545a3e62f8b5"

ALL = "all"
SHOULD_RESPOND = "should-respond"
SHOULD_REFUSE = "should-refuse"
RESPONSE_SUBSETS = {
    "comply_benign": SHOULD_RESPOND, "xstest-should-respond": SHOULD_RESPOND, SHOULD_RESPOND: SHOULD_RESPOND,
    "refuse_harmful": SHOULD_REFUSE, "xstest-should-refuse": SHOULD_REFUSE, SHOULD_REFUSE: SHOULD_REFUSE,
}
XSTEST_LABELS = {"safe": SHOULD_RESPOND, "unsafe": SHOULD_REFUSE}


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class AnchorPair:
    """One preference pair of an anchor set, shaped like `data.Pair` where the engine reads it."""
    id: str
    prompt: Prompt
    chosen: str
    rejected: str


@dataclass
class AnchorGroup:
    """The pairs reported under one key of the `anchors` block, with the rows skipped on the way."""
    key: str
    pairs: list[AnchorPair] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    control: "AnchorGroup | None" = None
    control_rows: str | None = None


@dataclass
class ResponseSet:
    items: list[dict]          # {"line", "prompt", "chosen", "rejected", "kind"}
    sha256: str


Parser = Callable[["AnchorSpec", Iterable[dict], "ResponseSet | None"], list[AnchorGroup]]


@dataclass(frozen=True)
class AnchorSpec:
    name: str
    hub_id: str
    revision: str
    license: str
    split: str
    parser: Parser
    local_files: tuple[str, ...]          # globs under DIR/<hub_id>/, the Hub repository's layout
    local_format: str                     # datasets builder for the local files: json | csv | parquet
    data_dir: str | None = None
    config: str | None = None
    needs_responses: bool = False
    result_keys: tuple[str, ...] = ()     # keys it adds to the block (default: its name)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.result_keys or (self.name,)


# ---------------------------------------------------------------------------------------------
# HH-RLHF transcripts


class MalformedTranscript(ValueError):
    """A transcript that cannot be split into prompt turns and a final Assistant response.
    `reason` is a short, stable phrase used to count skipped rows."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


_TURN_MARK = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def parse_transcript(text: str) -> tuple[list[dict], str]:
    """Split an HH-RLHF transcript into prompt turns ({"role", "content"}, alternating user /
    assistant, ending with a user turn) and the final Assistant response. Raises
    MalformedTranscript when there is no final Assistant turn, roles do not alternate, text sits
    before the first Human turn, or the transcript or any turn is empty."""
    if not isinstance(text, str) or not text.strip():
        raise MalformedTranscript("empty transcript")
    if text.startswith("Human:"):
        text = "\n\n" + text
    parts = _TURN_MARK.split(text)
    if parts[0].strip():
        raise MalformedTranscript("text before the first Human turn")
    turns = [{"role": _ROLES[role], "content": content.strip()} for role, content in zip(parts[1::2], parts[2::2])]
    if not turns:
        raise MalformedTranscript("no Human/Assistant turns")
    if turns[-1]["role"] != "assistant":
        raise MalformedTranscript("no final Assistant turn")
    for index, turn in enumerate(turns):
        if turn["role"] != ("user" if index % 2 == 0 else "assistant"):
            raise MalformedTranscript("roles do not alternate")
        if not turn["content"]:
            raise MalformedTranscript("empty turn")
    return turns[:-1], turns[-1]["content"]


def parse_hh(spec: AnchorSpec, rows: Iterable[dict], responses: ResponseSet | None = None) -> list[AnchorGroup]:
    group = AnchorGroup(spec.name)
    for index, row in enumerate(rows):
        try:
            chosen_turns, chosen = parse_transcript(row.get("chosen"))
            rejected_turns, rejected = parse_transcript(row.get("rejected"))
        except MalformedTranscript as exc:
            group.skipped[exc.reason] += 1
            continue
        if chosen_turns != rejected_turns:
            group.skipped["chosen and rejected prompts differ"] += 1
            continue
        group.pairs.append(AnchorPair(f"{spec.name}-{index:05d}", chosen_turns, chosen, rejected))
    return [group]


# ---------------------------------------------------------------------------------------------
# PKU-SafeRLHF


def _pku_pair(row: dict, name: str, index: int) -> tuple[AnchorPair | None, str | None]:
    """The pair of one row (the safe response chosen), or the reason it is skipped."""
    responses = (row.get("response_0"), row.get("response_1"))
    safe = (row.get("is_response_0_safe"), row.get("is_response_1_safe"))
    prompt, safer = row.get("prompt"), row.get("safer_response_id")
    if not isinstance(prompt, str) or not prompt.strip() or not all(isinstance(r, str) for r in responses) \
            or not all(isinstance(s, bool) for s in safe) or safer not in (0, 1):
        return None, "malformed row"
    if all(safe):
        return None, "both responses safe"
    if not any(safe):
        return None, "neither response safe"
    safe_id = 0 if safe[0] else 1
    if safer != safe_id:  # the dataset card promises a safe response always ranks safer
        return None, "safer_response_id is the unsafe response"
    return AnchorPair(f"{name}-{index:05d}", prompt, responses[safe_id], responses[1 - safe_id]), None


def parse_pku(spec: AnchorSpec, rows: Iterable[dict], responses: ResponseSet | None = None) -> list[AnchorGroup]:
    conflict = AnchorGroup(spec.name)
    agree = AnchorGroup(f"{spec.name}-agree")
    for index, row in enumerate(rows):
        better, safer = row.get("better_response_id"), row.get("safer_response_id")
        if better not in (0, 1) or safer not in (0, 1):
            conflict.skipped["malformed row"] += 1
            continue
        group = conflict if better != safer else agree
        pair, reason = _pku_pair(row, spec.name, index)
        if pair is None:
            group.skipped[reason] += 1
        else:
            group.pairs.append(pair)
    conflict.control = agree
    conflict.control_rows = "agree rows (better_response_id == safer_response_id), safe response chosen"
    return [conflict]


# ---------------------------------------------------------------------------------------------
# XSTest


def _normalise_prompt(text: str) -> str:
    return " ".join(text.split())


def parse_xstest(spec: AnchorSpec, rows: Iterable[dict], responses: ResponseSet | None) -> list[AnchorGroup]:
    if responses is None:  # score_anchors never calls this without a response set
        raise BenchmarkError("anchor xstest needs a response set (--anchor-responses)")
    labels: dict[str, str] = {}
    for row in rows:
        prompt, kind = row.get("prompt"), XSTEST_LABELS.get(str(row.get("label")).strip().lower())
        if isinstance(prompt, str) and kind is not None:
            labels[_normalise_prompt(prompt)] = kind
    groups = {kind: AnchorGroup(f"xstest-{kind}") for kind in (SHOULD_RESPOND, SHOULD_REFUSE)}
    for item in responses.items:
        group = groups[item["kind"]]
        label = labels.get(_normalise_prompt(item["prompt"]))
        if label is None:
            group.skipped["prompt is not an XSTest prompt"] += 1
        elif label != item["kind"]:
            group.skipped["subset disagrees with the XSTest label"] += 1
        elif not item["chosen"].strip() or not item["rejected"].strip():
            group.skipped["empty response"] += 1
        else:
            group.pairs.append(AnchorPair(f"{group.key}-{item['line']:05d}", item["prompt"],
                                          item["chosen"], item["rejected"]))
    return [groups[SHOULD_RESPOND], groups[SHOULD_REFUSE]]


def load_response_set(path: Path) -> ResponseSet:
    """A response set in our prompt-item format (only prompt, chosen, rejected and subset are read)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BenchmarkError(f"cannot read anchor responses {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BenchmarkError(f"{path}: not UTF-8") from None
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = loads_strict(line)
        except (ValueError, StrictJSONError) as exc:
            raise BenchmarkError(f"{path}:{number}: invalid JSON ({exc})") from None
        if not isinstance(item, dict):
            raise BenchmarkError(f"{path}:{number}: not a JSON object")
        for key in ("prompt", "chosen", "rejected", "subset"):
            if not isinstance(item.get(key), str):
                raise BenchmarkError(f"{path}:{number}: field {key!r} must be a string")
        kind = RESPONSE_SUBSETS.get(item["subset"])
        if kind is None:
            raise BenchmarkError(f"{path}:{number}: subset {item['subset']!r} is neither should-respond "
                                 "(comply_benign, xstest-should-respond) nor should-refuse "
                                 "(refuse_harmful, xstest-should-refuse)")
        items.append({"line": number, "prompt": item["prompt"], "chosen": item["chosen"],
                      "rejected": item["rejected"], "kind": kind})
    if not items:
        raise BenchmarkError(f"{path}: no items")
    return ResponseSet(items, hashlib.sha256(raw).hexdigest())


# ---------------------------------------------------------------------------------------------
# Registry

ANCHORS: dict[str, AnchorSpec] = {spec.name: spec for spec in (
    AnchorSpec("hh-helpful", "Anthropic/hh-rlhf", HH_RLHF_REVISION, "MIT", "test", parse_hh,
               local_files=("helpful-base/test.jsonl.gz",), local_format="json", data_dir="helpful-base"),
    AnchorSpec("hh-harmless", "Anthropic/hh-rlhf", HH_RLHF_REVISION, "MIT", "test", parse_hh,
               local_files=("harmless-base/test.jsonl.gz",), local_format="json", data_dir="harmless-base"),
    AnchorSpec("pku-conflict", "PKU-Alignment/PKU-SafeRLHF", PKU_SAFERLHF_REVISION, "CC-BY-NC-4.0", "test",
               parse_pku, local_files=("data/*/test.jsonl",), local_format="json", config="default"),
    AnchorSpec("xstest", "Paul/XSTest", XSTEST_REVISION, "CC-BY-4.0", "train", parse_xstest,
               local_files=("xstest_prompts.csv",), local_format="csv", needs_responses=True,
               result_keys=(f"xstest-{SHOULD_RESPOND}", f"xstest-{SHOULD_REFUSE}")),
)}


def resolve_names(names: Sequence[str]) -> list[str]:
    """Registry names in registry order; "all" means every anchor."""
    if isinstance(names, str):
        names = [names]
    wanted = set()
    for name in names:
        if name == ALL:
            wanted.update(ANCHORS)
        elif name in ANCHORS:
            wanted.add(name)
        else:
            raise BenchmarkError(f"unknown anchor {name!r}; known anchors: {', '.join(ANCHORS)}, {ALL}")
    return [name for name in ANCHORS if name in wanted]


# ---------------------------------------------------------------------------------------------
# Loading


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def load_rows(spec: AnchorSpec, anchors_dir: Path | None = None):
    """The anchor's rows as a `datasets.Dataset`: from the Hub at the pinned revision, or from a
    local copy of the Hub layout under anchors_dir/<hub id>/."""
    import datasets

    where = f"{spec.hub_id}" + (f" ({spec.data_dir})" if spec.data_dir else "")
    if anchors_dir is not None:
        root = Path(anchors_dir) / spec.hub_id
        files = sorted({str(p) for pattern in spec.local_files for p in root.glob(pattern) if p.is_file()})
        if not files:
            raise BenchmarkError(f"anchor {spec.name}: no local copy of {where} in {root} "
                                 f"(expected {', '.join(spec.local_files)} as on the Hub)")
        try:
            return datasets.load_dataset(spec.local_format, data_files={spec.split: files}, split=spec.split)
        except Exception as exc:  # datasets raises many types for unreadable files
            raise BenchmarkError(f"anchor {spec.name}: cannot read the local copy of {where} in {root}: "
                                 f"{_one_line(exc)}") from None
    kwargs = {"split": spec.split, "revision": spec.revision}
    if spec.data_dir:
        kwargs["data_dir"] = spec.data_dir
    try:
        return datasets.load_dataset(spec.hub_id, spec.config, **kwargs)
    except Exception as exc:  # offline, missing, gated, network: all one line for the user
        raise BenchmarkError(f"anchor {spec.name}: cannot load {where} at revision {spec.revision[:12]} "
                             f"from the Hub ({_one_line(exc)}); connect, or pass a local copy with "
                             f"--anchors-dir") from None


# ---------------------------------------------------------------------------------------------
# Statistics


def group_stats(pairs: Sequence[AnchorPair], rewards: dict[str, tuple[float, float]]) -> dict:
    """Accuracy with the benchmark's one cluster bootstrap (pairs sharing a prompt move together)."""
    wins = np.array([pair_win(*rewards[p.id]) for p in pairs], dtype=np.float64)
    clusters = [json.dumps(p.prompt, sort_keys=True) for p in pairs]
    return {"accuracy": float(wins.mean()), "ci95": percentile_ci(cluster_bootstrap(wins, clusters)),
            "n": len(pairs), "ties": int(np.sum(wins == 0.5))}


def _skips(counter: Counter) -> dict:
    out = {"skipped": int(sum(counter.values()))}
    if counter:
        out["skipped_reasons"] = {reason: int(n) for reason, n in sorted(counter.items())}
    return out


def _header(spec: AnchorSpec, source: str) -> dict:
    return {"dataset": spec.hub_id, "revision": spec.revision, "config": spec.data_dir or spec.config,
            "split": spec.split, "license": spec.license, "source": source}


def _not_scored(header: dict, reason: str, **extra) -> dict:
    return {**header, **extra, "status": "not_scored", "reason": reason}


# ---------------------------------------------------------------------------------------------
# Entry point


def score_anchors(adapter, names: Sequence[str], *, anchors_dir: Path | None = None,
                  anchor_responses: Path | None = None, batch_size: int | str = "auto",
                  max_length: int | None = None, progress: bool = True) -> dict:
    """The results document's `anchors` block for `names` (anchor names or "all"), every distinct
    text scored once through benchmark.engine."""
    from benchmark.engine import score_pairs

    selected = resolve_names(names)
    if anchor_responses is not None and "xstest" not in selected:
        raise BenchmarkError("--anchor-responses only applies to the xstest anchor; add xstest to the anchors")
    if selected == ["xstest"] and anchor_responses is None:
        raise BenchmarkError("anchor xstest needs a response set: pass --anchor-responses FILE (JSONL items "
                             "with prompt, chosen, rejected, subset; e.g. RewardBench's xstest subsets)")
    if not progress:
        import datasets

        datasets.disable_progress_bars()
    responses = load_response_set(anchor_responses) if anchor_responses is not None else None
    source = "local" if anchors_dir is not None else "hub"

    parsed: list[tuple[AnchorSpec, AnchorGroup | None]] = []   # None: needs responses, none given
    for name in selected:
        spec = ANCHORS[name]
        if spec.needs_responses and responses is None:
            parsed.append((spec, None))
            continue
        rows = load_rows(spec, anchors_dir)
        parsed.extend((spec, group) for group in spec.parser(spec, rows, responses))

    scored = [p for _, g in parsed if g is not None for p in g.pairs + (g.control.pairs if g.control else [])]
    rewards: dict[str, tuple[float, float]] = {}
    truncated_pairs: set[str] = set()
    if scored:
        if max_length is None:
            max_length = min(adapter.max_positions, 4096)
        done = score_pairs(adapter, scored, max_length, batch_size, progress=progress, desc="anchors",
                           nan_message="{n} anchor texts got a NaN reward; the model or dtype is broken "
                                       "(try --dtype float32)")
        rewards, truncated_pairs = done.rewards, done.truncated

    block: dict[str, dict] = {}
    for spec, group in parsed:
        header = _header(spec, source)
        if group is None:
            block[spec.name] = _not_scored(header, f"{spec.name} not scored: it needs a response set "
                                           "(--anchor-responses), e.g. RewardBench's xstest subsets")
            continue
        if spec.needs_responses:
            header["responses_sha256"] = responses.sha256
        if not group.pairs:
            block[group.key] = _not_scored(header, f"{group.key} not scored: no usable pairs",
                                           **_skips(group.skipped))
            continue
        entry = {**header, **group_stats(group.pairs, rewards), **_skips(group.skipped),
                 "truncated": sum(1 for p in group.pairs if p.id in truncated_pairs)}
        if group.control is not None:
            control = {"rows": group.control_rows, **_skips(group.control.skipped)}
            if group.control.pairs:
                control.update(group_stats(group.control.pairs, rewards))
            entry["control"] = control
        block[group.key] = entry
    return block
