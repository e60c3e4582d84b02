"""Answer stage: grounded extractive composition, refusal paths, and the optional LLM rewrite."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest

from assistant.answer import (
    check_grounded,
    compose,
    mentioned_region,
    mentioned_regions,
    concerns,
    places_named,
    regions_asked_apart,
    unconcerned_place,
)
from assistant.calibration import DEFAULT
from assistant.intents import intents
from assistant.layout import section_label
from assistant.facts import attach_facts
from assistant.llm import Rewriter, keep_grounded
from assistant.schema import Answer, Citation, Clause, Hit

# the hash embedder's cosines mean nothing: these tests judge coverage alone
NO_COSINE = replace(DEFAULT, min_dense=0.0)
REGIONS = ["天津市", "天津市宝坻区", "天津市蓟州区", "天津市西青区", "河北省唐山市芦台经济开发区"]


def clause(cid, region, section, text, title="测试文件", department=""):
    return attach_facts(Clause(cid, cid.split("#")[0], title, region, section, text, department=department))


def hit(c, score=0.03, dense=0.9):
    return Hit(clause=c, score=score, dense_rank=1, lexical_rank=1, dense_score=dense, lexical_score=5.0)


JZ = clause(
    "jizhou-2018#三.(一)",
    "天津市蓟州区",
    "三、政策扶持 > （一）支持高新技术企业和杀手锏产品",
    "（一）支持高新技术企业和杀手锏产品。对首次获批的国家高新技术企业按照规模大小分别给予30—50万元奖励；区财政对于申请认定国家高新技术企业的先按上述标准50%的比例给予补助。",
    title="2018年蓟州区新一轮中小企业创新转型行动计划",
)
BD = clause(
    "baodi-2019#三.(一).1",
    "天津市宝坻区",
    "三、重点任务 > （一）壮大科技企业群体 > 1．",
    "1．对首次获批的国家高新技术企业给予奖励。加强政策宣传。",
    title="宝坻区科技企业群体规模壮大攻坚行动实施方案",
)


def test_a_place_inside_an_institution_name_is_no_region():
    # 上海证券交易所 is where shares trade and 中国人民银行 a national bank: neither names 上海 or 中国
    # as the place a question or a clause is about (data/not_places.txt), in every pass that finds places.
    regions = REGIONS + ["上海市"]
    q = "在上海证券交易所上市的企业有什么奖励？"
    assert mentioned_regions(q, regions) == [] and mentioned_region(q, regions) is None
    assert places_named(q, regions) == []
    assert mentioned_regions("上海市对上市企业有什么奖励？", regions) == ["上海市"]
    listing = clause("tj#1", "天津市", "一、", "对在上海证券交易所、深圳证券交易所上市的企业给予500万元奖励。")
    assert not concerns(hit(listing), "上海市")
    assert unconcerned_place("上海市对上市企业有什么奖励？", [hit(listing)], REGIONS) == "上海市"


def test_intents_and_regions():
    assert "amount" in intents("奖励多少钱？")
    assert "count" in intents("要新发展多少家企业？")
    assert "department" in intents("由哪个部门负责？")
    # spoken amount questions: a one-character grant verb before 多少; 多少 alone asks for neither
    assert "amount" in intents("评上了能奖多少？") and "amount" in intents("完成改制后区里补多少")
    assert intents("评上名牌给多少奖金？") & {"amount", "count"} == {"amount"}
    assert not intents("咨询热线是多少？") & {"amount", "count"} and "count" in intents("奖多少家企业？")
    assert mentioned_region("蓟州区对高企奖励多少", REGIONS) == "天津市蓟州区"
    assert mentioned_region("芦台开发区上市奖励", REGIONS) == "河北省唐山市芦台经济开发区"
    assert mentioned_region("高企奖励多少", REGIONS) is None
    assert set(mentioned_regions("蓟州区和宝坻区分别奖励多少", REGIONS)) == {"天津市蓟州区", "天津市宝坻区"}
    assert places_named("北京市海淀区对高新技术企业奖励多少？", REGIONS) == ["北京市", "海淀区"]
    assert places_named("芦台开发区上市奖励", REGIONS) == ["芦台开发区"]
    assert places_named("在上海证券交易所上市补助多少", REGIONS) == []
    # places named as one list are asked about one by one; places in different roles are one question
    def apart(q):
        return regions_asked_apart(q, mentioned_regions(q, REGIONS))

    assert set(apart("宝坻区和西青区在人才培养方面有哪些目标？")) == {"天津市宝坻区", "天津市西青区"}
    assert len(apart("蓟州区、西青区及芦台开发区的领导小组设在哪里？")) == 3
    assert apart("宝坻区为西青区的企业提供了什么支持？") == []
    assert len(apart("宝坻区为西青区分别提供了什么支持？")) == 2  # 分别 says so
    # a 自治州 (or 盟, 地区) is named by its own name: its province is another region, not its alias
    prefecture = ["云南省", "云南省大理白族自治州"]
    assert mentioned_region("云南省对返岗人员有什么补贴？", prefecture) == "云南省"
    assert mentioned_region("大理白族自治州对返岗人员有什么补贴？", prefecture) == "云南省大理白族自治州"


def test_a_place_is_refused_only_when_no_retrieved_clause_concerns_it():
    # judged by evidence: the clauses found, not a list of places
    assert unconcerned_place("北京市海淀区对高新技术企业奖励多少？", [hit(JZ)], REGIONS) == "北京市"
    assert unconcerned_place("天津市东丽区对高新技术企业奖励多少？", [hit(JZ)], REGIONS) == "东丽区"
    assert unconcerned_place("蓟州区对高企奖励多少", [hit(JZ)], REGIONS) is None
    jx = clause("ncp-1#前言", "", "前言", "江西省对疫情防控重点保障企业新增贷款给予贴息支持。", title="关于支持企业应对疫情的若干措施")
    assert unconcerned_place("江西省对疫情防控保障企业的贷款有何政策优惠？", [hit(jx)], []) is None
    sh = clause("ncp-2#前言", "", "前言", "对在上海或深圳证券交易所上市的企业给予奖励。")
    assert unconcerned_place("在上海或深圳证券交易所上市的企业有什么奖励？", [hit(sh)], []) is None


def test_section_label():
    assert section_label("三、政策扶持 > （一）支持高新技术企业 > 1．精益管理") == "三、（一）1．"


def test_amount_sentence_is_quoted_exactly_with_marker():
    a = compose("蓟州区对首次获批的国家高新技术企业奖励多少？", [hit(JZ)], regions=REGIONS, thresholds=NO_COSINE)
    assert not a.refused
    assert "30—50万元" in a.answer
    # the fact first (the amount, not the 50% rate of its advance), then one source line; the title names 蓟州
    assert a.answer.startswith("30—50万元 [1]\n《2018年蓟州区新一轮中小企业创新转型行动计划》三、（一）：对首次获批")
    assert a.citations[0].quote in JZ.text and a.citations[0].text == JZ.text
    assert "[1]" in a.answer and not check_grounded(a)


def test_per_region_lines_and_missing_figure_said_plainly():
    a = compose("各区对首次获批的国家高新技术企业奖励多少？", [hit(JZ, 0.04), hit(BD, 0.03)], regions=REGIONS, thresholds=NO_COSINE)
    lines = a.answer.splitlines()
    assert len(lines) == 2 and len(a.citations) == 2
    # one line per region, each under its document's title (which names the region), no fact line
    assert any(l.startswith("《2018年蓟州区") and "30—50万元" in l for l in lines)
    assert any(l.startswith("《宝坻区") and "未规定金额" in l for l in lines)
    assert not check_grounded(a)


def test_department_from_clause_metadata():
    c = clause("xiqing-2017#二.(一).2", "天津市西青区", "二、重点任务 > (一)培育 > 2.", "2.到2020年底,高端制造标杆企业达40家以上。(区工信委负责)", department="区工信委")
    a = compose("西青区高端制造标杆企业培育由哪个部门负责？", [hit(c)], regions=REGIONS, thresholds=NO_COSINE)
    assert "区工信委" in a.answer


def test_refusals():
    chit = compose("今天天气怎么样？", [hit(JZ)], regions=REGIONS)
    assert chit.refused and not chit.citations and "天津市蓟州区" in chit.answer
    other = compose("北京市海淀区对高新技术企业奖励多少？", [hit(JZ)], regions=REGIONS)
    assert other.refused and "北京" in other.answer and other.related and not other.citations
    weak = compose("企业知识产权质押融资贴息比例是多少？", [hit(BD, dense=0.1)], regions=REGIONS)
    assert weak.refused and weak.related[0].clause_id == BD.clause_id and "[1]" not in weak.answer
    empty = compose("蓟州区对高企奖励多少？", [], regions=REGIONS)
    assert empty.refused


def test_document_metadata_question_cites_the_document():
    docs = [{"doc_id": "jizhou-2018", "title": JZ.doc_title, "doc_number": "蓟州政办发〔2018〕1号", "date": "2018-05-12", "issuer": ""}]
    a = compose("蓟州区创新转型行动计划是哪天印发的？文号是什么？", [hit(JZ)], regions=REGIONS, documents=docs, thresholds=NO_COSINE)
    assert "2018年5月12日" in a.answer and "蓟州政办发〔2018〕1号" in a.answer and not check_grounded(a)


def test_over_hash_retrieval_every_quote_is_grounded(hash_retriever):
    for q in ["蓟州区对首次获批的国家高新技术企业奖励多少？", "宝坻区新发展国家科技型中小企业多少家？", "芦台经济开发区小巨人奖励"]:
        a = compose(q, hash_retriever.search(q, k=8), regions=REGIONS, thresholds=NO_COSINE)
        assert not a.refused and a.citations, (q, a.answer)
        assert not check_grounded(a)
        for c in a.citations:
            assert c.quote and c.quote in c.text


def _answer():
    cit = Citation(1, JZ.clause_id, JZ.doc_id, JZ.doc_title, JZ.region, JZ.section, JZ.text, "x", 0.1)
    return Answer(answer="原文 [1]", citations=(cit,))


def test_keep_grounded_drops_unmarked_and_unknown_markers():
    text = "首次获批的高企可获30—50万元奖励[1]。这是编造的一句。还有一句[7]。"
    assert keep_grounded(text, {1}) == "首次获批的高企可获30—50万元奖励[1]。"


def test_llm_rewrite_against_fake_endpoint():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json={"choices": [{"message": {"content": "蓟州区给予30—50万元奖励。[1]\n无据之言。"}}]})

    r = Rewriter("http://fake/v1", "m", "k", transport=httpx.MockTransport(handler))
    out = r.rewrite("奖励多少", _answer())
    assert seen["url"] == "http://fake/v1/chat/completions" and seen["body"]["model"] == "m"
    assert out.answer == "蓟州区给予30—50万元奖励。[1]"
    failing = Rewriter("http://fake/v1", transport=httpx.MockTransport(lambda req: httpx.Response(500)))
    assert failing.rewrite("q", _answer()).answer == "原文 [1]"


def test_llm_rewrite_keeps_the_validity_notice_as_the_last_line():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["prompt"] = json.loads(request.content)["messages"][0]["content"]
        return httpx.Response(200, json={"choices": [{"message": {"content": "蓟州区给予30—50万元奖励。[1]"}}]})

    notice = "提示：《某文件》（2018年）期限已于2020年12月届满，请向发文部门核实是否仍执行。"
    answer = replace(_answer(), answer="原文 [1]\n" + notice, notice=notice)
    out = Rewriter("http://fake/v1", transport=httpx.MockTransport(handler)).rewrite("奖励多少", answer)
    assert notice not in seen["prompt"]  # the model is not asked to rephrase the assistant's own advice
    assert out.answer == "蓟州区给予30—50万元奖励。[1]\n" + notice


def test_facts_carry_beneficiary_payer_and_conditions():
    from assistant.facts import extract

    facts = extract("对在全国中小企业股份转让系统挂牌交易的企业，在市财政补助的基础上，区财政再补助150万元。")
    amount = next(f for f in facts if f.kind == "amount")
    assert (amount.text, amount.payer, amount.beneficiary) == ("150万元", "区财政", "在全国中小企业股份转让系统挂牌交易的企业")
    facts = extract("对工业企业实施的节能改造项目，节能量在1000吨标准煤以上的，每吨标准煤给予240元资金补贴。")
    assert any(f.kind == "condition" and f.text == "节能量在1000吨标准煤以上的" for f in facts)
    assert any(f.kind == "amount" and f.text == "240元" for f in facts)


def test_terminal_format_prints_the_clarify_options_and_notice():
    from assistant.cli import format_answer

    a = Answer(answer="天津市蓟州区：30—50万元 [1]\n提示：……", notice="提示：……", clarify={"question": "您的企业注册在哪个地区？", "options": ["天津市蓟州区", "天津市宝坻区"]})
    out = format_answer(a)
    assert out.count("提示：……") == 1 and "您的企业注册在哪个地区？ [1] 天津市蓟州区 / [2] 天津市宝坻区" in out


def test_a_follow_ups_own_words_lead_the_answer():
    # "蓟州区楼宇升级由哪个部门负责？" then "园区升级呢？": the rewritten query still carries 楼宇升级,
    # whose clause retrieval ranks first; the follow-up asks about 园区升级, so that clause leads.
    building = clause("jz#二.(四).2", "天津市蓟州区", "二、主要路径 > （四）载体升级 > 2．楼宇升级",
                      "2．楼宇升级。通过商业楼宇向商务楼宇转变，实现业态转型。（区商务委负责）")
    park = clause("jz#二.(四).1", "天津市蓟州区", "二、主要路径 > （四）载体升级 > 1．园区升级",
                  "1．园区升级。通过提升园区基础设施，实现工业园区转型发展。（区工信委负责）")
    query = "蓟州区楼宇升级由哪个部门负责，园区升级?"
    plain = compose(query, [hit(building), hit(park)], regions=REGIONS, thresholds=NO_COSINE)
    assert plain.citations[0].clause_id == building.clause_id
    focused = compose(query, [hit(building), hit(park)], regions=REGIONS, thresholds=NO_COSINE, focus="园区升级")
    assert not focused.refused and focused.citations[0].clause_id == park.clause_id
    assert "区工信委" in focused.answer and not check_grounded(focused)


def _library(docs):
    """An Assistant over a throwaway hash-embedder index of {doc_id: (title, text, region)}."""
    from assistant.config import Settings
    from assistant.corpus import build_document
    from assistant.embed import make_embedder
    from assistant.evaluate.sources import throwaway_index
    from assistant.pipeline import Assistant

    built = [build_document(text, f"{doc_id}.txt", doc_id, {"title": title, "region": region})
             for doc_id, (title, text, region) in docs.items()]
    embedder = make_embedder("hash", "", 256)
    settings = Settings(embedder="hash", hash_dim=256)
    return Assistant(settings, index=throwaway_index(built, embedder), embedder=embedder)


def test_every_region_question_over_a_library_of_many_places_keeps_the_best_clause(tmp_path):
    # A province's library has more regions than an answer lists. "各地…" there asks what a national
    # text tells every place to do; searching each region apart (scores that do not compare, and never
    # the documents of no region) lost that text, so the library is searched once and the best leads.
    places = ["北京市东城区", "北京市丰台区", "天津市河西区", "河北省石家庄市", "山西省太原市", "辽宁省沈阳市", "吉林省长春市"]
    docs = {f"local-{i}": (f"{p}关于做好社区疫情防控工作的通知", f"{p}各社区要做好疫情防控，加强人员排查和环境消毒。", p)
            for i, p in enumerate(places)}
    docs["national"] = ("关于做好疫情防控期间交通运输保障工作的通知",
                        "一、各地交通运输主管部门要保障应急运输车辆优先通行，对应急车辆免收车辆通行费。", "")
    assistant = _library(docs)
    assert len(assistant.regions()) > 5
    answer = assistant.ask("疫情期间各地交通运输主管部门对应急车辆通行有什么措施？")
    assert not answer.refused
    assert answer.citations[0].doc_id == "national" and "优先通行" in answer.answer


def test_a_clause_announcing_its_items_is_quoted_with_the_first_of_them():
    # "具体标准如下：" says nothing by itself: the numbered item after it, retrieved too, is quoted with it
    head = replace(clause("gq-2018#三.(五)", "天津市蓟州区", "三、政策扶持 > （五）支持企业改制",
                          "（五）支持企业改制。区财政补助资金支持对象为本区注册并纳税的企业。具体标准如下："), ordinal=5)
    item = replace(clause("gq-2018#三.(五).1", "天津市蓟州区", "三、政策扶持 > （五）支持企业改制 > 1.",
                          "1.对完成股份制改造的中小企业，区财政一次性补助20万元。"), ordinal=6)
    other = replace(clause("gq-2018#三.(六)", "天津市蓟州区", "三、政策扶持 > （六）支持企业改制辅导",
                           "（六）支持企业改制辅导。组织企业参加改制辅导培训。"), ordinal=7)
    a = compose("企业改制有什么支持？", [hit(head, 0.05), hit(other, 0.04), hit(item, 0.03)], regions=REGIONS, thresholds=NO_COSINE)
    assert [c.clause_id for c in a.citations] == ["gq-2018#三.(五)", "gq-2018#三.(五).1"]
    assert "20万元" in a.answer and not check_grounded(a)
