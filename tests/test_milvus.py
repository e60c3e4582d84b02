"""Milvus backend on milvus-lite (the same client code as a Milvus cluster, a file URI instead of a
URL): one row per clause, filters as expressions, the weighted fusion, routes as with FAISS, and a
re-index that swaps the alias while queries keep being answered."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _questions(n: int = 60) -> list[str]:
    items = [json.loads(line) for line in (ROOT / "eval" / "testset.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    return [i["question"] for i in items if i.get("question")][:n]


@pytest.fixture
def both(tmp_path, hash_embedder):
    """Settings for a FAISS and a Milvus index of the same private copy of corpus/, both built."""
    from assistant.backends import target_of
    from assistant.config import Settings
    from assistant.index import build_corpus

    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    common = dict(corpus_dir=corpus, embedder="hash", hash_dim=256, admin_token=TOKEN)
    faiss = Settings(index_dir=tmp_path / "index", data_dir=tmp_path / "data-f", **common)
    milvus = Settings(index_dir=tmp_path / "no-faiss-here", data_dir=tmp_path / "data-m", backend="milvus",
                      milvus_uri=str(tmp_path / "milvus" / "policy.db"), **common)
    for s in (faiss, milvus):
        build_corpus(corpus, target_of(s), hash_embedder, s.chunk_max_chars)
    return faiss, milvus


def test_one_row_per_clause_and_records_round_trip(both):
    from assistant.backends import target_of

    faiss, milvus = both
    local, remote = target_of(faiss).load(), target_of(milvus).load()
    assert remote.backend == "milvus" and not Path(milvus.index_dir).exists()  # no FAISS files involved
    assert remote.count() == len(remote) == len(local) == remote.manifest["counts"]["clauses"]
    assert [c.to_dict() for c in remote.clauses] == [c.to_dict() for c in local.clauses]
    assert remote.documents == local.documents
    assert remote.hashes == local.hashes
    assert remote.idf() == pytest.approx(local.idf())


def test_released_collections_load_again(both):
    """After a restart Milvus holds collections released; opening the index loads them again."""
    from assistant.backends import target_of

    _, milvus = both
    target = target_of(milvus)
    gen = target.generation()
    for name in (gen, gen + "_meta"):
        target.client.release_collection(name)
    assert target.read_manifest()["counts"]["clauses"] == len(target.load())


def test_build_is_incremental_and_reports_current(both, hash_embedder):
    from assistant.backends import target_of
    from assistant.corpus import corpus_hash
    from assistant.index import build_corpus, stale_reason

    _, milvus = both
    target = target_of(milvus)
    assert stale_reason(target, corpus_hash(milvus.corpus_dir), hash_embedder.name, milvus.chunk_max_chars) is None
    (milvus.corpus_dir / "新增政策.txt").write_text("关于支持企业发展的若干措施\n一、对新认定的企业给予20万元奖励。\n", encoding="utf-8")
    reason, stats, _ = build_corpus(milvus.corpus_dir, target, hash_embedder, milvus.chunk_max_chars)
    assert reason == "corpus changed" and stats.reused == 5 and stats.chunked == 1
    assert stats.embedded < stats.clauses  # the unchanged clauses' vectors came from the collection
    assert target.load().count() == stats.clauses


def test_dense_search_and_filters_match_faiss(both, hash_embedder):
    import datetime as dt

    from assistant.backends import target_of
    from assistant.schema import Filters

    faiss, milvus = both
    local, remote = target_of(faiss).load(), target_of(milvus).load()
    for q in _questions(20):
        v = hash_embedder.encode([q])[0]
        got, want = remote.dense_search(v, 10), local.dense_search(v, 10)
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)  # rows may swap only on ties
        assert got[0][0] == want[0][0] or got[0][1] == pytest.approx(got[1][1], abs=1e-5)
    v = hash_embedder.encode(["高新技术企业奖励"])[0]
    for f in (Filters(region="蓟州"), Filters(doc_id="xiqing-2017"), Filters(department="科技"),
              Filters(region="天津市"), Filters(current_on=dt.date(2026, 1, 1)), Filters(region="没有这个地方")):
        want = {r for r, _ in local.dense_search(v, 200, f)}
        got = {r for r, _ in remote.dense_search(v, 200, f)}
        assert got == want, f
    assert remote.dense_search(v, 5, Filters(region="没有这个地方")) == []
    # a region filter that also admits documents without a region
    f = Filters(region="蓟州", unknown_region=True)
    assert {r for r, _ in remote.dense_search(v, 200, f)} == {r for r, _ in local.dense_search(v, 200, f)}


def test_weighted_fusion_through_milvus_rrf(both, hash_embedder):
    """Milvus' RRF takes no weights; repeating requests p:q must give exactly the weighted RRF of
    Milvus' own two rankings, on the same score scale as the local fusion."""
    from assistant.backends import target_of, weight_ratio
    from assistant.backends.local import rrf
    from assistant.text import tokenize

    assert weight_ratio(0.5) == (1, 2) and weight_ratio(1.0) == (1, 1) and weight_ratio(2.0) == (2, 1)
    _, milvus = both
    remote = target_of(milvus).load()
    for q in _questions(15):
        v = hash_embedder.encode([q])[0]
        tokens = tokenize(q)
        dense = remote.dense_search(v, 50)
        lexical = remote.lexical_search(q, 50, tokens=tokens)
        want = rrf([[r for r, _ in dense], [r for r, _ in lexical]], 60, [0.5, 1.0])
        got, _, _ = remote.hybrid_search(v, q, tokens, 50, None, 0.5, 60)
        assert [s for _, s in got[:10]] == pytest.approx([s for _, s in want[:10]], rel=1e-5)
        assert {r for r, _ in got[:5]} == {r for r, _ in want[:5]} or got[4][1] == pytest.approx(got[5][1])


