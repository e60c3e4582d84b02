"""What a build records, shared by the builder (index.py) and the backends that store its index.

The manifest is written last with every index and read back to decide whether it is stale and
whether it can be loaded at all (`readable`); `BuildStats` is what a build reports to its caller.
Both sit below index.py and backends/, so a backend never imports the builder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import metadata

FORMAT_VERSION = 1


@dataclass(frozen=True)
class BuildStats:
    documents: int
    clauses: int
    embedded: int  # clauses whose vectors were computed (the rest came from the cache)
    seconds: float
    dense_index: str
    chunked: int = 0  # documents chunked in this build
    reused: int = 0  # documents whose clauses came from the previous index (unchanged since)
    skipped: tuple = ()  # the CorpusErrors of documents left out (each names its file and the reason)
    changes: dict | None = None  # documents added / changed / removed since the previous index


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("faiss-cpu", "bm25s", "pymilvus", "milvus-lite", "jieba", "jionlp", "sentence-transformers", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    from assistant import __version__

    out["assistant"] = __version__
    return out


def new_manifest(embedder, corpus_hash: str, documents: int, clauses: int, extra: dict | None = None) -> dict:
    """What an index records about how it was made (read back to decide whether it is stale)."""
    return {
        "format": FORMAT_VERSION,
        "model": embedder.name,
        "dim": embedder.dim,
        "corpus_hash": corpus_hash,
        "counts": {"documents": documents, "clauses": clauses},
        "versions": _versions(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    }


def readable(manifest) -> dict | None:
    """The manifest when it is one of this format (an index is never loaded without one), else None."""
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT_VERSION else None
