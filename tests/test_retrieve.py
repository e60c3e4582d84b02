"""Retrieve stage: fusion, filters, odd queries (hash embedder); the real model on the seeds (marked)."""

from __future__ import annotations

import pytest

from assistant.backends.local import rrf
from assistant.schema import QueryError


def test_rrf_pure():
    fused = rrf([[1, 2, 3], [3, 1]], k=60)
    assert [d for d, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert rrf([]) == []


def test_hybrid_finds_exact_wording(hash_retriever):
    hits = hash_retriever.search("全国中小企业股份转让系统挂牌交易 区财政补助", k=5)
    assert "jizhou-2018#三.(五).2" in [h.clause.clause_id for h in hits]
    assert all(h.score > 0 for h in hits)


def test_synonyms_reach_lexical_side(hash_retriever):
    hits = hash_retriever.search("新三板挂牌 补助", k=5, mode="bm25")
    ids = [h.clause.clause_id for h in hits]
    assert "jizhou-2018#三.(五).2" in ids  # 新三板 → 全国中小企业股份转让系统
    assert "lutai-zjtx#四.(三).2" in ids  # which says 新三板 itself


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_filters(hash_retriever, mode):
    hits = hash_retriever.search("高新技术企业 奖励", k=10, region="宝坻", mode=mode)
    assert hits and all(h.clause.region == "天津市宝坻区" for h in hits)
    hits = hash_retriever.search("高新技术企业 奖励", k=10, doc_id="lutai-zjtx", mode=mode)
    assert hits and all(h.clause.doc_id == "lutai-zjtx" for h in hits)
    hits = hash_retriever.search("研发机构", k=10, department="区科委", mode=mode)
    assert hits and all("区科委" in h.clause.department for h in hits)
    assert hash_retriever.search("奖励", region="北京市海淀区", mode=mode) == []


def test_odd_queries(hash_retriever, hash_index):
    with pytest.raises(QueryError, match="empty"):
        hash_retriever.search("   ")
    with pytest.raises(QueryError, match="k must be"):
        hash_retriever.search("奖励", k=0)
    with pytest.raises(QueryError, match="mode"):
        hash_retriever.search("奖励", mode="magic")
    with pytest.raises(QueryError, match="too long"):
        hash_retriever.search("奖" * 2000)
    assert hash_retriever.search("？？！！。。") == []
    assert hash_retriever.search("的了吗呢") == []  # only stop words
    unknown = hash_retriever.search("xyzzy qwertz", k=3)  # unknown tokens: dense still answers, no crash
    assert len(unknown) <= 3
    everything = hash_retriever.search("企业", k=10_000)
    assert len(everything) == min(hash_retriever.max_k, len(hash_index))


def test_hit_record_fields(hash_retriever):
    record = hash_retriever.search("节能改造 每吨标准煤", k=1)[0].to_dict()
    assert set(record) == {"clause_id", "doc_id", "doc_title", "region", "section", "text", "department", "score"}


@pytest.mark.model
def test_real_model_high_tech_reward(real_retriever):
    hits = real_retriever.search("首次获批的国家高新技术企业有什么奖励", k=5)
    ids = [h.clause.clause_id for h in hits]
    texts = [h.clause.text for h in hits]
    assert any("30—50万元" in t for t in texts[:3]), ids
    assert any("对首次获批的国家高新技术企业给予奖励" in t for t in texts[:5]), ids


@pytest.mark.model
@pytest.mark.parametrize(
    "query, expected",
    [
        ("蓟州区企业在新三板挂牌区财政补助多少", "jizhou-2018#三.(五).2"),
        ("节能改造每吨标准煤补贴多少钱", "jizhou-2018#三.(四)"),
        ("宝坻区2019年要新发展多少家国家高新技术企业", "baodi-2019#二"),
        ("专精特新小巨人企业奖励多少", "lutai-zjtx#四.(三).2"),
        ("西青区促进企业专精特新发展 单项冠军", "xiqing-2017#二.(一).4"),
        ("融资担保风险分担比例 2:2:4:2", "tianjin-2022#二.(四)"),
    ],
)
def test_real_model_finds_clause(real_retriever, query, expected):
    ids = [h.clause.clause_id for h in real_retriever.search(query, k=5)]
    assert expected in ids, ids


def test_weighted_rrf():
    fused = rrf([[1, 2], [2, 1]], k=60, weights=[0.5, 1.0])
    assert [d for d, _ in fused] == [2, 1]  # the lexical ranking wins a tie of ranks
    assert fused[0][1] == pytest.approx(0.5 / 62 + 1 / 61)
