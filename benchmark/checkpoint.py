"""Run cache for resumable evaluation: rewards (and the probe's activation stores) live in
memory-mapped files under a folder keyed by everything that changes the numbers; a progress log
records finished batches. After a kill, a rerun with the same arguments redoes at most one batch."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from benchmark.jsonio import atomic_write_json

DEFAULT_CACHE_ROOT = Path(".cache") / "tension-bench" / "runs"


def run_material(*, model: str, model_id: str, revision: str | None, kind: str, ref_model: str | None,
                 ref_free: bool, dtype: str, device: str, max_length: int, batch_size, split: str,
                 prompt_sets_sha256: str, probe: bool, attn_implementation: str | None, seed: int) -> dict:
    """Everything that decides a run's rewards and activations: its cache key is the hash of this."""
    from benchmark import PROBE_VERSION, __version__

    return {"model": model, "model_id": model_id, "revision": revision, "kind": kind, "ref_model": ref_model,
            "ref_free": ref_free, "dtype": dtype, "device": device, "max_length": max_length,
            "batch_size": batch_size, "split": split, "prompt_sets_sha256": prompt_sets_sha256,
            "probe": PROBE_VERSION if probe else False,   # a probe change must not resume
            "attn_implementation": attn_implementation, "seed": seed, "version": __version__}


def run_key(material: dict) -> str:
    text = json.dumps(material, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


class RunCache:
    def __init__(self, root: Path, material: dict, n_texts: int, fresh: bool = False):
        self.material = dict(material, n_texts=n_texts)
        self.dir = Path(root) / run_key(self.material)
        self.n_texts = n_texts
        meta = self.dir / "meta.json"
        if not fresh and meta.is_file():
            try:
                fresh = json.loads(meta.read_text(encoding="utf-8")) != self.material
            except ValueError:
                fresh = True
        else:
            fresh = True
        if fresh and self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if fresh:
            atomic_write_json(meta, self.material)
        self.rewards = self.array("rewards", (n_texts,), np.float64, fill=np.nan)
        self.progress = self.dir / "progress.log"
        self._done = self._read_progress()
        self.resumed = len(self._done) > 0

    def array(self, name: str, shape: tuple, dtype, fill=0) -> np.memmap:
        """A memory-mapped array that survives a kill; created (filled) on first use.

        Data-parallel ranks open the same arrays at the same time, so a file is built complete under
        a private name and hard-linked into place (atomic, fails if another rank won): nobody ever
        maps a half-sized file or truncates one another rank is already writing."""
        path = self.dir / f"{name}.bin"
        expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if path.is_file():
            if path.stat().st_size == expected:
                return np.memmap(path, dtype=dtype, mode="r+", shape=shape)
            path.unlink()                   # a stale layout (files are only ever linked in complete)
        tmp = self.dir / f".{name}.{os.getpid()}.tmp"
        try:
            data = np.memmap(tmp, dtype=dtype, mode="w+", shape=shape)
            if fill != 0:
                data[:] = fill
            data.flush()
            del data
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass                        # another rank linked its (identical) file first
        finally:
            tmp.unlink(missing_ok=True)
        return np.memmap(path, dtype=dtype, mode="r+", shape=shape)

    def _read_progress(self) -> set[int]:
        if not self.progress.is_file():
            return set()
        done = set()
        for line in self.progress.read_text(encoding="utf-8").splitlines():
            if line.strip().isdigit():      # a torn last line (killed mid-write) is ignored
                done.add(int(line))
        return done

    def is_done(self, batch_index: int) -> bool:
        return batch_index in self._done

    @property
    def done_batches(self) -> set[int]:
        return set(self._done)

    def record(self, batch_index: int, indices: np.ndarray, values: np.ndarray, flush=()) -> None:
        """Persist one batch: data first, then the progress line (so a line means the data is there)."""
        self.rewards[indices] = values
        self.rewards.flush()
        for array in flush:
            if isinstance(array, np.memmap):
                array.flush()
        with open(self.progress, "a", encoding="utf-8") as handle:
            handle.write(f"{batch_index}\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._done.add(batch_index)

    def finish(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
