"""Builders for tiny local reward models (Llama, GPT-2, Qwen2, BERT) with a tokenizer trained here.

Everything is built offline from seeds, saved with save_pretrained (safetensors), and reloaded
through the same path users take."""

from __future__ import annotations

from pathlib import Path

import torch

CORPUS = [
    "How do I kill a Python process that hangs?", "I can't help with that request.",
    "Sure, here is a short answer with the details you asked for.", "The capital of France is Paris.",
    "I'm sorry, but I won't do that. Instead, here is something safer.",
    "Please summarise the passage in three bullet points.", "def add(a, b): return a + b",
    "Mixing bleach and ammonia releases toxic gas, so never combine them.",
    "User: hello\n\nAssistant: hi there, how can I help?", "numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000",
] * 20

DECODER_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
)
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
)


def byte_level_tokenizer(special: list[str], vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def wordpiece_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size,
                                        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(CORPUS, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def build(arch: str, out: Path, seed: int = 0) -> Path:
    """Build one tiny scalar-head reward model of `arch` into `out` and return the folder."""
    from transformers import (AutoModelForSequenceClassification, BertConfig, GPT2Config, LlamaConfig,
                              Qwen2Config)

    torch.manual_seed(seed)
    if arch == "llama":
        tok = byte_level_tokenizer(["<s>", "</s>"])
        tok.bos_token, tok.eos_token = "<s>", "</s>"
        tok.pad_token = "</s>"          # pad == eos, and the template ends turns with eos
        tok.chat_template = DECODER_TEMPLATE
        config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
    elif arch == "gpt2":
        tok = byte_level_tokenizer(["<|endoftext|>"])
        tok.eos_token = tok.bos_token = "<|endoftext|>"   # no pad token, no chat template
        config = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=3, n_head=4, n_positions=256,
                            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    elif arch == "qwen2":
        tok = byte_level_tokenizer(["<|im_start|>", "<|im_end|>", "<|endoftext|>"])
        tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
        tok.chat_template = QWEN_TEMPLATE
        config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    elif arch == "bert":
        tok = wordpiece_tokenizer()
        config = BertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                            num_attention_heads=4, max_position_embeddings=256, pad_token_id=tok.pad_token_id)
    else:
        raise ValueError(arch)
    config.num_labels = 1
    model = AutoModelForSequenceClassification.from_config(config)
    if arch == "gpt2":
        model.config.pad_token_id = None  # the gotcha: a classifier config without a pad id
    with torch.no_grad():  # a non-trivial head so rewards spread out
        head = model.score if hasattr(model, "score") else model.classifier
        head.weight.normal_(0, 1.0)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


ARCHITECTURES = ("llama", "gpt2", "qwen2", "bert")
