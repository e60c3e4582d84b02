"""Answer form (issue 22): the fact first, one source line per document, repeats merged, no scraps,
（未规定金额） only for amount questions, a short validity line; and the quote side of issue 17:
sentences that carry no content (addressees, preambles, closings, headlines, datelines) are not quoted."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx

from assistant.answer import check_grounded, compose
from assistant.intents import intents
from assistant.calibration import DEFAULT
from assistant.evaluate.metrics import answer_form, answer_statements, has_scraps, repeats_header, repeats_statement
from assistant.facts import attach_facts
from assistant.layout import short_title, validity_line, validity_note
from assistant.llm import Rewriter
from assistant.quotes import best_quote, is_filler, tidy_quote
from assistant.schema import Answer, Citation, Clause, Hit

NO_COSINE = replace(DEFAULT, min_dense=0.0)


def clause(cid, text, title="某市支持企业发展若干措施", region="某省某市", section="一、支持措施", department=""):
    return attach_facts(Clause(cid, cid.split("#")[0], title, region, section, text, department=department))


def hit(c, score=0.03, dense=0.9):
    return Hit(clause=c, score=score, dense_rank=1, lexical_rank=1, dense_score=dense, lexical_score=5.0)


def test_addressee_preamble_and_attachments_are_not_quoted():
    text = ("各县市区人民政府，市政府各部门，各金融机构： 为深入贯彻落实中央决策部署，进一步强化疫情防控期间金融服务，"
            "支持企业复工复产，特提出如下意见。 一、对受疫情影响较大的企业，可予以展期或续贷。 附件：1.申请表")
    c = clause("fy#前言", text, title="关于金融支持服务企业复工复产的实施意见", section="前言")
    quote, _ = best_quote(c, "受疫情影响的企业贷款能否续贷？", set())
    assert quote == "对受疫情影响较大的企业，可予以展期或续贷。"  # its number 一、 is the section the header shows
    assert quote in text
    # a question about what only the preamble says still gets it, without the addressee line before it
    quote, _ = best_quote(c, "疫情防控期间金融服务如何支持企业复工复产？", set())
    assert quote.startswith("为深入贯彻") and quote in text


def test_a_preamble_still_answers_a_question_about_the_document_itself():
    text = ("区科技局拟定的《科技企业攻坚行动实施方案》已经区人民政府第62次常务会议研究通过，现转发给你们，请遵照执行。"
            "一、积极筹措资金，及时拨付扶持资金。")
    c = clause("bd#前言", text, title="科技企业攻坚行动实施方案", section="前言")
    quote, _ = best_quote(c, "攻坚行动实施方案经过区政府第几次常务会议研究通过？", set())
    assert "第62次" in quote


def test_filler_rules_of_official_and_news_form():
    assert is_filler("特此通知。") and is_filler("附件：1.申请表") and is_filler("某市人民政府办公室 2020年2月10日")
    assert is_filler("现将有关事项通知如下：") and is_filler("结合我市实际，特制定本措施。")
    assert is_filler("陕西出台八条措施助力脱贫攻坚", title="陕西出台八条措施助力脱贫攻坚")
    assert not is_filler("对首次获批的国家高新技术企业给予30—50万元奖励。")
    c = clause("x#1", "新华社北京2月1日电（记者 张三）记者1日从财政部了解到，进口物资免征关税。", section="前言")
    assert best_quote(c, "进口物资有什么税收优惠？", set())[0] == "进口物资免征关税。"


def test_quotes_drop_trailing_scraps_and_show_whitespace_runs_as_one_space():
    text = "一、企业可通过网上办理涉税业务。 　　答：纳税人通过电子税务局办理。   附件："
    c = clause("tax#一", text)
    quote, _ = best_quote(c, "企业如何网上办理涉税业务？", set())
    assert quote in text and not quote.endswith("附件：") and not quote.endswith(" ")
    a = compose("企业如何网上办理涉税业务？", [hit(c)], thresholds=NO_COSINE)
    assert not re.search(r"\s{3,}", a.answer) and "附件" not in a.answer and not check_grounded(a)
    assert tidy_quote("答：  纳税人\n通过") == "答： 纳税人 通过"


def test_the_fact_first_amount_count_department_yes_no():
    jz = clause("jz#三", "对首次获批的国家高新技术企业给予30—50万元奖励。", title="蓟州区创新转型行动计划", region="天津市蓟州区")
    a = compose("蓟州区对首次获批的高新技术企业奖励多少？", [hit(jz)], regions=["天津市蓟州区"], thresholds=NO_COSINE)
    assert a.answer.splitlines()[0] == "30—50万元 [1]"
    n = clause("xj#1", "全区共有212所医疗机构开设了发热门诊，24小时接诊。", title="新疆发热门诊情况")
    a = compose("新疆有多少所医疗机构开设了发热门诊？", [hit(n)], thresholds=NO_COSINE)
    assert a.answer.splitlines()[0] == "212所 [1]"
    d = clause("xq#二", "2.到2020年底,高端制造标杆企业达40家以上。(区工信委负责)", department="区工信委")
    a = compose("高端制造标杆企业培育由哪个部门负责？", [hit(d)], thresholds=NO_COSINE)
    assert a.answer.splitlines()[0] == "区工信委负责 [1]"
    y1 = clause("a#1", "对受疫情影响暂时失去收入来源的企业，可予以展期或续贷。", title="甲市金融支持措施")
    y2 = clause("b#1", "对受疫情影响暂时失去收入来源的企业，可予以展期或续贷。", title="乙市金融支持措施")
    a = compose("受疫情影响的企业贷款到期能否续贷？", [hit(y1), hit(y2, 0.02)], thresholds=NO_COSINE)
    lines = a.answer.splitlines()
    assert lines[0] == "可予以展期或续贷 [1][2]"
    # the same statement from two documents is one line with both markers; the citations keep both
    assert len(lines) == 2 and lines[1].endswith("[1][2]") and len(a.citations) == 2 and not check_grounded(a)
    # a question asking for no typed value opens with its source line
    a = compose("企业如何申请续贷？", [hit(y1)], thresholds=NO_COSINE)
    assert a.answer.startswith("《甲市金融支持措施》")


def test_one_source_line_per_document():
    # the retrieval ranks 一、（二） first; the amount asked puts 一、（一） first: both are quoted, under one title
    c1 = clause("doc#一.(一)", "对新认定的高新技术企业给予20万元奖励。", section="一、支持措施 > （一）高企")
    c2 = clause("doc#一.(二)", "对新认定的高新技术企业加强服务。", section="一、支持措施 > （二）服务")
    a = compose("新认定的高新技术企业奖励多少？", [hit(c2), hit(c1, 0.029)], thresholds=NO_COSINE)
    body = [l for l in a.answer.splitlines() if l.startswith("《")]
    assert len(body) == 1 and body[0].count("《某市支持企业发展若干措施》") == 1
    assert "一、（一）：" in body[0] and "一、（二）：" in body[0] and "[1]" in body[0] and "[2]" in body[0]
    assert not repeats_header(a.answer)


def test_no_amount_note_unless_an_amount_is_asked():
    c = clause("bd#1", "对首次获批的国家高新技术企业给予奖励。加强政策宣传。")
    assert "grant" in intents("对高新技术企业有什么奖励？") and "amount" not in intents("对高新技术企业有什么奖励？")
    assert "amount" in intents("对高新技术企业奖励多少？") and "count" in intents("新疆有多少所医院？")
    assert not intents("海陵区民政局咨询电话是多少？") & {"amount", "count"}
    asked = compose("对首次获批的国家高新技术企业奖励多少？", [hit(c)], thresholds=NO_COSINE)
    general = compose("对首次获批的国家高新技术企业有什么奖励？", [hit(c)], thresholds=NO_COSINE)
    assert "（未规定金额）" in asked.answer and "（未规定金额）" not in general.answer


def test_region_shown_only_when_the_title_lacks_it_and_transmittal_titles_shortened():
    c = clause("jz#1", "对首次获批的国家高新技术企业给予30—50万元奖励。", title="2018年蓟州区新一轮行动计划", region="天津市蓟州区")
    a = compose("首次获批的国家高新技术企业奖励多少？", [hit(c)], regions=["天津市蓟州区"], thresholds=NO_COSINE)
    assert "（天津市蓟州区）" not in a.answer
    c = replace(c, doc_title="创新转型行动计划")
    a = compose("首次获批的国家高新技术企业奖励多少？", [hit(c)], regions=["天津市蓟州区"], thresholds=NO_COSINE)
    assert "《创新转型行动计划》（天津市蓟州区）" in a.answer
    assert short_title("某市人民政府办公厅关于印发《支持中小企业共渡难关若干措施》的通知") == "支持中小企业共渡难关若干措施"
    assert short_title("某市人民政府关于支持中小企业的通知") == "某市人民政府关于支持中小企业的通知"


def _cite(n, doc):
    return Citation(n, f"{doc}#一", doc, f"文件{doc}", "", "一、", "x", "x", 0.1)


def test_validity_is_one_short_line_and_the_full_sentence_is_the_notice():
    import datetime as dt

    today = dt.date(2026, 11, 29)
    records = {
        "a": {"doc_id": "a", "issued": "2018-05-12", "term": {"until": "2020-12-31", "basis": "2018—2020年"}},
        "b": {"doc_id": "b", "issued": "2019-05-20", "term": {"until": "2021-12-31", "basis": "2021年底完成。"}},
        "c": {"doc_id": "c", "issued": "2020-03-01", "term": {"until": None, "basis": ""}},
    }
    cites = [_cite(1, "a"), _cite(2, "b"), _cite(3, "c")]
    assert validity_line(cites, records, today) == "⚠ [1][2] 已过期（2020、2021年）；[3] 未载明有效期（2020年）"
    assert validity_note(cites, records, today).startswith("提示：[1][2]（2018、2019年）期限均已届满")
    assert validity_line(cites[:0], records, today) == ""


def test_llm_rewrite_keeps_the_short_validity_line_last():
    def handler(request: httpx.Request) -> httpx.Response:
        assert "⚠" not in request.content.decode()  # the assistant's own line is not rephrased
        return httpx.Response(200, json={"choices": [{"message": {"content": "蓟州区给予30—50万元奖励。[1]"}}]})

    cit = Citation(1, "jz#一", "jz", "计划", "", "一、", "给予30—50万元奖励。", "给予30—50万元奖励。", 0.1)
    answer = Answer(answer="30—50万元 [1]\n《计划》一、：给予30—50万元奖励。 [1]\n⚠ [1] 已过期（2020年）",
                    citations=(cit,), notice="提示：[1]期限已于2020年12月届满，请向发文部门核实是否仍执行。")
    out = Rewriter("http://fake/v1", transport=httpx.MockTransport(handler)).rewrite("奖励多少", answer)
    assert out.answer == "蓟州区给予30—50万元奖励。[1]\n⚠ [1] 已过期（2020年）"


def test_answer_form_metrics_on_known_answers():
    repeated = "《甲》一、：可予以展期或续贷。 [1]\n《甲》二、：另一句话很长很长。 [2]\n《乙》：对企业可予以展期或续贷。 [3]"
    assert repeats_header(repeated) and repeats_statement(repeated)
    statements = answer_statements("30万元 [1]\n《甲》一、：给予30万元奖励。 [1] 二、：加强宣传。 [2]\n⚠ [1] 已过期（2020年）")
    assert statements == ["30万元", "给予30万元奖励。", "加强宣传。"]
    assert has_scraps("《甲》：答：   纳税人 [1]") and has_scraps("《甲》：详见附件： [1]") and not has_scraps("《甲》：见附件1所列。 [1]")
    table = answer_form(["30万元 [1]\n《甲》：给予30万元奖励。 [1]", "《乙》：给予奖励。（未规定金额） [1]\n⚠ [1] 已过期（2020年）"], [True, False])
    assert table["answers"] == 2 and table["unasked_no_amount"] == 1 and table["validity_line"] == 1
    assert table["repeat_header"] == 0 and table["near_identical"] == 0 and table["scraps"] == 0


def test_the_words_beside_the_question_word_choose_the_sentence():
    # a news text's lead restates the question's subject; the sentence that says what is asked (注重)
    # comes later. With the calibrated focus weight the words beside 哪些 decide; without it the lead wins.
    from assistant.quotes import focus_words

    text = ("为切实做好防控工作，某部日前启动开展专项法治宣传行动，大力宣传动物防疫法和野生动物保护法等法律法规。"
            "此次专项法治宣传行动注重以案释法，注重运用新媒体新技术。")
    c = clause("news#前言", text, title="某部开展专项法治宣传行动", section="前言")
    question = "某部启动开展专项法治宣传行动注重哪些方面？"
    assert "注重" in focus_words(question) and "启动" not in focus_words(question)
    assert best_quote(c, question, set())[0].startswith("为切实做好")
    assert best_quote(c, question, set(), focus_weight=3.0)[0].startswith("此次专项法治宣传行动注重以案释法")
    assert focus_words("介绍一下这个政策") == ""


def test_a_contact_question_leads_with_the_number():
    # 咨询电话是多少: the sentence that gives the number is quoted, and the number leads the answer
    from assistant.intents import intents

    text = ("鉴于当前疫情防控形势，为避免人员聚集，自即日起暂停办理所有婚姻登记业务，恢复办理时间另行通知。"
            "咨询电话：0523-12345678、0523-87654321。")
    c = clause("hy#前言", text, title="关于暂停办理婚姻登记业务的公告", section="前言")
    question = "区民政局婚姻登记咨询电话是多少？"
    assert "contact" in intents(question) and not intents("这项政策的内容是什么？") & {"contact"}
    a = compose(question, [hit(c)], regions=["某省某市"], thresholds=NO_COSINE)
    # the quote is the number nearly word for word: it is said once, without a fact line above it
    assert a.answer.startswith("《关于暂停办理婚姻登记业务的公告》（某省某市）：咨询电话：0523-12345678、0523-87654321。 [1]")
    assert a.citations[0].quote == "咨询电话：0523-12345678、0523-87654321。" and not check_grounded(a)
    # a service number before its label, a 400 number, a mailbox
    lead = ("请拨打12366纳税服务热线，或技术服务热线400-649-1366，或发邮件至 help@example.gov.cn 。")
    c2 = clause("tax#一", lead, title="关于办税咨询渠道的公告", section="一、")
    a2 = compose("纳税服务热线和技术服务热线是多少？", [hit(c2)], regions=["某省某市"], thresholds=NO_COSINE)
    assert a2.answer.startswith("12366、400-649-1366、help@example.gov.cn [1]")
    # a question about when a hotline opens asks the date, though it names the hotline
    c3 = clause("rx#前言", "自2月9日12时起开通24小时爱心服务热线0523-12345678，为困难群众提供生活服务。",
                title="关于开通爱心服务热线的通告", section="前言")
    a3 = compose("爱心服务热线什么时候开通？", [hit(c3)], regions=["某省某市"], thresholds=NO_COSINE)
    assert a3.answer.startswith("2月9日") and "0523-12345678" in a3.answer
