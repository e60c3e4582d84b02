"""Evaluation stage: each metric on a hand-made case, the labelling script, and an end-to-end run on a tiny corpus."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from assistant import evaluate as ev
from assistant.schema import Clause

ROOT = Path(__file__).resolve().parent.parent


def test_ranking_metrics_on_known_case():
    ranked, rel = ["c", "a", "b"], {"a"}
    assert ev.recall_at_k(ranked, rel, 1) == 0
    assert ev.recall_at_k(ranked, rel, 3) == 1
    assert ev.mrr_at_k(ranked, rel, 10) == 0.5
    assert ev.ndcg_at_k(ranked, rel, 3) == pytest.approx(1 / math.log2(3))
    assert ev.mrr_at_k(["x", "y"], rel) == 0
    # two relevant, one found at rank 1: DCG 1, IDCG 1 + 1/log2(3)
    assert ev.ndcg_at_k(["a", "x", "y"], {"a", "b"}, 3) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ev.recall_at_k(["a", "x", "b"], {"a", "b"}, 1) == 0.5


def test_quote_ranking_counts_a_quote_once_and_ignores_spaces():
    passages = ["无关内容", "给予 30—50 万元奖励，另有", "再次 给予30—50万元奖励", "区财政补助500万元"]
    ranked = ev.quote_ranking(passages, ["给予30—50万元奖励", "补助500万元"])
    assert ranked[1] == 0 and ranked[3] == 1
    assert ev.recall_at_k(ranked, {0, 1}, 3) == 0.5
    assert ev.recall_at_k(ranked, {0, 1}, 4) == 1.0
    assert ev.mrr_at_k(ranked, {0, 1}) == 0.5


def test_answer_metrics():
    assert ev.fact_accuracy("奖励 30—50万元，补助５０%", ["30—50万元", "50%"]) == 1.0
    assert ev.fact_accuracy("奖励30万元", ["30—50万元", "30万元"]) == 0.5
    assert ev.fact_accuracy("任何", []) == 1.0
    assert ev.citation_precision(["a", "b"], ["a"]) == 0.5
    assert ev.citation_recall(["a", "b"], ["a", "c", "d", "e"]) == 0.25
    assert ev.citation_precision([], ["a"]) is None
    assert ev.citation_recall(["a"], []) is None
    r = ev.refusal_scores([True, True, False, False], [True, False, True, False])
    assert r["precision"] == 0.5 and r["recall"] == 0.5
    assert ev.refusal_scores([False], [False])["precision"] is None


def test_percentiles_and_tags():
    assert ev.percentile([1, 2, 3, 4, 5], 50) == 3
    assert ev.percentile([0, 10], 95) == pytest.approx(9.5)
    assert ev.percentile([], 50) is None
    rows = [{"tags": ["a", "b"], "v": 1.0}, {"tags": ["a"], "v": 0.0}, {"tags": ["b"], "v": None}]
    assert ev.by_tag(rows, "v") == {"a": 0.5, "b": 1.0}


def test_naive_windows_overlap():
    w = ev.windows("x" * 1000, 500, 50)
    assert [len(p) for p in w] == [500, 500, 100]
    assert ev.windows("短", 500, 50) == ["短"]


def _clause(cid, text, ordinal):
    return Clause(clause_id=cid, doc_id="d", doc_title="T", region="R", section="", text=text, ordinal=ordinal)


def test_label_relevant_including_split_quote():
    clauses = [_clause("d#1", "一、对首次获批的企业给予\n30万元", 1), _clause("d#2", "奖励。二、其他", 2), _clause("d#3", "无关", 3)]
    assert ev.relevant_clauses(clauses, ["首次获批的企业"]) == ["d#1"]
    assert ev.relevant_clauses(clauses, ["给予30万元奖励"]) == ["d#1", "d#2"]
    assert ev.relevant_clauses(clauses, ["不存在"]) == []
    sys.path.insert(0, str(ROOT / "eval"))
    try:
        import label
    finally:
        sys.path.pop(0)
    items, unmatched = label.label_items(
        [{"id": "a", "gold_quotes": ["无关"], "relevant": [], "tags": ["x"]}, {"id": "b", "gold_quotes": ["缺失"], "relevant": []}], clauses
    )
    assert items[0] == {"id": "a", "gold_quotes": ["无关"], "relevant": ["d#3"], "tags": ["x"]}
    assert unmatched == ["b"]


TINY_DOC = """关于支持企业创新的若干措施

