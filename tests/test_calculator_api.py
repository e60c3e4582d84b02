"""Calculator over the edges (政策计算器): POST /api/match with facts, GET /api/match/options, the CLI.

The five hand-checked cases of issue 20 over HTTP (the 蓟州 2018 plan's 节能降耗 clause and its
high-tech award), the in-place answer round trip, bad input, and `assistant match --facts`.
"""

from __future__ import annotations

import json
import shutil

import pytest
from fastapi.testclient import TestClient

from conftest import CORPUS

ENERGY = "jizhou-2018#三.(四)"
HIGH_TECH = "jizhou-2018#三.(一)"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    """One hash-embedder index over a copy of the seeds for the module; validity judged in 2018."""
    from assistant.config import Settings
    from assistant.embed import make_embedder
    from assistant.index import build_corpus

    tmp = tmp_path_factory.mktemp("calc")
    corpus = tmp / "corpus"
    shutil.copytree(CORPUS, corpus)
    s = Settings(corpus_dir=corpus, index_dir=tmp / "index", data_dir=tmp / "data", embedder="hash", hash_dim=256,
                 today="2018-06-01", rate_limit="1000/minute")
    build_corpus(corpus, s.index_dir, make_embedder("hash", s.model, 256), s.chunk_max_chars)
    return s


@pytest.fixture(scope="module")
def client(settings):
    from assistant.api import create_app

    with TestClient(create_app(settings)) as c:
        yield c


def _match(client, facts, profile=None, region="蓟州"):
    r = client.post("/api/match", json={"region": region, "profile": profile, "facts": facts})
    assert r.status_code == 200, r.text
    return r.json()


def _energy(body):
    return [m for m in body["matches"] if m["clause_id"] == ENERGY and "节能量" in m["condition"]]


# -- the five cases of the issue ---------------------------------------------------------------------
def test_industrial_2000_tce_is_eligible_for_48_wan(client):
    body = _match(client, {"industry": "工业", "quantities": {"节能量": "2000吨标准煤"}})
    top = body["matches"][0]
    assert top["clause_id"] == ENERGY and top["eligible"] is True and top["group"] == "eligible"
    assert top["estimate"]["amount_yuan"] == 480_000
    assert top["estimate"]["formula"] == "2000吨 × 240元/吨 = 48万元（未达上限300万元）"
    assert "每吨标准煤给予240元" in top["estimate"]["quote"]
    assert [(c["kind"], c["status"]) for c in top["conditions"]] == [("threshold", "met"), ("industry", "met")]
    assert top["validity"]["status"] == "current"
    assert len(_energy(body)) == 1 and body["unused"] == []  # the 非工业 rule is not offered


def test_industrial_800_tce_is_a_near_miss(client):
    body = _match(client, {"industry": "工业", "quantities": {"节能量": "800吨标准煤"}})
    [m] = _energy(body)
    assert m["eligible"] is False and m["group"] == "near_miss"
    assert "800吨" in m["missing"] and "1000吨以上" in m["missing"]
    assert [c["status"] for c in m["conditions"] if c["kind"] == "threshold"] == ["unmet"]
    groups = [x["group"] for x in body["matches"]]
    assert "eligible" not in groups[groups.index("near_miss"):]  # near misses come last


def test_non_industrial_800_tce_is_eligible_for_24_wan(client):
    body = _match(client, {"industry": "商贸", "quantities": {"节能量": "800吨标准煤"}})
    [m] = _energy(body)
    assert m["eligible"] is True and m["estimate"]["amount_yuan"] == 240_000
    assert m["estimate"]["formula"].startswith("800吨 × 300元/吨 = 24万元")


def test_industrial_20000_tce_is_capped_at_300_wan(client):
    body = _match(client, {"industry": "工业", "quantities": {"节能量": "2万吨标准煤"}})
    [m] = _energy(body)
    assert m["eligible"] is True and m["estimate"]["amount_yuan"] == 3_000_000
    assert "480万元" in m["estimate"]["formula"] and "按300万元计" in m["estimate"]["formula"]


