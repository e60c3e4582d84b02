"""The learned re-rank (assistant/rerank.py), its training (assistant/evaluate/rerank_train.py) and the
query side (text.expand_query): features read what they say, the model orders by them, the retriever
falls back without one, training separates what the data separates, and the trained file fits the code."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.rerank import FEATURES, Candidate, LinearRanker, clause_form, features, for_model, read_question
from assistant.schema import Clause
from assistant.text import expand_query, token_weights


def _clause(cid: str, text: str, section: str = "一、支持措施", title: str = "关于支持企业发展的若干措施", region: str = "",
            ordinal: int = 1) -> Clause:
    return Clause(cid, cid.split("#")[0], title, region, section, text, ordinal=ordinal)


def _column(x: np.ndarray, name: str) -> np.ndarray:
    return x[:, FEATURES.index(name)]


def test_features_read_coverage_places_kind_and_answer_type():
    clauses = [
        _clause("a#一.1", "对新认定的高新技术企业给予30万元奖励。", ordinal=1),
        _clause("a#前言", "各区人民政府：现将有关事项通知如下。", section="前言", ordinal=0),
        _clause("b#表1.2", "上海证券交易所上市企业名单", section="表1 > 第2行", region="天津市", ordinal=3),
    ]
    forms = [clause_form(c, 3) for c in clauses]
    q = "上海市新认定的高新技术企业奖励多少钱？"
    question = read_question(q, token_weights(q))
    head = [Candidate(f, 0.03 - i * 0.001, 0.8 - i * 0.01, i + 1, 10.0 - i, i + 1) for i, f in enumerate(forms)]
    x = features(question, head, 0.7)
    assert x.shape == (3, len(FEATURES))
    assert _column(x, "cover_clause")[0] > _column(x, "cover_clause")[1]
    assert list(_column(x, "preamble")) == [0.0, 1.0, 0.0] and list(_column(x, "table_row")) == [0.0, 0.0, 1.0]
    # 上海 inside 上海证券交易所 is no evidence the clause concerns 上海 (data/not_places.txt)
    assert list(_column(x, "place_miss")) == [1.0, 1.0, 1.0] and not _column(x, "place_match").any()
    # the question asks an amount: the clause stating 30万元 has one, the others none
    assert list(_column(x, "answer_type")) == [1.0, 0.0, 0.0] and list(_column(x, "answer_type_missing")) == [0.0, 1.0, 1.0]
    assert _column(x, "doc_share")[0] == pytest.approx(2 / 3) and _column(x, "doc_best")[2] == pytest.approx(1 / 3)
    assert list(_column(x, "fused_rank")) == pytest.approx([1.0, 0.5, 1 / 3])
    # a place the clause does concern
    there = read_question("天津市上市企业名单", token_weights("天津市上市企业名单"))
    assert _column(features(there, head, 0.7), "place_match")[2] == 1.0


def test_a_linear_ranker_orders_by_its_coefficients_and_checks_its_record():
    ranker = LinearRanker(("lexical", "dense"), (0.0, 0.0), (1.0, 2.0), (1.0, 4.0), 20)
    x = np.zeros((2, len(FEATURES)))
    x[0, FEATURES.index("lexical")] = 1.0  # score 1
    x[1, FEATURES.index("dense")] = 1.0  # score 4 * 1 / 2 = 2
    assert list(ranker.score(x)) == pytest.approx([1.0, 2.0])
    with pytest.raises(ValueError, match="unknown features"):
        LinearRanker(("no_such_feature",), (0.0,), (1.0,), (1.0,), 20)
    with pytest.raises(ValueError, match="lengths differ"):
        LinearRanker(("lexical",), (0.0, 1.0), (1.0,), (1.0,), 20)


def test_the_shipped_model_fits_this_code():
    from assistant.rerank import table

    for name, record in table().items():
        ranker = LinearRanker.from_record(record)  # raises when features or lengths do not fit
        assert ranker.depth >= 2 and any(ranker.coef), name
        assert len(record["data"]["hash"]) == 16 and record["data"]["questions"] > 0
    assert for_model("no-such-model") is None


def test_retriever_uses_the_ranker_and_falls_back_without_one(hash_index, hash_embedder):
    from assistant.calibration import DEFAULT
    from assistant.config import Settings
    from assistant.retrieve import Retriever

    q = "全国中小企业股份转让系统挂牌交易 区财政补助"
    plain = Retriever.from_settings(hash_index, hash_embedder, Settings(), DEFAULT, ranker=None)
    assert plain.ranker is None  # the hash embedder has no trained model: the coverage re-rank
    # a ranker that only trusts the lexical side puts the best BM25 clause first
    lexical_only = LinearRanker(("lexical",), (0.0,), (1.0,), (1.0,), 20)
    learned = Retriever.from_settings(hash_index, hash_embedder, Settings(), DEFAULT, ranker=lexical_only)
    best_bm25 = hash_index.lexical_search(q, 1)[0][0]
    hits = learned.search(q, k=5)
    assert hits[0].clause.clause_id == hash_index.clauses[best_bm25].clause_id
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)  # scores follow the new order
    # the setting turns a trained model off
    off = Retriever.from_settings(hash_index, hash_embedder, Settings(learned_rerank=False), DEFAULT)
    assert off.ranker is None


def test_training_separates_what_the_features_separate():
    from assistant.evaluate import rerank_train as rt

    rng = np.random.default_rng(0)
    examples = []
    for i in range(60):
        x = rng.normal(size=(8, len(FEATURES)))
        gold = np.zeros(8, dtype=bool)
        gold[i % 8] = True
        x[gold, FEATURES.index("chars")] += 5.0  # the gold clause shares more of the question's wording
        examples.append(rt.Example(f"q{i}", "seed" if i % 2 else "ncp", i % 3, x, gold, base_hit=bool(gold[0])))
    mean, scale, coef = rt.train(examples, 1.0)
    assert np.argmax(np.abs(coef)) == FEATURES.index("chars") and coef[FEATURES.index("chars")] > 0
    rows = rt.cross_validate(examples, 1.0, 3)
    total = rt._total(rows, ["seed", "ncp"])
    assert total["seed"]["learned"] > 0.9 and total["ncp"]["learned"] > 0.9
    assert total["seed"]["coverage"] < 0.3  # the stand-in baseline (gold first) is right 1 time in 8
    # leaving the separating feature out loses what it carried
    blind = rt._total(rt.cross_validate(rt.without(examples, ("chars",)), 1.0, 3), ["seed", "ncp"])
    assert blind["seed"]["learned"] < 0.5


def test_the_page_and_the_file_are_written(tmp_path):
    from assistant.evaluate import rerank_train as rt

    rng = np.random.default_rng(1)
    examples = [rt.Example(f"q{i}", "seed", i % 2, rng.normal(size=(4, len(FEATURES))), np.array([True, False, False, False]), True)
                for i in range(10)]
    mean, scale, coef = rt.train(examples, 1.0)
    cv = {(20, 1.0): rt.cross_validate(examples, 1.0, 2)}
    record = {"features": list(FEATURES), "mean": list(mean), "scale": list(scale), "coef": list(coef), "depth": 20,
              "lambda": 1.0, "data": {"sets": ["a"], "hash": "0" * 16, "questions": 10}, "basis": "eval/reranker.md"}
    report = {"model": "m", "record": record, "cv": cv, "names": ["seed"],
              "ablation": {g: rt._total(cv[(20, 1.0)], ["seed"]) for g in rt.GROUPS}}
    rt.write(report, tmp_path / "reranker.md", tmp_path / "reranker.json")
    page = (tmp_path / "reranker.md").read_text(encoding="utf-8")
    assert "all (each fold held out)" in page and "heading path and title" in page
    saved = json.loads((tmp_path / "reranker.json").read_text(encoding="utf-8"))["models"]["m"]
    assert LinearRanker.from_record(saved).features == FEATURES


@pytest.mark.parametrize("question, added, absent", [
    ("节能改造省下一吨标煤能补几块钱？", ("补贴", "金额", "标准煤", "节能量"), ()),
    ("我想辞职，要提前多久跟公司说？", ("解除", "劳动合同"), ()),
    ("蓟州区有多少家中小企业实现创新转型？", (), ("小微企业",)),  # 小企业 inside the word 中小企业
    ("高新技术企业奖励多少？", (), ("补贴",)),  # nothing colloquial: the question as typed
])
def test_expand_query(question, added, absent):
    expanded = expand_query(question)
    assert expanded.startswith(question)
    tail = expanded[len(question):]
    assert all(t in tail for t in added), tail
    assert not any(t in tail for t in absent), tail
    assert expand_query(expanded) == expanded  # the added terms are not added twice


def test_expansion_reaches_the_lexical_side(hash_index, hash_embedder):
    from assistant.calibration import DEFAULT
    from assistant.config import Settings
    from assistant.retrieve import Retriever

    on = Retriever.from_settings(hash_index, hash_embedder, Settings(), DEFAULT, ranker=None)
    off = Retriever.from_settings(hash_index, hash_embedder, Settings(expand_query=False), DEFAULT, ranker=None)
    q = "省下一吨标煤能补几块钱"
    ids_on = [h.clause.clause_id for h in on.search(q, k=3, mode="bm25")]
    ids_off = [h.clause.clause_id for h in off.search(q, k=3, mode="bm25")]
    assert "jizhou-2018#三.(四)" in ids_on  # 节能改造 … 每吨标准煤 …
    assert ids_on != ids_off