一、高新技术企业
（一）对首次认定的国家高新技术企业给予30万元奖励。
（二）对重新认定的高新技术企业给予10万元奖励。
二、上市挂牌
（一）对在全国中小企业股份转让系统挂牌的企业给予150万元补助。
（二）对在上海证券交易所上市的企业给予500万元补助。
三、保障措施
（一）领导小组办公室设在区工信委，负责日常工作。
"""


def test_evaluate_end_to_end_tiny(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"doc_id": "tiny", "title": "支持企业创新的若干措施", "text": TINY_DOC}, ensure_ascii=False) + "\n", encoding="utf-8")
    qs = [
        {"id": "t-001", "question": "首次认定的国家高新技术企业奖励多少？", "gold_quotes": ["对首次认定的国家高新技术企业给予30万元奖励"], "relevant": [], "facts": ["30万元"], "refuse": False, "tags": ["amount"]},
        {"id": "t-002", "turns": ["新三板挂牌有补助吗？", "那在上交所上市呢？"], "gold_quotes": ["对在上海证券交易所上市的企业给予500万元补助"], "relevant": [], "facts": ["500万元"], "refuse": False, "tags": ["multi_turn"]},
        {"id": "t-003", "question": "今天天气怎么样？", "gold_quotes": [], "relevant": [], "facts": [], "refuse": True, "tags": ["refusal"]},
    ]
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in qs), encoding="utf-8")
    out = tmp_path / "out"
    from assistant.config import Settings

    settings = Settings(embedder="hash", hash_dim=256, data_dir=tmp_path / "data", index_dir=tmp_path / "index")
    report = ev.evaluate(questions, out, corpus=corpus, embedder_kind="hash", settings=settings, progress=False)
    for name in ("report.json", "report.md", "recall_at_k.png"):
        assert (out / name).exists(), name
    assert set(report["retrieval"]) == set(ev.MODES)
    assert report["meta"]["retrieval_items"] == 2
    for m in report["retrieval"].values():
        for key in ("recall@1", "recall@3", "recall@10", "mrr@10", "ndcg@10"):
            assert 0 <= m[key] <= 1
        assert m["recall@1"] <= m["recall@3"] <= m["recall@10"]
    assert report["retrieval"]["bm25"]["recall@10"] == 1.0
    a = report["answers"]
    assert 0 <= a["fact_accuracy"] <= 1 and a["latency_p50_ms"] > 0
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in data["items"]] == ["t-001", "t-002", "t-003"]
    assert data["items"][0]["relevant"]


def test_cli_no_answers(tmp_path, monkeypatch):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"doc_id": "tiny", "title": "若干措施", "text": TINY_DOC}, ensure_ascii=False) + "\n", encoding="utf-8")
    q = {"id": "t-001", "question": "办公室设在哪里？", "gold_quotes": ["领导小组办公室设在区工信委"], "relevant": [], "facts": ["区工信委"], "refuse": False, "tags": ["place"]}
    (tmp_path / "q.jsonl").write_text(json.dumps(q, ensure_ascii=False) + "\n", encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    rc = ev.cli("eval", ["--corpus", str(corpus), "--questions", str(tmp_path / "q.jsonl"), "--out", str(tmp_path / "o"),
                         "--embedder", "hash", "--no-answers", "--modes", "bm25", "naive"])
    assert rc == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))
    assert set(report["retrieval"]) == {"bm25", "naive"} and "answers" not in report
