"""Corpus stage, near-duplicates: republished copies (traditional characters, variant characters,
whitespace and punctuation noise) are found and dropped before chunking; different documents on
the same topic are not. No model is used."""

from __future__ import annotations

import itertools
import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from assistant.dedup import THRESHOLD, _jaccard, _shingles, find_duplicates, fingerprint_text, similar_pairs
from assistant.index import clauses_of
from assistant.schema import Document

POLICY = (
    "关于支持中小企业创新发展的若干措施\n"
    "为进一步支持中小企业创新发展，现将有关事项通知如下：\n"
    "一、对新认定的国家高新技术企业，给予一次性奖励30万元；对通过复审的，给予10万元奖励。\n"
    "二、企业研发费用按规定加计扣除后的余额，可在以后年度结转抵扣，最长不超过五年。\n"
    "三、对在新三板挂牌的企业，分阶段给予总额不超过150万元的补助。\n"
    "四、本办法自发布之日起施行，由区科技局负责解释，有效期三年。\n"
)
# The same text as a traditional-character site republishes it.
POLICY_TRADITIONAL = (
    "關於支持中小企業創新發展的若干措施\n"
    "為進一步支持中小企業創新發展，現將有關事項通知如下：\n"
    "一、對新認定的國家高新技術企業，給予一次性獎勵30萬元；對通過複審的，給予10萬元獎勵。\n"
    "二、企業研發費用按規定加計扣除後的餘額，可在以後年度結轉抵扣，最長不超過五年。\n"
    "三、對在新三板掛牌的企業，分階段給予總額不超過150萬元的補助。\n"
    "四、本辦法自發布之日起施行，由區科技局負責解釋，有效期三年。\n"
)
# Another policy on the same topic, with the same structure and many of the same words.
OTHER_POLICY = (
    "关于促进中小企业创新发展的实施意见\n"
    "为促进中小企业创新发展，结合本区实际，提出如下意见：\n"
    "一、对首次认定的国家高新技术企业，给予一次性奖励20万元；对引进的高新技术企业，给予50万元奖励。\n"
    "二、企业购置研发设备的，按设备购置费用的10%给予补贴，单个企业每年最高不超过100万元。\n"
    "三、对在主板上市的企业，分阶段给予总额不超过300万元的奖励。\n"
    "四、本意见自印发之日起施行，由区发展改革委负责解释。\n"
)


def doc(doc_id: str, text: str, title: str = "关于支持中小企业创新发展的若干措施", **meta) -> Document:
    return Document(doc_id=doc_id, title=title, text=text, source=f"{doc_id}.txt", **meta)


def test_fingerprint_unifies_script_variants_and_noise():
    assert fingerprint_text(POLICY_TRADITIONAL) == fingerprint_text(POLICY)
    assert fingerprint_text("研发费用加计扣除后的馀额") == fingerprint_text("研发费用加计扣除后的余额")
    assert fingerprint_text("补助 150 万元；\n（区科技局负责）") == fingerprint_text("补助150万元(区科技局负责)")
    assert fingerprint_text("ＡＢＣ１２３") == "abc123"  # NFKC full-width forms
    assert fingerprint_text("财政部&ensp;税务总局") == fingerprint_text("财政部 税务总局")
    assert fingerprint_text("，。！？ \n") == ""


def test_identical_texts():
    assert find_duplicates([doc("a", POLICY), doc("b", POLICY)]) == {"a": ["b"]}


def test_traditional_copy():
    assert find_duplicates([doc("simp", POLICY), doc("trad", POLICY_TRADITIONAL)]) == {"simp": ["trad"]}


def test_variant_character_copy():
    variant = POLICY.replace("余额", "馀额")
    assert variant != POLICY
    assert find_duplicates([doc("a", POLICY), doc("b", variant)]) == {"a": ["b"]}


def test_whitespace_and_punctuation_noise():
    noisy = POLICY.replace("，", ", ").replace("：", ":\n\n").replace("30万元", "30 万元").replace("\n", "\n\u3000\u3000")
    assert find_duplicates([doc("a", POLICY), doc("b", noisy)]) == {"a": ["b"]}


