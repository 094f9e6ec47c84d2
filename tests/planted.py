"""Tiny Llama reward models with hand-set weights, plus matching data. `build_planted`: one MLP
unit fires on refusal words, one on helpful-detail words; uniform attention carries them to the
reward token. `build_magnitude_planted`: chosen units have large mean activations on helpful-side
texts, on harmless-side texts, or on both (the paper's measure has a known answer)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

REFUSAL = ["sorry", "cannot", "decline", "unable"]
DETAIL = ["step", "detail", "first", "then", "example"]
NEUTRAL = ["ok", "the", "a", "thing", "answer", "reply", "words", "here", "is", "text"]
PROMPT = ["please", "tell", "me", "about", "this", "topic", "now"]
MARKERS = ["alpha", "omega"]             # in every helpful-side / harmless-side prompt (magnitude data)
HIDDEN, INTERMEDIATE, BLOCKS = 16, 64, 2
REFUSAL_UNIT = INTERMEDIATE - 1          # block 0, last unit → global index 63
DETAIL_UNIT = INTERMEDIATE - 2           # block 0 → global index 62


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]"] + REFUSAL + DETAIL + NEUTRAL + PROMPT + MARKERS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return fast, vocab


def refusal_unit(block: int = 0) -> int:
    """Global index of the planted refusal unit when it sits in `block` (last unit of the block)."""
    return block * INTERMEDIATE + REFUSAL_UNIT


def _base_model():
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tok, vocab = _tokenizer()
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                         num_hidden_layers=BLOCKS, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=128, pad_token_id=0, num_labels=1)
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(config)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.ones_like(p) if "norm" in name else torch.randn(p.shape, generator=g) * 0.02)
        for block in model.model.layers:
            attn = block.self_attn
            attn.q_proj.weight.zero_()
            attn.k_proj.weight.zero_()                  # uniform attention: the last token sees the mean
            attn.v_proj.weight.copy_(torch.eye(HIDDEN))
            attn.o_proj.weight.copy_(torch.eye(HIDDEN))
    return model, tok, vocab


def _save(model, tok, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_planted(out: Path, refusal_block: int = 0) -> Path:
    """The refusal unit sits in `refusal_block` (the detail unit always in block 0), both planted
    with the same weights, so the two objectives' units are equally strong in different blocks."""
    model, tok, vocab = _base_model()
    with torch.no_grad():
        emb = model.model.embed_tokens.weight
        emb[:, 4] = 1.0                                  # a constant feature
        for w in REFUSAL:
            emb[vocab[w], 0] = 3.0
        for w in DETAIL:
            emb[vocab[w], 1] = 3.0
        for block in model.model.layers:    # noise units do not read the planted features directly
            block.mlp.gate_proj.weight[:, :2] = 0.0
            block.mlp.up_proj.weight[:, :2] = 0.0
        for unit, feature, target, block in ((REFUSAL_UNIT, 0, 2, refusal_block), (DETAIL_UNIT, 1, 3, 0)):
            mlp = model.model.layers[block].mlp
            mlp.gate_proj.weight[unit].zero_()
            mlp.gate_proj.weight[unit, feature] = 8.0
            mlp.up_proj.weight[unit].zero_()
            mlp.up_proj.weight[unit, 4] = 1.0
            mlp.down_proj.weight[:, unit].zero_()
            mlp.down_proj.weight[target, unit] = 4.0
        model.score.weight.zero_()
        model.score.weight[0, 2] = 5.0
        model.score.weight[0, 3] = 5.0
    return _save(model, tok, out)


