"""Shared fixtures: the real seeds, a fast hash-embedder index, and (marked `model`) the real model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"


@pytest.fixture(scope="session")
def seed_docs():
    from assistant.corpus import load_corpus

    docs, errors = load_corpus(CORPUS)
    assert not errors, errors
    return docs


@pytest.fixture(scope="session")
def seed_clauses(seed_docs):
    from assistant.index import clauses_of

    return clauses_of(seed_docs)[0]


@pytest.fixture(scope="session")
def hash_embedder():
    from assistant.embed import HashEmbedder

    return HashEmbedder(256)


@pytest.fixture(scope="session")
def hash_index(seed_docs, seed_clauses, hash_embedder):
    from assistant.backends.local import PolicyIndex
    from assistant.index import clauses_of

    index, _ = PolicyIndex.from_clauses(seed_clauses, hash_embedder, documents=clauses_of(seed_docs)[1])
    return index


@pytest.fixture(scope="session")
def hash_retriever(hash_index, hash_embedder):
    from assistant.config import Settings
    from assistant.retrieve import Retriever

    return Retriever.from_settings(hash_index, hash_embedder, Settings())


@pytest.fixture
def hash_settings(tmp_path):
    """Settings over a private copy of corpus/ with a hash-embedder index already built."""
    from assistant.config import Settings
    from assistant.embed import make_embedder
    from assistant.index import build_corpus

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    settings = Settings(
        corpus_dir=corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data", embedder="hash", hash_dim=256
    )
    build_corpus(corpus, settings.index_dir, make_embedder("hash", settings.model, 256), settings.chunk_max_chars)
    return settings


@pytest.fixture(scope="session")
def real_embedder():
    """The real model as the service runs it by default (settings.embed_backend)."""
    from assistant.config import Settings
    from assistant.embed import embedder_for

    return embedder_for(Settings(embedder="sentence-transformers", model="m3e-small", index_dir=ROOT / "index"))


@pytest.fixture(scope="session")
def real_index(tmp_path_factory, real_embedder):
    """The real model over the real seeds, built once per session (reuses ./index vectors when current)."""
    from assistant.corpus import corpus_hash
    from assistant.backends.local import PolicyIndex
    from assistant.index import build_corpus, stale_reason

    main_index = ROOT / "index"
    if stale_reason(main_index, corpus_hash(CORPUS), real_embedder.name, 600) is None:
        return PolicyIndex.load(main_index)
    out = tmp_path_factory.mktemp("real") / "index"
    build_corpus(CORPUS, out, real_embedder, 600)
    return PolicyIndex.load(out)


@pytest.fixture(scope="session")
def real_retriever(real_index, real_embedder):
    from assistant.retrieve import Retriever

    from assistant.config import Settings

    return Retriever.from_settings(real_index, real_embedder, Settings())


@pytest.fixture
def held_build():
    """held_build(monkeypatch) → (gate, entered): every index build waits on `gate` once it has set
    `entered`, so a test can prove queries are answered while a re-index is in progress."""
    import threading

    from assistant import index as index_mod

    def hold(monkeypatch):
        gate, entered = threading.Event(), threading.Event()
        real_build = index_mod.build_corpus

        def slow_build(*args, **kwargs):
            entered.set()
            assert gate.wait(30)
            return real_build(*args, **kwargs)

        monkeypatch.setattr(index_mod, "build_corpus", slow_build)
        return gate, entered

    return hold


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the session (tests/pg.py), removed afterwards; skipped, saying why,
    only where the server is not installed."""
    from pg import Cluster, unavailable

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    cluster = Cluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def database_url(postgres):
    """The URL of a fresh, empty PostgreSQL database."""
    return postgres.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path):
    """Where a store keeps its tables, once per engine: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "assistant.db"
    return request.getfixturevalue("database_url")
