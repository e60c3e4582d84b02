"""Clause vectors with the embedding cache, shared by the builder (index.py) and the backends.

A clause is embedded as its normalised index text; its vector is keyed by the hash of that text,
so a rebuild (or an in-memory index over the same clauses) computes only the texts it has not
seen. Sits below index.py and backends/, so a backend never imports the builder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from assistant.schema import Clause
from assistant.text import normalize


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _embed_rows(embedder, texts: list[str], hashes: list[str], rows: list[int], vectors: np.ndarray,
                batch_size: int, progress: Callable[[int, int], None] | None) -> None:
    """Embed texts[rows] into vectors[rows]: each distinct text once, all of them in one pass sorted by
    length (longest first) across the whole build, so every batch pads to nearly its own length.

    The sorted list is handed to the embedder in slices only to report progress (and let a build stop
    between them); slices keep the global order, unlike encoding clauses in corpus order, where each
    group of short articles waits on its longest one.
    """
    first: dict[str, int] = {}
    for i in rows:
        first.setdefault(hashes[i], i)
    unique = sorted(first.values(), key=lambda i: -len(texts[i]))
    step = max(batch_size * 8, 256)
    for s in range(0, len(unique), step):
        part = unique[s : s + step]
        vectors[part] = embedder.encode([texts[i] for i in part], batch_size=batch_size)
        if progress:
            progress(min(s + step, len(unique)), len(unique))
    for i in rows:
        if first[hashes[i]] != i:  # a repeated text (the same clause under two headings) reuses its vector
            vectors[i] = vectors[first[hashes[i]]]


@dataclass(frozen=True)
class Embedded:
    """Clause texts as embedded (normalised index text), their hashes and vectors, and how many
    vectors were computed now rather than taken from the cache."""

    texts: list
    hashes: list
    vectors: np.ndarray
    computed: int


def embed_clauses(clauses: Sequence[Clause], embedder, cached: dict[str, np.ndarray] | None = None,
                  batch_size: int = 32, progress: Callable[[int, int], None] | None = None) -> Embedded:
    """The vectors of clauses, reusing cached ones by text hash."""
    texts = [normalize(c.index_text()) for c in clauses]
    hashes = [text_hash(t) for t in texts]
    cached = cached or {}
    dim = embedder.dim
    vectors = np.zeros((len(clauses), dim), dtype=np.float32)
    todo = []
    for i, h in enumerate(hashes):
        if h in cached and cached[h].shape[0] == dim:
            vectors[i] = cached[h]
        else:
            todo.append(i)
    _embed_rows(embedder, texts, hashes, todo, vectors, batch_size, progress)
    return Embedded(texts, hashes, vectors, len(todo))