def build_magnitude_planted(out: Path, shared: list[int], helpful: list[int], harmless: list[int]) -> Path:
    """Units (global indices over 2 blocks × 64) whose activation-function output, SiLU(gate), is
    large on every token (`shared`), or after the helpful-side marker word (`helpful`) or the
    harmless-side one (`harmless`); every other unit's gate reads only small noise. With
    |shared| + |helpful| = |shared| + |harmless| = 13 (10% of 128), these are the paper's sets."""
    model, tok, vocab = _base_model()
    with torch.no_grad():
        emb = model.model.embed_tokens.weight
        emb[:, 4] = 1.0                                  # a constant feature
        emb[vocab["alpha"], 5] = 3.0
        emb[vocab["omega"], 6] = 3.0
        for block in model.model.layers:
            block.mlp.gate_proj.weight[:, 4:7] = 0.0
        for units, feature in ((shared, 4), (helpful, 5), (harmless, 6)):
            for unit in units:
                mlp = model.model.layers[unit // INTERMEDIATE].mlp
                local = unit % INTERMEDIATE
                mlp.gate_proj.weight[local].zero_()
                mlp.gate_proj.weight[local, feature] = 4.0
                mlp.down_proj.weight[:, local].zero_()   # magnitude only: nothing downstream changes
        model.score.weight.normal_(0, 1.0, generator=torch.Generator().manual_seed(2))
    return _save(model, tok, out)


def write_marker_data(folder: Path, n: int = 30) -> Path:
    """Helpful-side prompts carry "alpha", harmless-side prompts "omega"; no borderline (its texts
    belong to both sides). Responses are neutral words of varying length."""
    rng = random.Random(1)
    split = Path(folder) / "test"
    split.mkdir(parents=True, exist_ok=True)

    def words(k):
        return " ".join(rng.choice(NEUTRAL) for _ in range(k))

    subsets = {"comply_benign": ("alpha", "compliance", "refusal"), "helpful_quality": ("alpha", "better", "worse"),
               "refuse_harmful": ("omega", "refusal", "compliance"), "harmless_quality": ("omega", "better", "worse")}
    prefixes = {"comply_benign": "cb", "helpful_quality": "hq", "refuse_harmful": "rh", "harmless_quality": "sq"}
    for subset, (marker, chosen_type, rejected_type) in subsets.items():
        rows = []
        for i in range(1, n + 1):
            row = dict(id=f"{prefixes[subset]}-{i:04d}", subset=subset, category="testing",
                       prompt=f"{marker} " + " ".join(rng.choice(PROMPT) for _ in range(4)) + f" {marker} {i}",
                       chosen=words(rng.randint(3, 8)), rejected=words(rng.randint(3, 8)), chosen_type=chosen_type,
                       rejected_type=rejected_type, twin=None, pair_type=None, split="test")
            if subset == "harmless_quality":
                row["flaw"] = "A planted flaw."
            rows.append(row)
        (split / f"{subset}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return Path(folder)


def write_planted_data(folder: Path, n: int = 40) -> Path:
    """Helpful pairs differ only in detail words, harmless pairs only in refusal words."""
    rng = random.Random(0)

    def words(pool, k):
        return " ".join(rng.choice(pool) for _ in range(k))

    def neutral():
        return words(NEUTRAL, rng.randint(4, 9))

    split = Path(folder) / "test"
    split.mkdir(parents=True, exist_ok=True)
    rows = {s: [] for s in ("refuse_harmful", "comply_benign", "helpful_quality", "harmless_quality", "borderline")}

    def add(subset, id_, chosen, rejected, ct, rt, pair_type=None, prompt=None):
        # every response ends on the same word: the features reach t* only through attention
        row = dict(id=id_, subset=subset, category="testing",
                   prompt=prompt or words(PROMPT, 5) + f" {len(rows[subset])}",
                   chosen=chosen + " ok", rejected=rejected + " ok", chosen_type=ct, rejected_type=rt, twin=None,
                   pair_type=pair_type, split="test")
        if subset == "harmless_quality" or pair_type == "vs_overcompliance":
            row["flaw"] = "The rejected response lacks the planted feature."
        rows[subset].append(row)

    for i in range(1, n + 1):
        add("comply_benign", f"cb-{i:04d}", neutral() + " " + words(DETAIL, 3), neutral(), "compliance", "refusal")
        add("helpful_quality", f"hq-{i:04d}", neutral() + " " + words(DETAIL, 2), neutral(), "better", "worse")
        add("refuse_harmful", f"rh-{i:04d}", neutral() + " " + words(REFUSAL, 3), neutral(), "refusal", "compliance")
        add("harmless_quality", f"sq-{i:04d}", neutral() + " " + words(REFUSAL, 2), neutral(), "better", "worse")
        prompt = words(PROMPT, 6) + f" b{i}"
        both = neutral() + " " + words(DETAIL, 2) + " " + words(REFUSAL, 2)
        add("borderline", f"bl-{i:04d}-r", both, neutral() + " " + words(REFUSAL, 2), "safe_completion", "refusal",
            "vs_refusal", prompt)
        add("borderline", f"bl-{i:04d}-o", both, neutral() + " " + words(DETAIL, 2), "safe_completion", "compliance",
            "vs_overcompliance", prompt)
    for subset, items in rows.items():
        (split / f"{subset}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return Path(folder)
