"""Calculator (政策计算器): rules read from clauses, a structured profile checked against them.

Hand-checked cases: the five of issue 20 over the seeds, more over the seeds, and clauses quoted
from five documents of the outside library (shared/extdata/ncp), embedded here so the tests always run.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from assistant.calculator import evaluate, parse_facts, parse_quantity
from assistant.conditions import rules_of
from assistant.match import match_report
from assistant.schema import Clause, FactsError

TODAY = dt.date(2018, 6, 1)  # while the 蓟州 2018 plan was in force

# -- the outside library: short clause texts quoted from five documents ------------------------------
# ncp-0a03ce2e160e 北京市人力资源和社会保障局关于落实一次性就业创业服务补助有关工作的通知
BEIJING_PLACEMENT = ("经营性人力资源服务机构为重点企业推荐成功上岗人数达到一定规模的，可以申请享受一次性就业创业服务补助，"
                     "人数为50人(含)以上的，补助2.4万元；100人(含)以上的，补助4.5万元；200人(含)以上的，补助9万元。")
# ncp-29cea157283e 宁波发布意见促进企业复工复产
NINGBO_HIRING = ("鼓励企业多途径扩大招工规模，疫情解除后当月企业参加社会保险人数较上年同期每新增1人，按每人500元标准补助企业，"
                 "每家企业补助总额最高不超过30万元。人力资源机构向该市企业输送员工50人及以上并就业超过3个月的，按每人500元标准补助，"
                 "每家机构补助总额最高不超过50万元。")
# ncp-2224dc162e28 陕西省…支持中小微企业稳定健康发展若干措施
SHAANXI_EQUIPMENT = ("重点支持3月底前有望完成扩能改造、形成产能，取得相关许可证和产品注册证的企业，对其净化系统改造及设备投资"
                     "给予30%的补助，最高不超过500万元；")
SHAANXI_RENT = ("支持省级以上科技企业孵化器、众创空间、大学科技园等孵化载体减免在孵企业的办公、实验、科研和生产用房的租金，"
                "从科技发展专项资金中，按照减免租金的10%给予补助。")
# ncp-6a93bab757d5 广东省进一步稳定和促进就业若干政策措施
GUANGDONG_HOUSEKEEPING = ("对年度内家政服务人员月平均在岗人数达到30人以上（粤东粤西粤北地区为20人以上）的员工制家政服务企业，"
                          "按每人每年1000元给予补贴。")
GUANGDONG_HIRING = "对生产、配送疫情防控急需物资，在疫情防控期间新招用员工的企业，按每人不超过1000元标准给予一次性吸纳就业补助。"
# ncp-abceb7e0b5ff 北京市…促进中小微企业持续健康发展的若干措施
BEIJING_VOUCHER = ("依托市中小企业公共服务平台发放中小微企业服务券，受疫情影响严重的企业采购远程办公、视频会议、法律咨询、在线检测、"
                   "网络销售等指定服务产品的，对每家企业给予不超过合同额50%的补贴，最高额度不超过20万元。")


def _one(text: str, n: int = 0):
    rules = rules_of(text)
    assert len(rules) > n, rules
    return rules[n]


def _eval(text: str, facts: dict, n: int = 0, free_text: str = ""):
    return evaluate(_one(text, n), parse_facts(facts, free_text, TODAY), TODAY)


# -- the five hand-checked cases of the issue, over the seeds --------------------------------------------
def _report(hash_index, facts, region="蓟州", profile=""):
    return match_report(hash_index, None, region, profile, today=TODAY, facts=facts)


def _energy(report):
    return [m for m in report.matches if m.clause_id == "jizhou-2018#三.(四)" and "节能量" in m.condition]


def test_industrial_2000_tce_gets_48_wan(hash_index):
    report = _report(hash_index, {"industry": "工业", "quantities": {"节能量": "2000吨标准煤"}})
    top = report.matches[0]
    assert top.clause_id == "jizhou-2018#三.(四)" and top.eligible is True and top.group == "eligible"
    assert top.estimate["amount_yuan"] == 480_000
    assert top.estimate["formula"] == "2000吨 × 240元/吨 = 48万元（未达上限300万元）"
    assert [c.status for c in top.conditions] == ["met", "met"]
    assert top.quote in next(c.text for c in hash_index.clauses if c.clause_id == top.clause_id)
    # the non-industrial rule of the same clause is not offered to an industrial company
    assert len(_energy(report)) == 1 and not report.unused


def test_industrial_800_tce_is_a_near_miss(hash_index):
    report = _report(hash_index, {"industry": "工业", "quantities": {"节能量": "800吨标准煤"}})
    energy = _energy(report)
    assert len(energy) == 1
    m = energy[0]
    assert m.eligible is False and m.group == "near_miss" and "1000吨以上" in m.missing and "800吨" in m.missing
    groups = [x.group for x in report.matches]
    assert groups == sorted(groups, key=["eligible", "unknown", "near_miss"].index)  # the order
    assert not any(x.eligible for x in energy)


def test_non_industrial_800_tce_gets_24_wan(hash_index):
    report = _report(hash_index, {"industry": "非工业", "quantities": {"节能量": "800吨标准煤"}})
    (m,) = [x for x in _energy(report) if x.eligible]
    assert m.estimate["amount_yuan"] == 240_000 and m.estimate["formula"].startswith("800吨 × 300元/吨 = 24万元")


def test_industrial_20000_tce_is_capped_at_300_wan(hash_index):
    report = _report(hash_index, {"industry": "工业", "quantities": {"节能量": "2万吨标准煤"}})  # 2万吨 = 20000吨
    m = report.matches[0]
    assert m.eligible and m.estimate["amount_yuan"] == 3_000_000
    assert "480万元" in m.estimate["formula"] and "300万元" in m.estimate["formula"]


def test_first_time_high_tech_enterprise_gets_30_to_50_wan(hash_index):
    report = _report(hash_index, {"qualifications": ["首次获批的国家高新技术企业"]})
    m = report.matches[0]
    assert m.clause_id == "jizhou-2018#三.(一)" and m.eligible is True and "30—50万元" in m.quote
    assert (m.estimate["min_yuan"], m.estimate["max_yuan"]) == (300_000, 500_000)
    # without the time word the grant is not decided: 首次获批 is asked for
    plain = _report(hash_index, {"qualifications": ["国家高新技术企业"]})
    m = next(x for x in plain.matches if x.clause_id == "jizhou-2018#三.(一)" and "30—50万元" in x.quote)
    assert m.eligible is None and m.group == "unknown" and "首次获批" in m.question


# -- more cases over the seeds -----------------------------------------------------------------------
def test_an_unknown_quantity_is_asked_for(hash_index):
    report = _report(hash_index, {"industry": "工业"})
    m = _energy(report)[0]
    assert m.eligible is None and m.question == "贵企业节能量是多少吨标准煤？"
    assert m.estimate["max_yuan"] == 3_000_000 and m.estimate.get("amount_yuan") is None


def test_cleaner_production_audit(hash_index):
    report = _report(hash_index, {"qualifications": ["通过清洁生产审核"]})
    m = next(x for x in report.matches if "清洁生产" in x.quote)
    assert m.eligible is True and m.estimate["amount_yuan"] == 50_000


def test_neeq_listing_gets_city_and_district_sums(hash_index):
    report = _report(hash_index, {"qualifications": ["新三板挂牌企业"]})
    m = report.matches[0]
    assert m.clause_id == "jizhou-2018#三.(五).2" and m.eligible
    assert m.estimate["amount_yuan"] == 2_500_000 and m.estimate["formula"] == "100万元 + 150万元 = 250万元"


def test_honours_are_tiers(hash_index):
    report = _report(hash_index, {"qualifications": ["中国驰名商标"]})
    m = next(x for x in report.matches if x.clause_id == "jizhou-2018#三.(二)" and x.estimate)
    assert m.eligible and m.estimate["amount_yuan"] == 100_000


def test_lutai_levels_are_tiers(hash_index):
    provincial = _report(hash_index, {"qualifications": ["新认定的省级专精特新企业"]}, region="芦台")
    m = provincial.matches[0]
    assert m.clause_id == "lutai-zjtx#四.(三).2" and m.eligible and m.estimate["amount_yuan"] == 50_000
    national = _report(hash_index, {"qualifications": ["新认定的国家级专精特新“小巨人”企业"]}, region="芦台")
    assert national.matches[0].estimate["amount_yuan"] == 100_000
    undated = _report(hash_index, {"qualifications": ["国家级专精特新小巨人企业"]}, region="芦台")
    m = next(x for x in undated.matches if x.clause_id == "lutai-zjtx#四.(三).2" and x.estimate)
    assert m.eligible is None and "新认定" in m.question


def test_lutai_listing_tiers_by_venue(hash_index):
    report = _report(hash_index, {"qualifications": ["当年在新三板挂牌的企业"]}, region="芦台")
    m = next(x for x in report.matches if "75万元" in x.quote)
    assert m.eligible and m.estimate["amount_yuan"] == 500_000


def test_a_grant_of_no_figure_has_no_estimate(hash_index):
    report = _report(hash_index, {"qualifications": ["首次获批的国家高新技术企业"]}, region="宝坻")
    m = next(x for x in report.matches if x.clause_id == "baodi-2019#三.(一).1")
    assert m.eligible is True and m.estimate is None


def test_facts_no_clause_uses_are_unused(hash_index):
    report = _report(hash_index, {"industry": "工业", "founded": 2015, "quantities": {"节能量": "2000吨", "专利数": "3件"}})
    assert set(report.unused) == {"founded", "quantities.专利数"}
    assert report.matches[0].estimate["amount_yuan"] == 480_000  # 吨 is read as 吨标准煤


def test_free_text_match_is_unchanged_without_facts(hash_index):
    report = _report(hash_index, None, profile="首次获批的国家高新技术企业")
    assert report.matches and all(m.eligible is None and not m.conditions for m in report.matches)
    assert report.matches[0].benefit == "30—50万元"


# -- the outside library -------------------------------------------------------------------------
def test_placement_tiers_by_headcount():
    assert _eval(BEIJING_PLACEMENT, {"quantities": {"推荐成功上岗人数": "120人"}}).estimate["amount_yuan"] == 45_000
    assert _eval(BEIJING_PLACEMENT, {"quantities": {"推荐上岗人数": "200人"}}).estimate["amount_yuan"] == 90_000
    short = _eval(BEIJING_PLACEMENT, {"quantities": {"推荐成功上岗人数": "30人"}})
    assert short.eligible is False and short.group == "near_miss"


def test_hiring_rate_with_cap():
    ev = _eval(NINGBO_HIRING, {"quantities": {"新增参保人数": "800人"}})
    assert ev.eligible and ev.estimate["amount_yuan"] == 300_000 and "400万元" not in ev.estimate["formula"]
    assert "40万元" in ev.estimate["formula"] and "按30万元计" in ev.estimate["formula"]
    few = _eval(NINGBO_HIRING, {"quantities": {"新增参保人数": "20人"}})
    assert few.estimate["amount_yuan"] == 10_000


def test_agency_needs_50_placed_and_an_unknown_duration():
    ev = _eval(NINGBO_HIRING, {"quantities": {"输送员工": "60人"}}, n=1)
    statuses = {c.text: c.status for c in ev.conditions}
    assert statuses["输送员工50人及以上"] == "met" and "unknown" in statuses.values() and ev.eligible is None
    assert _eval(NINGBO_HIRING, {"quantities": {"输送员工": "50人"}}, n=1).conditions[0].status == "met"  # 及以上 includes 50
    assert _eval(NINGBO_HIRING, {"quantities": {"输送员工": "49人"}}, n=1).eligible is False


def test_equipment_share_capped():
    ev = _eval(SHAANXI_EQUIPMENT, {"quantities": {"设备投资": "2000万元"}})
    assert ev.estimate["amount_yuan"] == 5_000_000 and "600万元" in ev.estimate["formula"]
    small = _eval(SHAANXI_EQUIPMENT, {"quantities": {"设备投资": "100万元"}})
    assert small.estimate["amount_yuan"] == 300_000


def test_rent_share():
    assert _eval(SHAANXI_RENT, {"quantities": {"减免租金": "50万元"}}).estimate["amount_yuan"] == 50_000


def test_housekeeping_headcount_threshold_and_industry():
    firm = {"industry": "家政服务", "qualifications": ["员工制家政服务企业"]}
    ev = _eval(GUANGDONG_HOUSEKEEPING, {**firm, "quantities": {"在岗人数": "40人"}})
    assert ev.eligible and ev.estimate["amount_yuan"] == 40_000
    # the grant is for 员工制 firms: a profile that does not say so is asked
    unsaid = _eval(GUANGDONG_HOUSEKEEPING, {"industry": "家政服务", "quantities": {"在岗人数": "40人"}})
    assert unsaid.eligible is None and "员工制" in unsaid.question
    # the parenthetical 20人 is for other places: it is no second threshold of the rule
    assert sum(c.kind == "threshold" for c in ev.conditions) == 1
    near = _eval(GUANGDONG_HOUSEKEEPING, {**firm, "quantities": {"在岗人数": "25人"}})
    assert near.eligible is False and near.group == "near_miss"
    other = _eval(GUANGDONG_HOUSEKEEPING, {**firm, "industry": "制造业", "quantities": {"在岗人数": "40人"}})
    assert other.eligible is False


def test_per_head_at_most():
    ev = _eval(GUANGDONG_HIRING, {"quantities": {"新招用员工": "30人"}})
    assert ev.rule.benefit.kind == "rate" and ev.estimate["amount_yuan"] == 30_000
    # only for firms producing or delivering epidemic supplies: that scope is asked, not assumed
    assert ev.eligible is None and "急需物资" in ev.question


def test_voucher_share_of_contract():
    assert _eval(BEIJING_VOUCHER, {"quantities": {"合同额": "30万元"}}).estimate["amount_yuan"] == 150_000
    capped = _eval(BEIJING_VOUCHER, {"quantities": {"合同额": "60万元"}})
    assert capped.estimate["amount_yuan"] == 200_000 and "超过上限" in capped.estimate["formula"]


# -- the parser's reading of comparators and forms --------------------------------------------------
@pytest.mark.parametrize("text, op, value", [
    ("对销售收入小于5000万元(含)的企业给予5万元奖励。", "<=", 50_000_000),
    ("对销售收入在5000万元以上的企业给予5万元奖励。", ">=", 50_000_000),
    ("对从业人员超过100人的企业给予5万元奖励。", ">", 100),
    ("对从业人员不足100人的企业给予5万元奖励。", "<", 100),
    ("对从业人员100人以下的企业给予5万元奖励。", "<=", 100),
    ("对研发投入占销售收入比重达到5%以上的企业给予5万元奖励。", ">=", 5),
    ("对从业人员100人以上（不含）的企业给予5万元奖励。", ">", 100),
])
def test_comparator_reading(text, op, value):
    (cond,) = [c for c in _one(text).conditions if c.kind == "threshold"]
    assert (cond.op, cond.value) == (op, value)


def test_profile_fields_are_quantities():
    text = "对研发投入占销售收入比重达到5%以上、从业人员100人以上的企业给予5万元奖励。"
    assert _eval(text, {"rd_ratio": 6, "employees": 120}).eligible is True
    assert _eval(text, {"rd_ratio": 4.5, "employees": 120}).eligible is False
    revenue = "对营业收入在1亿元以上的企业给予10万元奖励。"
    assert _eval(revenue, {"revenue_10k": 12000}).eligible is True  # 1.2亿元
    assert _eval(revenue, {"revenue_10k": 9000}).eligible is False


def test_two_subjects_two_rules():
    rules = rules_of("对工业企业实施的节能改造项目，节能量在1000吨标准煤以上的，每吨标准煤给予240元资金补贴，同一企业补贴金额不超过300万元。"
                     "对非工业企业实施的节能改造项目，节能量在500吨标准煤以上的，每吨标准煤给予300元资金补贴，同一企业补贴金额不超过300万元。")
    assert [(r.benefit.rate, r.benefit.cap) for r in rules] == [(240, 3_000_000), (300, 3_000_000)]
    assert [next(c.name for c in r.conditions if c.kind == "industry") for r in rules] == ["工业", "非工业"]


def test_targets_and_sizes_are_no_rules():
    assert rules_of("到2020年，全区规模以上工业企业研发投入占主营业务收入比重提升至1.4%以上，累计实现新增产值约20亿元。") == ()
    assert rules_of("销售收入在5000万元至2亿元(含)的企业，达到4%以上。") == ()


def test_rules_travel_with_the_clause():
    clause = Clause("d#1", "d", "t", "天津市", "s", BEIJING_PLACEMENT)
    from assistant.conditions import attach_rules

    stored = attach_rules(clause)
    assert stored.rules and Clause.from_dict(stored.to_dict()) == stored
    # an index written before rules existed still loads (no rules)
    old = stored.to_dict()
    del old["rules"]
    assert Clause.from_dict(old).rules == ()


def test_the_built_index_stores_rules(hash_settings):
    from assistant.backends.local import PolicyIndex

    index = PolicyIndex.load(hash_settings.index_dir)
    clause = next(c for c in index.clauses if c.clause_id == "jizhou-2018#三.(四)")
    assert [r.benefit.kind for r in clause.rules][:2] == ["rate", "rate"]


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("facts, field", [
    ({"quantities": {"节能量": "2000斤"}}, "quantities.节能量"),  # unknown unit
    ({"quantities": {"节能量": "很多吨"}}, "quantities.节能量"),  # unparseable
    ({"quantities": {"节能量": "2000"}}, "quantities.节能量"),  # no unit
    ({"quantities": {"节能量": "2000万元"}}, "quantities.节能量"),  # a unit of another dimension
    ({"quantities": {"节能量": "-5吨"}}, "quantities.节能量"),
    ({"quantities": {"节能量": "1e30吨"}}, "quantities.节能量"),
    ({"quantities": {"固定资产投资": "99999999999999万元"}}, "quantities.固定资产投资"),
    ({"employees": -3}, "employees"),
    ({"employees": 1e12}, "employees"),
    ({"rd_ratio": 130}, "rd_ratio"),
    ({"founded": 2999}, "founded"),
    ({"qualifications": "高企", "revenue_10k": "很多"}, "revenue_10k"),
    ({"turnover": 5}, "turnover"),
])
def test_bad_facts_name_the_field(facts, field):
    with pytest.raises(FactsError) as err:
        parse_facts(facts, today=TODAY)
    assert err.value.field == field and field in str(err.value)


def test_quantities_convert_units():
    assert parse_quantity("q", "节能量", "2万吨").value == 20_000
    assert parse_quantity("q", "固定资产投资", "0.15亿元").value == 15_000_000
    assert parse_quantity("q", "固定资产投资", "1,500万元").value == 15_000_000


def test_the_parser_is_linear_on_hostile_text():
    hostile = [
        ("对" + "企业、" * 3000 + "1" * 5000 + "万元以上" + "，每" * 2000 + "吨" + "给予240元" * 500) * 2,
        "对企业每" + "每1人给予1元、" * 3000 + "最高不超过1万元" * 500,  # one phrase, thousands of amounts
        "节能量在" + "1000吨以上（" * 3000 + "和" * 5000 + "分别给予" + "5万元、" * 2000,
    ]
    for text in hostile:
        start = time.perf_counter()
        rules_of(text)
        assert time.perf_counter() - start < 5.0, text[:40]
