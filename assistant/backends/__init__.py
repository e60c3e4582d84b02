"""Index storage and search: the seam between building (index.py) and retrieval (retrieve.py).

An index is clauses plus a dense and a lexical index over them, sharing row numbers as ids. Two
backends implement it:

- `local`: FAISS + bm25s in memory, saved as a directory (the default; one machine);
- `milvus`: one Milvus collection with the dense vector and a BM25 sparse field that Milvus fills
  itself (jieba analyzer with the project's dictionary), for milvus-lite (a file) or a Milvus
  standalone or cluster (a URL). Several API replicas can search the same collection.

An index object (a `StoredClauses` subclass) offers: `clauses`, `documents`, `manifest`, `hashes`,
`get(clause_id)`, `__len__` (the count), `dense_search`, `lexical_search`, `hybrid_search` (each taking `Filters`), `idf()` and
`vectors_by_hash()` (the embedding cache of the next build).

A *target* is where an index is written and read: `read_manifest()`, `load()`, `write(...)` (the
new index replaces the old one atomically: a directory rename, or a Milvus alias swap) and
`describe()`. Settings choose it: ASSISTANT_BACKEND=faiss|milvus, ASSISTANT_MILVUS_URI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class StoredClauses:
    """What every backend's index holds in memory, in row order: the clause records, the document
    records, the manifest and the text hash of each clause. A backend adds its search methods and
    `vectors()`; the lookups below are the same for all of them."""

    def __init__(self, clauses: list, documents: list[dict], manifest: dict, hashes: list[str]):
        self.clauses = clauses
        self.documents = documents
        self.manifest = manifest
        self.hashes = hashes
        self._by_id = {c.clause_id: i for i, c in enumerate(clauses)}
        self._idf: Idf | None = None

    def __len__(self) -> int:
        return len(self.clauses)

    def get(self, clause_id: str):
        i = self._by_id.get(clause_id)
        return self.clauses[i] if i is not None else None

    def vectors_by_hash(self) -> dict[str, np.ndarray]:
        """The stored vectors keyed by text hash: the embedding cache for the next build."""
        if not self.clauses:
            return {}
        vecs = self.vectors()
        return {h: vecs[i] for i, h in enumerate(self.hashes)}


class Idf(dict):
    """token → inverse document frequency, with `top` the largest (the weight of an unseen token)."""

    top: float = 1.0


def idf_from_df(df: dict[str, int], n: int) -> Idf:
    """BM25's idf of every token from its document frequency over n clauses."""
    table = Idf()
    for token, count in df.items():
        if token:
            table[token] = float(np.log(1 + (n - count + 0.5) / (count + 0.5)))
    table.top = max(table.values(), default=1.0)
    return table


def current_doc_ids(documents: list[dict], day) -> set[str]:
    """The documents whose stated term has not ended on `day` (status current)."""
    from assistant.validity import of_record

    return {d.get("doc_id") for d in documents if of_record(d, day).status == "current"}


def weight_ratio(dense_weight: float, lexical_weight: float = 1.0, limit: int = 8) -> tuple[int, int]:
    """Small integers (p, q) with p/q = dense_weight/lexical_weight (nearest with q ≤ limit).

    Reciprocal-rank fusion sums 1/(k + rank) over the rankings it is given, so a ranking given
    twice weighs twice: p copies of the dense request and q of the lexical one fuse as weights p:q.
    That is how a weighted fusion runs on an engine whose RRF takes no weights (Milvus)."""
    from fractions import Fraction

    if dense_weight <= 0:
        return 0, 1
    if lexical_weight <= 0:
        return 1, 0
    ratio = Fraction(dense_weight / lexical_weight).limit_denominator(limit)
    return max(ratio.numerator, 1), max(ratio.denominator, 1)


class LocalTarget:
    """An index directory (FAISS + bm25s), replaced by renaming a fully written sibling over it."""

    kind = "faiss"

    def __init__(self, index_dir: Path | str):
        self.index_dir = Path(index_dir)

    def describe(self) -> str:
        return str(self.index_dir)

    def read_manifest(self) -> dict | None:
        from assistant.backends.local import read_manifest

        return read_manifest(self.index_dir)

    def load(self):
        from assistant.backends.local import PolicyIndex

        stamp = self.stamp()
        index = PolicyIndex.load(self.index_dir)
        index.stamp = stamp
        return index

    def stamp(self) -> tuple | None:
        """What a swap changes: the manifest file's inode, time and size (None while there is none)."""
        from assistant.backends.local import MANIFEST

        try:
            st = (self.index_dir / MANIFEST).stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def replaced(self, index) -> bool:
        """True when the folder holds another index than `index`, which this target loaded: a
        re-index in another process (replica) swapped it in. One stat, cheap at every request."""
        loaded, now = getattr(index, "stamp", None), self.stamp()
        return loaded is not None and now is not None and now != loaded

    def write(self, clauses, documents, vectors, hashes, manifest, stop=None, **options):
        from assistant.backends.local import PolicyIndex

        index = PolicyIndex.from_vectors(clauses, documents, vectors, hashes, manifest, **options)
        index.save(self.index_dir)
        return index


def target_of(settings):
    """The index target the settings name (ASSISTANT_BACKEND, ASSISTANT_MILVUS_URI …)."""
    if getattr(settings, "backend", "faiss") == "milvus":
        from assistant.backends.milvus import MilvusTarget

        return MilvusTarget.from_settings(settings)
    return LocalTarget(settings.index_dir)


def as_target(where):
    """A target from a target or an index directory path."""
    return where if hasattr(where, "read_manifest") and hasattr(where, "write") else LocalTarget(where)
