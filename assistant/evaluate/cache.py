"""Evaluation stage, embedding caches: vectors of texts kept on disk between runs (the naive baseline's
windows), and one query embedding shared by every retrieval mode of a run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


def cached_encode(texts: Sequence[str], embedder, path: Path):
    """Vectors of texts, reusing those stored in `path` (an .npz of text hashes and vectors) and saving new ones."""
    import numpy as np

    from assistant.vectors import text_hash

    hashes = [text_hash(t) for t in texts]
    known: dict[str, object] = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["model"]) == embedder.name and z["vectors"].shape[1:] == (embedder.dim,):
                known = dict(zip(z["hashes"].tolist(), z["vectors"]))
    except (OSError, ValueError, KeyError):
        known = {}
    todo = sorted({h: i for i, h in enumerate(hashes) if h not in known}.values())
    if todo:
        for i, v in zip(todo, embedder.encode([texts[i] for i in todo])):
            known[hashes[i]] = v
        keep = sorted(set(hashes))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            np.savez(f, model=np.array(embedder.name), hashes=np.array(keep), vectors=np.stack([known[h] for h in keep]).astype(np.float32))
        os.replace(tmp, path)
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.stack([known[h] for h in hashes]).astype(np.float32)


class CachedEmbedder:
    """Memoises single-text encodes so the retrieval modes share one query embedding (charged to the first mode)."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._cache: dict[str, object] = {}

    def encode(self, texts, batch_size: int = 32, progress: bool = False):
        if len(texts) != 1:
            return self.inner.encode(texts, batch_size=batch_size, progress=progress)
        if texts[0] not in self._cache:
            self._cache[texts[0]] = self.inner.encode(texts, batch_size=batch_size)
        return self._cache[texts[0]]
