"""Turning a (prompt, response) into token ids: the tokenizer's chat template when it has one,
otherwise a documented plain-text fallback; truncation keeps the response and cuts the prompt
from the left."""

from __future__ import annotations

from typing import Sequence

from benchmark.errors import BenchmarkError
from benchmark.models.base import EncodedText, Prompt

PLAIN_TEMPLATE = "User: {prompt}\n\nAssistant: {response}"


def as_turns(prompt: Prompt) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    turns = [dict(t) for t in prompt]
    if not turns or turns[-1].get("role") != "user":
        raise BenchmarkError("a multi-turn prompt must end with a user turn")
    return turns


def flatten_turns(turns: Sequence[dict]) -> str:
    """Plain-text rendering of earlier turns, used where no chat template exists."""
    if len(turns) == 1:
        return turns[0]["content"]
    names = {"user": "User", "assistant": "Assistant", "system": "System"}
    parts = [f"{names.get(t['role'], t['role'].title())}: {t['content']}" for t in turns]
    # The final user turn's "User: " label is added by the template around it.
    return "\n\n".join(parts)[len("User: "):] if turns[0]["role"] == "user" else "\n\n".join(parts)


class ConversationEncoder:
    """Encodes conversations for one tokenizer. `reward_token` is "last" (decoders: t* is the final
    token) or "first" (encoders: t* is [CLS])."""

    def __init__(self, tokenizer, reward_token: str):
        self.tokenizer = tokenizer
        self.reward_token = reward_token
        self.has_template = bool(getattr(tokenizer, "chat_template", None))
        self.pair_encoding = (not self.has_template and tokenizer.sep_token is not None
                              and tokenizer.cls_token is not None)

    @property
    def input_format(self) -> str:
        """How a (prompt, response) is put into the model: recorded in `model.input_format`."""
        return "chat_template" if self.has_template else "text_pair" if self.pair_encoding else "plain_text"

    def fallback_note(self, model_id: str) -> str | None:
        """One line for stderr when there is no chat template: a model trained with one scores the
        fallback rendering differently, and the user should know which one was used."""
        if self.has_template:
            return None
        shown = ("a text pair [CLS] prompt [SEP] response [SEP]" if self.pair_encoding
                 else "plain text 'User: {prompt}\\n\\nAssistant: {response}'")
        return (f"note: {model_id} has no chat template; scoring {shown} (if the model was trained with a "
                "template, save it in tokenizer_config.json)")

    def ids(self, turns: list[dict], response: str) -> tuple[list[int], list[int] | None]:
        tok = self.tokenizer
        if self.has_template:
            text = tok.apply_chat_template(turns + [{"role": "assistant", "content": response}], tokenize=False)
            return tok(text, add_special_tokens=False)["input_ids"], None
        if self.pair_encoding:
            enc = tok(flatten_turns(turns), response, add_special_tokens=True)
            return enc["input_ids"], enc.get("token_type_ids")
        text = PLAIN_TEMPLATE.format(prompt=flatten_turns(turns), response=response)
        return tok(text, add_special_tokens=True)["input_ids"], None

    def prompt_ids(self, turns: list[dict], response: str) -> tuple[list[int], list[int] | None, int]:
        """Token ids of the conversation and how many leading tokens belong to the prompt (for DPO)."""
        ids, types = self.ids(turns, response)
        empty, _ = self.ids(turns, "")
        prefix = 0
        while prefix < min(len(ids), len(empty)) and ids[prefix] == empty[prefix]:
            prefix += 1
        return ids, types, prefix

    def encode(self, prompt: Prompt, response: str, max_length: int) -> EncodedText:
        turns = as_turns(prompt)
        ids, types = self.ids(turns, response)
        truncated = False
        if len(ids) > max_length:
            truncated = True
            ids, types, turns = self._cut_prompt(turns, response, max_length)
        if len(ids) > max_length:  # the response alone does not fit: keep the end that t* reads
            ids, types = self._hard_cut(ids, types, max_length)
        reward_index = len(ids) - 1 if self.reward_token == "last" else 0
        return EncodedText(tuple(ids), reward_index, truncated, tuple(types) if types is not None else None)

    def _cut_prompt(self, turns, response, max_length):
        tok = self.tokenizer
        while len(turns) > 1:
            ids, types = self.ids(turns, response)
            if len(ids) <= max_length:
                return ids, types, turns
            turns = turns[2:] if len(turns) > 2 else turns[1:]
        content_ids = tok(turns[0]["content"], add_special_tokens=False)["input_ids"]
        ids, types = self.ids(turns, response)
        keep = len(content_ids)
        while len(ids) > max_length and keep > 0:
            keep = max(0, keep - (len(ids) - max_length))
            content = tok.decode(content_ids[len(content_ids) - keep:]) if keep else ""
            turns = [dict(turns[0], content=content)] + turns[1:]
            ids, types = self.ids(turns, response)
        return ids, types, turns

    def _hard_cut(self, ids, types, max_length):
        if self.reward_token == "last":
            return ids[-max_length:], (types[-max_length:] if types is not None else None)
        keep = max_length - 1
        return ids[:1] + ids[-keep:], (types[:1] + types[-keep:] if types is not None else None)