def test_hybrid_results_close_to_faiss(both, hash_embedder):
    """BM25 is computed by Milvus' own analyzer (jieba with the project's dictionary), so lexical
    ranks may differ slightly from bm25s; the fused top results must stay close."""
    from assistant.backends import target_of
    from assistant.retrieve import Retriever

    faiss, milvus = both
    rl = Retriever.from_settings(target_of(faiss).load(), hash_embedder, faiss)
    rm = Retriever.from_settings(target_of(milvus).load(), hash_embedder, milvus)
    questions = _questions(60)
    same_first = overlap = 0
    for q in questions:
        a = [h.clause.clause_id for h in rl.search(q, k=5)]
        hits = rm.search(q, k=5)
        b = [h.clause.clause_id for h in hits]
        same_first += a[:1] == b[:1]
        overlap += len(set(a) & set(b))
        assert all(h.dense_score is not None for h in hits)  # the answer stage's refusal reads it
    assert same_first / len(questions) >= 0.9
    assert overlap / (5 * len(questions)) >= 0.85


def test_routes_behave_as_with_faiss(both):
    from assistant.api import create_app

    faiss, milvus = both
    with TestClient(create_app(faiss)) as cf, TestClient(create_app(milvus)) as cm:
        for path in ("/api/health", "/api/documents", "/api/documents/xiqing-2017",
                     "/api/clauses/" + quote("xiqing-2017#二.(一)", safe=""), "/api/documents/nope"):
            a, b = cf.get(path), cm.get(path)
            assert a.status_code == b.status_code, path
            assert a.json() == b.json(), path
        for body in ({"query": "高新技术企业奖励", "k": 5, "region": "蓟州"}, {"query": "融资担保", "k": 3, "doc_id": "tianjin-2022"},
                     {"query": "", "k": 3}, {"query": "新三板", "k": 0}, {"query": "奖励", "k": 5, "only_current": True}):
            a, b = cf.post("/api/search", json=body), cm.post("/api/search", json=body)
            assert a.status_code == b.status_code, body
            if a.status_code == 200:
                ha, hb = a.json()["hits"], b.json()["hits"]
                if ha:
                    assert set(hb[0]) == set(ha[0])
                else:
                    assert hb == []
                assert all(h["doc_id"] == body.get("doc_id", h["doc_id"]) for h in hb)
                if body.get("region"):
                    assert all("蓟州" in h["region"] for h in hb)
        for msg in ("首次获批的国家高新技术企业有什么奖励？", "蓟州区对新三板挂牌企业补贴多少？", "今天天气怎么样？"):
            a, b = cf.post("/api/chat", json={"message": msg}).json(), cm.post("/api/chat", json={"message": msg}).json()
            assert a["refused"] == b["refused"], msg
            assert [c["clause_id"] for c in a["citations"]][:1] == [c["clause_id"] for c in b["citations"]][:1], msg
        m = {"region": "蓟州", "profile": "首次获批的国家高新技术企业，计划在新三板挂牌"}
        a, b = cf.post("/api/match", json=m).json(), cm.post("/api/match", json=m).json()
        assert {x["clause_id"] for x in a["matches"]} == {x["clause_id"] for x in b["matches"]}


