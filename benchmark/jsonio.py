"""Atomic file writes and strict JSON reading, shared by every stage that touches disk."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` so that readers see the old file or the new one, never half of it."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half of it.
    Only a regular file is ever replaced: renaming over /dev/stdout or a symlink would destroy it."""
    path = Path(path)
    check_replaceable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise BenchmarkError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)     # mkstemp makes 0600; a results file is for sharing
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def check_replaceable(path: Path) -> None:
    """A path we may atomically replace: absent, or a regular file that is not a symlink."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise BenchmarkError(f"refusing to replace {path}: it is not a regular file "
                             "(use --output - to write the JSON to standard output)")


def dump_json(doc: Any) -> str:
    """The one JSON layout we write: indented, UTF-8, no NaN."""
    return json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike, doc: Any) -> None:
    atomic_write_text(path, dump_json(doc))


class StrictJSONError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not allowed")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads_strict(text: str) -> Any:
    """Parse JSON rejecting NaN/Infinity and duplicate keys (plain json.loads accepts both)."""
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