def test_republication_with_a_header_line():
    # Sites add a date line: still a near-duplicate, not identical. (On a text
    # this short, 170 characters, a 20-character header already falls below the threshold.)
    copy = "发布日期：2020-02-06\n" + POLICY
    assert fingerprint_text(copy) != fingerprint_text(POLICY)
    assert find_duplicates([doc("a", POLICY), doc("b", copy)]) == {"a": ["b"]}


def test_different_documents_on_the_same_topic_stay_apart():
    assert find_duplicates([doc("a", POLICY), doc("b", OTHER_POLICY, title="关于促进中小企业创新发展的实施意见")]) == {}
    sim = _jaccard(_shingles(fingerprint_text(POLICY)), _shingles(fingerprint_text(OTHER_POLICY)))
    assert sim < 0.5 < THRESHOLD


def test_kept_copy_prefers_title_metadata_then_simplified_then_order():
    assert find_duplicates([doc("first", POLICY), doc("second", POLICY)]) == {"first": ["second"]}
    assert find_duplicates([doc("trad", POLICY_TRADITIONAL), doc("simp", POLICY)]) == {"simp": ["trad"]}
    dated = doc("dated", POLICY_TRADITIONAL, date="2020-02-06")
    assert find_duplicates([doc("plain", POLICY), dated]) == {"dated": ["plain"]}
    untitled = doc("untitled", POLICY, title="untitled", date="2020-02-06")  # title fell back to the file name
    assert find_duplicates([untitled, doc("titled", POLICY)]) == {"titled": ["untitled"]}


def test_clauses_of_drops_duplicates_and_records_them():
    docs = [
        doc("a", POLICY),
        doc("a-trad", POLICY_TRADITIONAL),
        doc("other", OTHER_POLICY, title="关于促进中小企业创新发展的实施意见"),
        doc("a-noise", POLICY.replace("，", " , ")),
    ]
    clauses, records = clauses_of(docs)
    assert {c.doc_id for c in clauses} == {"a", "other"}
    by_id = {r["doc_id"]: r for r in records}
    assert set(by_id) == {"a", "other"}
    assert by_id["a"]["duplicates"] == ["a-trad", "a-noise"]
    assert by_id["other"]["duplicates"] == []
    assert by_id["a"]["clause_count"] == sum(1 for c in clauses if c.doc_id == "a") > 0


def test_seed_corpus_has_no_duplicates(seed_docs):
    assert find_duplicates(seed_docs) == {}
    _, records = clauses_of(seed_docs)
    assert len(records) == len(seed_docs) and all(r["duplicates"] == [] for r in records)


def test_candidate_filter_misses_no_pair():
    # Prefix filtering must find exactly the pairs an all-pairs comparison finds.
    rnd = random.Random(7)
    base = [POLICY, OTHER_POLICY, POLICY_TRADITIONAL[:120] + OTHER_POLICY[60:]]
    texts = []
    for _ in range(40):
        t = list(rnd.choice(base))
        for _ in range(rnd.randrange(0, 12)):  # a few edits: some copies stay above the threshold
            t[rnd.randrange(len(t))] = rnd.choice("的了在和中企业补助奖励")
        texts.append("".join(t))
    docs = [doc(f"d{i}", t) for i, t in enumerate(texts)]
    for threshold in (THRESHOLD, 0.7):
        sets = [_shingles(fingerprint_text(t)) for t in texts]
        expected = [(i, j) for i, j in itertools.combinations(range(len(sets)), 2) if _jaccard(sets[i], sets[j]) >= threshold]
        assert [(i, j) for i, j, _ in similar_pairs(docs, threshold)] == expected


_WHITESPACE = st.sampled_from([" ", "\n", "\t", "\u3000", "\xa0", "\r\n", "  "])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(min_size=1, max_size=300), data=st.data())
def test_any_text_is_a_duplicate_of_itself_with_whitespace_inserted(text, data):
    positions = data.draw(st.lists(st.integers(0, len(text)), max_size=20))
    noisy = text
    for p in sorted(positions, reverse=True):
        noisy = noisy[:p] + data.draw(_WHITESPACE) + noisy[p:]
    assert fingerprint_text(noisy) == fingerprint_text(text)
    assume(fingerprint_text(text))  # a text of punctuation only has nothing to compare
    assert find_duplicates([doc("a", text), doc("b", noisy)]) == {"a": ["b"]}
