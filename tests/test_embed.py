"""Embed stage: whole-build length-sorted embedding, backend selection and fallback; (marked `model`) the
ONNX Runtime backends against torch on the real seeds."""

from __future__ import annotations

import numpy as np
import pytest


class Recording:
    """The hash embedder, remembering the texts of every encode call."""

    def __init__(self):
        from assistant.embed import HashEmbedder

        self.inner = HashEmbedder(64)
        self.name, self.dim = self.inner.name, self.inner.dim
        self.calls: list[list[str]] = []

    def encode(self, texts, batch_size=32, progress=False):
        self.calls.append(list(texts))
        return self.inner.encode(texts)


def test_build_embeds_each_text_once_longest_first(seed_clauses):
    from dataclasses import replace

    from assistant.backends.local import PolicyIndex
    from assistant.text import normalize

    variants = [replace(c, clause_id=f"{c.clause_id}~v", text=c.text[: len(c.text) // 2]) for c in seed_clauses]
    clauses = list(seed_clauses) + variants + [replace(seed_clauses[3], clause_id="copy#1")]  # one text twice
    assert len({c.index_text() for c in clauses}) == len(clauses) - 1 > 256  # more than one progress slice
    rec = Recording()
    index, stats = PolicyIndex.from_clauses(clauses, rec, batch_size=4)
    seen = [t for call in rec.calls for t in call]
    assert len(rec.calls) > 1  # slices, for progress
    assert [len(t) for t in seen] == sorted((len(t) for t in seen), reverse=True)  # one global order
    assert len(seen) == len(set(seen)) == len(clauses) - 1
    assert stats.embedded == len(clauses)
    expected = rec.inner.encode([normalize(c.index_text()) for c in clauses])
    assert np.allclose(index.dense.reconstruct_n(0, len(clauses)), expected, atol=1e-6)  # rows restored


def test_cached_vectors_reused_and_wrong_dimension_reembedded(seed_clauses):
    from assistant.backends.local import PolicyIndex

    rec = Recording()
    first, _ = PolicyIndex.from_clauses(seed_clauses[:10], rec)
    cached = first.vectors_by_hash()
    cached[first.hashes[0]] = np.ones(3, dtype=np.float32)  # from another model
    rec.calls.clear()
    second, stats = PolicyIndex.from_clauses(seed_clauses[:12], rec, cached=cached)
    assert stats.embedded == 3  # two new clauses and the one with a wrong-sized vector
    assert np.allclose(second.dense.reconstruct(0), first.dense.reconstruct(0), atol=1e-6)


def test_unknown_backend_rejected():
    from assistant.embed import load_embedder

    with pytest.raises(ValueError, match="backend"):
        load_embedder("sentence-transformers", backend="tensorrt")


def test_onnx_failure_falls_back_to_torch(monkeypatch, caplog):
    import assistant.embed as embed

    class Broken:
        def __init__(self, *a, **k):
            raise ImportError("No module named 'onnxruntime'")

    class Torch:
        backend, name, dim = "torch", "m3e-small", 512

        def __init__(self, model):
            pass

    monkeypatch.setattr(embed, "OnnxEmbedder", Broken)
    monkeypatch.setattr(embed, "SentenceTransformerEmbedder", Torch)
    with caplog.at_level("WARNING", logger="assistant.embed"):
        e = embed.load_embedder("sentence-transformers", backend="onnx-int8")
    assert isinstance(e, Torch)
    assert "onnx-int8 unavailable" in caplog.text and "onnxruntime" in caplog.text


def test_backend_setting(monkeypatch, tmp_path):
    from pydantic import ValidationError

    from assistant.config import Settings
    from assistant.embed import onnx_cache_dir

    monkeypatch.setenv("ASSISTANT_EMBED_BACKEND", "onnx-int8")
    assert Settings().embed_backend == "onnx-int8"
    monkeypatch.setenv("ASSISTANT_EMBED_BACKEND", "gpu")
    with pytest.raises(ValidationError):
        Settings()
    assert onnx_cache_dir(tmp_path / "index") == tmp_path / ".onnx-cache"


def test_mean_pooling_required(tmp_path):
    import json

    from assistant.embed import _check_mean_pooling

    _check_mean_pooling(str(tmp_path))  # no sentence-transformers config: mean pooling, as m3e-small
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    (tmp_path / "modules.json").write_text(json.dumps([
        {"type": "sentence_transformers.models.Transformer", "path": ""},
        {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"},
    ]))
    with pytest.raises(ValueError, match="mean"):
        _check_mean_pooling(str(tmp_path))


# -- the real model ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.mark.model
@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_embedder_matches_torch(backend, onnx_cache, seed_clauses):
    from assistant.embed import INT8_SUFFIX, OnnxEmbedder, make_embedder
    from assistant.text import normalize

    texts = [normalize(c.index_text()) for c in seed_clauses[:40]] + ["专精特新", "那上市呢？"]
    onnx = OnnxEmbedder("m3e-small", quantized=backend == "onnx-int8", cache_dir=onnx_cache)
    torch = make_embedder("sentence-transformers", "m3e-small", backend="torch")
    assert onnx.dim == torch.dim == 512
    a, b = onnx.encode(texts, batch_size=8), torch.encode(texts)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    cos = (a * b).sum(axis=1)
    if backend == "onnx":
        assert onnx.name == "m3e-small" and cos.min() > 0.9999  # same vectors: same name, cache shared
    else:
        assert onnx.name == "m3e-small" + INT8_SUFFIX and cos.mean() > 0.99 and cos.min() > 0.98


@pytest.mark.model
def test_onnx_export_made_once(onnx_cache):
    from assistant.embed import export_onnx, resolve_model_path

    path = resolve_model_path("m3e-small")
    files = export_onnx(path, onnx_cache)
    stamp = {k: f.stat().st_mtime_ns for k, f in files.items()}
    again = export_onnx(path, onnx_cache)
    assert {k: f.stat().st_mtime_ns for k, f in again.items()} == stamp
    assert [p.name for p in onnx_cache.iterdir()] == [files["fp32"].parent.name]  # no temp folders left


@pytest.mark.model
def test_int8_index_never_mixes_fp32_vectors(onnx_cache, hash_settings, tmp_path):
    from assistant.corpus import corpus_hash
    from assistant.backends.local import read_manifest
    from assistant.embed import INT8_SUFFIX, OnnxEmbedder
    from assistant.index import build_corpus, stale_reason

    int8 = OnnxEmbedder("m3e-small", quantized=True, cache_dir=onnx_cache)
    fp32 = OnnxEmbedder("m3e-small", quantized=False, cache_dir=onnx_cache)
    corpus, out = hash_settings.corpus_dir, tmp_path / "index"
    _, first, _ = build_corpus(corpus, out, fp32, 600, timeout_s=0)
    assert read_manifest(out)["model"] == "m3e-small"
    assert stale_reason(out, corpus_hash(corpus), int8.name, 600).startswith("model changed")
    _, second, _ = build_corpus(corpus, out, int8, 600, timeout_s=0)
    assert read_manifest(out)["model"] == "m3e-small" + INT8_SUFFIX
    assert second.embedded == second.clauses == first.clauses  # nothing reused from the fp32 index
