"""Validity: a document's term read from its own words, judged against a date the test sets."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.validity import judge, needs_warning, read_term

TODAY = dt.date(2026, 11, 29)


@pytest.mark.parametrize(
    "text, issued, until, status",
    [
        ("五、本通知有效期至2025年12月31日。", "", "2025-12-31", "expired"),
        ("单位费率均为0.5%，执行至2027年7月31日；", "", "2027-07-31", "current"),
        ("本办法自发布之日起施行，有效期3年。", "2024-03-01", "2027-02-28", "current"),
        ("本办法有效期三年。", "2020-03-01", "2023-02-28", "expired"),
        ("关于印发行动计划（2018—2020年）的通知", "", "2020-12-31", "expired"),
        ("到2025年底，高新技术企业数量达到40家。到2022年，新增10家。", "", "2025-12-31", "expired"),
        ("建立企业库。2019年底完成。（区科技局）", "", "2019-12-31", "expired"),
        ("本实施细则自发布之日起施行。", "", None, "unknown"),
        ("对首次获批的国家高新技术企业给予奖励。", "", None, "unknown"),
    ],
)
def test_terms_are_read_and_judged(text, issued, until, status):
    end, basis = read_term(text, issued)
    v = judge(end, basis, TODAY)
    assert (v.until, v.status) == (until, status)
    if until or status == "unknown" and "施行" in text:
        assert basis and basis in text.replace("\n", " ")


def test_the_explicit_term_wins_over_targets():
    text = "到2030年，产业规模翻番。本措施自2024年1月1日起施行，有效期至2026年12月31日。"
    assert read_term(text)[0] == "2026-12-31"


def test_today_decides_expired_or_current():
    end, basis = read_term("有效期至2025年12月31日。")
    assert judge(end, basis, dt.date(2025, 12, 31)).status == "current"
    assert judge(end, basis, dt.date(2026, 1, 1)).status == "expired"


def test_warning_for_expired_or_old_documents_without_a_term():
    assert needs_warning(judge("2020-12-31", "…", TODAY))
    unknown = judge(None, "", TODAY)
    assert needs_warning(unknown, "2022-06-18", TODAY)  # issued more than 3 years before
    assert not needs_warning(unknown, "2025-06-18", TODAY)
    assert not needs_warning(unknown, "", TODAY)  # no issue date: nothing to judge by
    assert not needs_warning(judge("2027-12-31", "…", TODAY), "2017-01-01", TODAY)


def test_seed_documents(seed_docs):
    # 蓟州 2018 runs to 2020, 宝坻 2019 to the end of 2019, 芦台 (undated) to 2025, 西青 2017 to 2020;
    # 天津市 2022 states no term.
    got = {}
    for d in seed_docs:
        end, basis = read_term(d.text, d.date)
        got[d.doc_id] = judge(end, basis, TODAY)
        assert not basis or basis.rstrip("…") in " ".join(d.text.split()) or basis.rstrip("…")[:40] in " ".join(d.text.split())
    assert {k: (v.status, v.until) for k, v in got.items()} == {
        "jizhou-2018": ("expired", "2020-12-31"),
        "baodi-2019": ("expired", "2019-12-31"),
        "lutai-zjtx": ("expired", "2025-12-31"),
        "xiqing-2017": ("expired", "2020-12-31"),
        "tianjin-2022": ("unknown", None),
    }


def test_notice_names_the_document_and_year():
    from assistant.answer import validity_note
    from assistant.schema import Citation

    cite = Citation(1, "t#一", "t", "天津市提升中小企业竞争力若干措施", "天津市", "一、", "x", "x", 0.1)
    undated = {"t": {"doc_id": "t", "issued": "2022-06-18", "term": {"until": None, "basis": ""}}}
    assert validity_note([cite], undated, TODAY) == "提示：[1]（2022年）未载明有效期，请向发文部门核实。"
    assert validity_note([cite], undated, dt.date(2024, 1, 1)) == ""  # under 3 years old then
    expired = {"t": {"doc_id": "t", "issued": "", "term": {"until": "2025-12-31", "basis": "到2025年底…"}}}
    assert validity_note([cite], expired, TODAY) == "提示：[1]期限已于2025年12月届满，请向发文部门核实是否仍执行。"


def test_notice_for_several_documents_is_still_one_sentence():
    from assistant.answer import validity_note
    from assistant.schema import Citation

    def cite(n, doc):
        return Citation(n, f"{doc}#一", doc, f"文件{doc}", "", "一、", "x", "x", 0.1)

    records = {
        "a": {"doc_id": "a", "issued": "2018-05-12", "term": {"until": "2020-12-31", "basis": "2018—2020年"}},
        "b": {"doc_id": "b", "issued": "2019-05-20", "term": {"until": "2019-12-31", "basis": "2019年底完成。"}},
        "c": {"doc_id": "c", "issued": "2020-03-01", "term": {"until": None, "basis": ""}},
        "d": {"doc_id": "d", "issued": "2026-01-01", "term": {"until": None, "basis": ""}},
    }
    # a document cited twice is named once, by its first marker
    both_expired = validity_note([cite(1, "a"), cite(2, "a"), cite(3, "b"), cite(4, "d")], records, TODAY)
    assert both_expired == "提示：[1][3]（2018、2019年）期限均已届满，请向发文部门核实是否仍执行。"
    mixed = validity_note([cite(1, "d"), cite(2, "c"), cite(3, "a")], records, TODAY)
    assert mixed == "提示：[3]（2018年）期限已于2020年12月届满，[2]（2020年）未载明有效期，请向发文部门核实。"
    assert validity_note([cite(1, "d")], records, TODAY) == ""  # recent and undated: no warning
