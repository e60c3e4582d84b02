"""Match stage (政策匹配): hand-checked profiles on the seeds, through the core and the API."""

from __future__ import annotations

import datetime as dt

import pytest

from assistant.match import _GRANTS, match, profile_terms
from assistant.schema import QueryError

TODAY = dt.date(2026, 11, 29)


def _ids(found):
    return [m.clause_id for m in found]


def test_profile_terms_come_from_the_vocabulary():
    terms = profile_terms("首次获批的国家高新技术企业，计划在新三板挂牌")
    assert {"高新技术企业", "全国中小企业股份转让系统", "挂牌"} <= set(terms)
    assert "专精特新小巨人" in profile_terms("新认定的国家级专精特新“小巨人”企业")


def test_jizhou_high_tech_enterprise_planning_a_neeq_listing(hash_index, hash_retriever):
    found = match(hash_index, hash_retriever, "蓟州", "首次获批的国家高新技术企业，计划在新三板挂牌", today=TODAY)
    by_id = {m.clause_id: m for m in found}
    assert by_id["jizhou-2018#三.(一)"].benefit == "30—50万元"
    assert "150万元" in by_id["jizhou-2018#三.(五).2"].benefit
    assert set(_ids(found)[:2]) == {"jizhou-2018#三.(一)", "jizhou-2018#三.(五).2"}
    for m in found:
        assert m.region in ("天津市蓟州区", "天津市")  # its district's or its city's, never a neighbour's
        assert _GRANTS.search(m.quote) and m.quote in next(c.text for c in hash_index.clauses if c.clause_id == m.clause_id)
        assert m.why and m.validity["status"] == "expired"


def test_lutai_little_giant(hash_index, hash_retriever):
    found = match(hash_index, hash_retriever, "芦台", "新认定的国家级专精特新“小巨人”企业", today=TODAY)
    top = found[0]
    assert top.clause_id == "lutai-zjtx#四.(三).2" and top.benefit == "10万元"
    assert "小巨人" in top.condition and all("芦台" in m.region for m in found)


def test_targets_and_duties_are_never_matches(hash_index, hash_retriever):
    found = match(hash_index, hash_retriever, "宝坻", None, today=TODAY)
    assert found and all(m.region in ("天津市宝坻区", "天津市") and _GRANTS.search(m.quote) for m in found)
    # 宝坻's "新发展国家科技型中小企业…" targets grant nothing
    assert not any("2019年底完成" in m.quote for m in found)


def test_a_region_gets_its_own_and_its_containing_places_clauses(hash_index, hash_retriever):
    # a 蓟州 company is offered 天津市's grants as well as 蓟州's; a 天津 company (district unknown)
    # none of a district's; a 唐山 company none of 芦台开发区's, which lies inside 唐山
    jizhou = {m.region for m in match(hash_index, hash_retriever, "蓟州区", None, today=TODAY)}
    assert jizhou == {"天津市蓟州区", "天津市"}
    assert {m.region for m in match(hash_index, hash_retriever, "天津", None, today=TODAY)} == {"天津市"}
    assert match(hash_index, hash_retriever, "唐山", "新认定的国家级专精特新“小巨人”企业", today=TODAY) == []
    # a district the library has no document of still gets its city's
    assert {m.region for m in match(hash_index, hash_retriever, "南开区", None, today=TODAY)} == {"天津市"}
    with pytest.raises(QueryError, match="unknown region"):
        match(hash_index, hash_retriever, "火星", "高新技术企业")


def test_region_or_profile_is_required_and_current_only_filters(hash_index, hash_retriever):
    with pytest.raises(QueryError):
        match(hash_index, hash_retriever, None, "  ")
    assert match(hash_index, hash_retriever, "蓟州", "高新技术企业", only_current=True, today=TODAY) == []
    then = match(hash_index, hash_retriever, "蓟州", "高新技术企业", only_current=True, today=dt.date(2019, 1, 1))
    assert "jizhou-2018#三.(一)" in _ids(then)


def test_match_route(hash_settings):
    from fastapi.testclient import TestClient

    from assistant.api import create_app

    with TestClient(create_app(hash_settings.model_copy(update={"today": "2026-11-29"}))) as client:
        _check_match_route(client)


def _check_match_route(client):
    r = client.post("/api/match", json={"region": "蓟州", "profile": "首次获批的国家高新技术企业，计划在新三板挂牌"})
    assert r.status_code == 200
    body = r.json()
    assert body["took_ms"] >= 0 and body["matches"]
    m = body["matches"][0]
    assert set(m) >= {"clause_id", "doc_id", "doc_title", "region", "section", "benefit", "condition", "quote", "validity", "why"}
    assert client.post("/api/match", json={}).status_code == 422
    bad = client.post("/api/match", json={"region": "火星", "profile": "高新技术企业"})
    assert bad.status_code == 422 and "火星" in bad.text


def test_the_level_named_picks_the_amount(hash_index, hash_retriever):
    # one sentence rewards 省级专精特新 (5万元) and 国家级小巨人 (10万元): the profile's level decides
    found = match(hash_index, hash_retriever, "芦台", "新认定的省级专精特新企业", today=TODAY)
    assert found[0].clause_id == "lutai-zjtx#四.(三).2" and found[0].benefit == "5万元"


def test_locate_reads_library_names_then_the_gazetteer():
    from assistant.vocab import applies_in, locate

    library = ["天津市", "天津市蓟州区", "河北省唐山市芦台经济开发区"]
    assert locate("蓟州", library) == ("天津市蓟州区",)  # a library region's short name
    assert locate("芦台开发区", library) == ("河北省唐山市芦台经济开发区",)
    assert locate("天津", library) == ("天津市",)  # the city, not each district containing the name
    assert locate("唐山", library) == ("河北省唐山市",)  # the gazetteer: the library holds only a zone inside it
    assert locate("火星", library) == () and locate("  ", library) == ()
    assert applies_in("天津市", ["天津市蓟州区"]) and applies_in("天津市蓟州区", ["天津市蓟州区"])
    assert not applies_in("天津市蓟州区", ["天津市"]) and not applies_in("", ["天津市"])