def test_first_time_high_tech_enterprise_gets_30_to_50_wan(client):
    body = _match(client, {"qualifications": ["首次获批的国家高新技术企业"]})
    m = next(x for x in body["matches"] if x["clause_id"] == HIGH_TECH and "高新技术企业" in x["condition"])
    assert m["eligible"] is True and m["group"] == "eligible"
    assert (m["estimate"]["min_yuan"], m["estimate"]["max_yuan"]) == (300_000, 500_000)
    assert "30万元—50万元" in m["estimate"]["formula"]


# -- unknown conditions, answered in place ----------------------------------------------------------
def test_an_unknown_condition_says_which_fact_answers_it(client):
    # a 高新技术企业 that does not say whether the recognition is new: the time word is asked about
    body = _match(client, {"qualifications": ["国家高新技术企业"]})
    m = next(x for x in body["matches"] if x["clause_id"] == HIGH_TECH and "高新技术企业" in x["condition"])
    assert m["eligible"] is None and m["group"] == "unknown" and m["question"]
    [time] = [c for c in m["conditions"] if c["status"] == "unknown"]
    assert time["kind"] == "time" and time["answer"] == {"fact": "profile", "yes": "资质为首次获批", "unit": None,
                                                            "no": None, "choices": None}
    # the answer, put where the hint says, settles it
    again = _match(client, {"qualifications": ["国家高新技术企业"]}, profile=time["answer"]["yes"])
    m = next(x for x in again["matches"] if x["clause_id"] == HIGH_TECH and "高新技术企业" in x["condition"])
    assert m["eligible"] is True and [c["status"] for c in m["conditions"]] == ["met", "met"]


def test_an_unknown_quantity_is_asked_in_its_unit_and_answered(client):
    body = _match(client, {"industry": "工业"})
    [m] = _energy(body)
    assert m["group"] == "unknown" and m["question"] == "贵企业节能量是多少吨标准煤？"
    [asked] = [c for c in m["conditions"] if c["status"] == "unknown"]
    assert (asked["answer"]["fact"], asked["answer"]["unit"]) == ("quantities.节能量", "吨标准煤")
    again = _match(client, {"industry": "工业", "quantities": {"节能量": "1500" + asked["answer"]["unit"]}})
    [m] = _energy(again)
    assert m["eligible"] is True and m["estimate"]["amount_yuan"] == 360_000


def test_an_unknown_industry_is_a_yes_or_no(client):
    body = _match(client, {"quantities": {"节能量": "800吨标准煤"}})
    by_industry = {c["text"]: c for m in _energy(body) for c in m["conditions"] if c["kind"] == "industry"}
    assert by_industry["工业企业"]["answer"]["yes"] == "工业" and by_industry["工业企业"]["answer"]["no"] == "非工业"
    no = _match(client, {"industry": by_industry["工业企业"]["answer"]["no"], "quantities": {"节能量": "800吨标准煤"}})
    assert [m["estimate"]["amount_yuan"] for m in _energy(no) if m["eligible"]] == [240_000]


# -- bad input and unused facts ---------------------------------------------------------------------
@pytest.mark.parametrize("facts, field", [
    ({"quantities": {"节能量": "2000斤"}}, "facts.quantities.节能量"),  # a unit the parser does not know
    ({"quantities": {"节能量": "很多吨"}}, "facts.quantities.节能量"),  # no number
    ({"quantities": {"节能量": "2000"}}, "facts.quantities.节能量"),  # no unit
    ({"quantities": {"节能量": "-5吨标准煤"}}, "facts.quantities.节能量"),
    ({"quantities": {"节能量": "2000万元"}}, "facts.quantities.节能量"),  # money is not energy
    ({"quantities": {"节能量": 2000}}, "facts.quantities.节能量"),  # a number without its unit
    ({"employees": -3}, "facts.employees"),
    ({"revenue_10k": 1e12}, "facts.revenue_10k"),  # absurd: 10 000 万亿元
    ({"rd_ratio": 150}, "facts.rd_ratio"),
    ({"founded": 1700}, "facts.founded"),
    ({"qualifications": "国家高新技术企业"}, "facts.qualifications"),
    ({"turnover": 5}, "facts.turnover"),
])
def test_bad_facts_are_422_naming_the_field(client, facts, field):
    r = client.post("/api/match", json={"region": "蓟州", "facts": facts})
    assert r.status_code == 422 and r.json()["detail"].startswith(field), r.text


