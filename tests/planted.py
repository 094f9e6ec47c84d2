"""A tiny Llama reward model with hand-set weights: one MLP unit fires on refusal words, one on
helpful-detail words; uniform attention carries them to the reward token. Plus matching data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch

REFUSAL = ["sorry", "cannot", "decline", "unable"]
DETAIL = ["step", "detail", "first", "then", "example"]
NEUTRAL = ["ok", "the", "a", "thing", "answer", "reply", "words", "here", "is", "text"]
PROMPT = ["please", "tell", "me", "about", "this", "topic", "now"]
HIDDEN, INTERMEDIATE, BLOCKS = 16, 64, 2
REFUSAL_UNIT = INTERMEDIATE - 1          # block 0, last unit → global index 63
DETAIL_UNIT = INTERMEDIATE - 2           # block 0 → global index 62


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]"] + REFUSAL + DETAIL + NEUTRAL + PROMPT)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return fast, vocab


def build_planted(out: Path) -> Path:
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
        emb = model.model.embed_tokens.weight
        emb[:, 4] = 1.0                                  # a constant feature
        for w in REFUSAL:
            emb[vocab[w], 0] = 3.0
        for w in DETAIL:
            emb[vocab[w], 1] = 3.0
        for block in model.model.layers:
            attn = block.self_attn
            attn.q_proj.weight.zero_()
            attn.k_proj.weight.zero_()                  # uniform attention: the last token sees the mean
            attn.v_proj.weight.copy_(torch.eye(HIDDEN))
            attn.o_proj.weight.copy_(torch.eye(HIDDEN))
        for block in model.model.layers:    # noise units do not read the planted features directly
            block.mlp.gate_proj.weight[:, :2] = 0.0
            block.mlp.up_proj.weight[:, :2] = 0.0
        mlp = model.model.layers[0].mlp
        for unit, feature, target in ((REFUSAL_UNIT, 0, 2), (DETAIL_UNIT, 1, 3)):
            mlp.gate_proj.weight[unit].zero_()
            mlp.gate_proj.weight[unit, feature] = 8.0
            mlp.up_proj.weight[unit].zero_()
            mlp.up_proj.weight[unit, 4] = 1.0
            mlp.down_proj.weight[:, unit].zero_()
            mlp.down_proj.weight[target, unit] = 4.0
        model.score.weight.zero_()
        model.score.weight[0, 2] = 5.0
        model.score.weight[0, 3] = 5.0
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


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
        rows[subset].append(dict(id=id_, subset=subset, category="testing", prompt=prompt or words(PROMPT, 5) + f" {len(rows[subset])}",
                                 chosen=chosen + " ok", rejected=rejected + " ok", chosen_type=ct, rejected_type=rt, twin=None,
                                 pair_type=pair_type, split="test"))

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
