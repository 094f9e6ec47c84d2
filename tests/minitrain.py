"""A tiny train split (`<folder>/train/*.jsonl`) derived from tests.minidata, for training tests."""

from __future__ import annotations

import json
from pathlib import Path

from tests.minidata import minidata_items


def _train_id(item_id: str) -> str:
    return item_id[:2] + "-t" + item_id[2:]


def write_minitrain(folder: str | Path, n: int = 24) -> Path:
    folder = Path(folder)
    target = folder / "train"
    target.mkdir(parents=True, exist_ok=True)
    for subset, rows in minidata_items(n).items():
        out = []
        for row in rows:
            row = dict(row, id=_train_id(row["id"]), split="train", prompt="Practice: " + row["prompt"])
            if row["twin"]:
                row["twin"] = _train_id(row["twin"])
            out.append(json.dumps(row) + "\n")
        (target / f"{subset}.jsonl").write_text("".join(out), encoding="utf-8")
    return folder