def test_facts_no_clause_uses_are_listed_as_unused(client):
    body = _match(client, {"industry": "工业", "rd_ratio": 4.5, "quantities": {"节能量": "2000吨标准煤", "出口额": "100万元"}})
    assert body["unused"] == ["rd_ratio", "quantities.出口额"]
    assert body["matches"][0]["estimate"]["amount_yuan"] == 480_000  # the facts used still count


def test_without_facts_the_response_is_as_before(client):
    body = _match(client, None, profile="首次获批的国家高新技术企业")
    assert body["unused"] == [] and body["matches"]
    for m in body["matches"]:
        assert m["conditions"] == [] and m["eligible"] is None and m["estimate"] is None and m["group"] == ""
    assert "30—50万元" in body["matches"][0]["benefit"]


# -- the form's options --------------------------------------------------------------------------------
def test_options_come_from_the_library_and_each_is_accepted(client):
    r = client.get("/api/match/options", params={"region": "蓟州"})
    assert r.status_code == 200
    options = r.json()
    assert {"国家高新技术企业", "通过清洁生产审核的企业", "中国质量奖"} <= set(options["qualifications"])
    assert not any(q[0].isdigit() or len(q) > 20 for q in options["qualifications"])
    assert options["quantities"] == [{"name": "节能量", "unit": "吨标准煤", "dimension": "energy"}]
    assert {"工业", "非工业"} <= set(options["industries"]) and "吨标准煤" in options["units"]["energy"]
    # a region elsewhere offers its own (the 芦台 zone's 专精特新 tiers), not 蓟州's honours
    other = client.get("/api/match/options", params={"region": "芦台"}).json()["qualifications"]
    assert "省级专精特新企业" in other and "中国质量奖" not in other
    # every qualification offered meets a condition of some rule when ticked
    for q in options["qualifications"]:
        body = _match(client, {"qualifications": [q]})
        assert any(c["status"] == "met" and c["kind"] in ("subject", "tiers") for m in body["matches"]
                   for c in m["conditions"]), q
    assert client.get("/api/match/options", params={"region": "火星"}).status_code == 422


# -- the CLI ---------------------------------------------------------------------------------------------
@pytest.fixture
def cli_env(monkeypatch, settings):
    for name in ("corpus_dir", "index_dir", "data_dir"):
        monkeypatch.setenv(f"ASSISTANT_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("ASSISTANT_EMBEDDER", "hash")
    monkeypatch.setenv("ASSISTANT_HASH_DIM", "256")
    monkeypatch.setenv("ASSISTANT_TODAY", "2018-06-01")


def test_cli_match_with_facts(cli_env, capsys):
    from assistant.cli import main

    facts = json.dumps({"industry": "工业", "quantities": {"节能量": "2000吨标准煤"}}, ensure_ascii=False)
    assert main(["match", "--region", "蓟州", "--facts", facts]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. [符合条件] 2000吨 × 240元/吨 = 48万元") and "✓ 节能量在1000吨标准煤以上" in out
    assert main(["match", "--region", "蓟州", "--facts", facts, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["matches"][0]["estimate"]["amount_yuan"] == 480_000 and record["unused"] == []


@pytest.mark.parametrize("facts, words", [
    ("{industry: 工业}", "--facts is not valid JSON"),
    ('{"quantities": {"节能量": "2000斤"}}', "facts.quantities.节能量: unknown unit '斤'"),
])
def test_cli_match_bad_facts_exit_with_a_message(cli_env, capsys, facts, words):
    from assistant.cli import main

    assert main(["match", "--region", "蓟州", "--facts", facts]) == 2
    assert words in capsys.readouterr().err
