"""Evaluation stage, baselines: the common recipe (fixed 500-character windows with 50 overlap, dense only,
the same model) that the clause chunker is compared against. Its one copy: `eval` scores it as the `naive`
mode and `bench --vs-recipe` times it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from assistant.evaluate.cache import cached_encode


def windows(text: str, size: int = 500, overlap: int = 50) -> list[str]:
    """Fixed character windows: the common chunking recipe the clause chunker is compared against."""
    step = size - overlap
    return [text[i : i + size] for i in range(0, max(len(text) - overlap, 1), step)]


class NaiveIndex:
    """Dense-only flat index over fixed windows of the cleaned document texts."""

    def __init__(self, texts: Sequence[str], embedder, size: int = 500, overlap: int = 50, cache: Path | None = None):
        import faiss
        import numpy as np

        from assistant.text import normalize

        self.passages = [w for t in texts for w in windows(t, size, overlap)]
        self.embedder = embedder
        normed = [normalize(p) for p in self.passages]
        if cache is not None:
            vecs = cached_encode(normed, embedder, Path(cache))
        else:
            vecs = embedder.encode(normed) if self.passages else np.zeros((0, embedder.dim))
        self.dense = faiss.IndexFlatIP(embedder.dim)
        if len(self.passages):
            self.dense.add(np.asarray(vecs, dtype=np.float32))

    def search(self, query: str, k: int = 10) -> list[str]:
        """The k nearest windows' texts."""
        import numpy as np

        from assistant.text import expand_aliases, normalize

        if not self.passages:
            return []
        vec = np.asarray(self.embedder.encode([expand_aliases(normalize(query))]), dtype=np.float32)
        _, ids = self.dense.search(vec, min(k, len(self.passages)))
        return [self.passages[i] for i in ids[0] if i >= 0]