def test_reindex_swaps_alias_while_answering(both, monkeypatch, held_build):
    """Queries keep being answered during a re-index; afterwards the alias points at a new collection,
    the old one is gone, and a second process still bound to it follows the swap."""
    from assistant.api import create_app
    from assistant.backends import target_of
    from assistant.pipeline import Assistant

    _, milvus = both
    target = target_of(milvus)
    old_gen = target.generation()
    replica = Assistant(milvus)  # another API replica on the same collection
    assert replica.index.generation == old_gen
    (milvus.corpus_dir / "无人机政策.txt").write_text(
        "关于促进无人机产业发展的若干措施\n一、对新落户的无人机整机制造企业，给予一次性落户奖励80万元。\n", encoding="utf-8")
    gate, entered = held_build(monkeypatch)
    with TestClient(create_app(milvus)) as client:
        assert client.post("/api/admin/reindex", headers=AUTH).status_code == 202
        assert entered.wait(10)
        during = client.post("/api/chat", json={"message": "首次获批的国家高新技术企业有什么奖励？"})
        assert during.status_code == 200 and not during.json()["refused"]
        gate.set()
        for _ in range(600):
            status = client.get("/api/admin/reindex", headers=AUTH).json()
            if status["state"] != "running":
                break
            threading.Event().wait(0.05)
        assert status["state"] == "done", status
        hits = client.post("/api/search", json={"query": "无人机整机制造企业落户奖励", "k": 3}).json()["hits"]
        assert "80万元" in hits[0]["text"]
    new_gen = target.generation()
    assert new_gen != old_gen
    assert not target.client.has_collection(old_gen) and target._generations() == [new_gen]
    # the replica's generation was dropped under it: its next question reloads and still answers
    answer = replica.ask("无人机整机制造企业落户奖励多少？")
    assert replica.index.generation == new_gen and not answer.refused
    assert any("80万元" in c.quote for c in answer.citations)


def test_bad_uri_is_a_clear_error(tmp_path):
    from assistant.backends.milvus import MilvusTarget
    from assistant.schema import BackendError

    with pytest.raises(BackendError, match=r"\.db"):
        MilvusTarget(str(tmp_path / "policy.sqlite"))
    with pytest.raises(BackendError, match="collection name"):
        MilvusTarget(str(tmp_path / "p.db"), alias="bad-name; drop")
    assert MilvusTarget(str(tmp_path / "empty.db")).read_manifest() is None


def test_filter_values_cannot_break_the_expression(both, hash_embedder):
    from assistant.backends import target_of
    from assistant.backends.milvus import expression
    from assistant.schema import Filters

    _, milvus = both
    remote = target_of(milvus).load()
    hostile = 'x" or region like "%'
    assert '"' not in expression(Filters(region=hostile), [])[len('region like "'):-1]
    v = hash_embedder.encode(["奖励"])[0]
    assert remote.dense_search(v, 10, Filters(region=hostile)) == []
