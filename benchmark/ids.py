"""Model ids and the file names they map to (torch-free: the app and the validator use it)."""

from __future__ import annotations

import re

HUB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


def is_valid_model_id(model_id: str) -> bool:
    return isinstance(model_id, str) and bool(HUB_ID_RE.match(model_id)) and ".." not in model_id


def submission_name(model_id: str) -> str:
    org, name = model_id.split("/", 1)
    return f"{org}__{name}.json"
