"""Pipeline: the Assistant object and its CLI (hash embedder), and answer quality on the real seeds
with the real model (marked `model`): own questions with the expected clause and figure, refusals,
two-turn conversations, and grounding over the whole evaluation set."""

from __future__ import annotations

import io
import json
import statistics
import time
from pathlib import Path

import pytest

from assistant.answer import check_grounded
from assistant.schema import QueryError, UnknownSessionError
from assistant.text import compact

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- hash embedder: structure

@pytest.fixture
def hash_assistant(hash_settings):
    from assistant.pipeline import Assistant

    return Assistant.from_settings(hash_settings)


def test_ask_returns_grounded_record(hash_assistant):
    a = hash_assistant.ask("蓟州区对首次获批的国家高新技术企业奖励多少？")
    assert not a.refused and "30—50万元" in a.answer
    assert all(c.region == "天津市蓟州区" for c in a.citations)
    assert not check_grounded(a)
    d = a.to_dict()
    assert set(d) >= {"session_id", "answer", "refused", "citations", "rewritten_query", "related", "turn"}
    assert set(d["citations"][0]) == {"n", "clause_id", "doc_id", "doc_title", "region", "section", "text", "quote", "score",
                                      "issued", "validity"}


def test_ask_rejects_empty_and_too_long(hash_assistant):
    with pytest.raises(QueryError):
        hash_assistant.ask("   ")
    with pytest.raises(QueryError):
        hash_assistant.ask("高企" * 600)


def test_regions_and_refusal_lists_them(hash_assistant):
    regions = hash_assistant.regions()
    assert "天津市蓟州区" in regions and "河北省唐山市芦台经济开发区" in regions
    a = hash_assistant.ask("上海市对高新技术企业奖励多少？")
    assert a.refused and all(r in a.answer for r in regions)


def test_chat_keeps_context_and_persists(hash_settings):
    from assistant.pipeline import Assistant

    bot = Assistant.from_settings(hash_settings)
    first = bot.chat("蓟州区对首次获批的国家高新技术企业奖励多少？")
    assert first.session_id and first.turn == 1
    second = bot.chat("宝坻区呢？", first.session_id)
    assert second.turn == 2 and second.session_id == first.session_id
    assert "宝坻区" in second.rewritten_query and "高新技术企业" in second.rewritten_query
    restarted = Assistant.from_settings(hash_settings)  # a restart loses nothing
    third = restarted.chat("西青区呢？", first.session_id)
    assert third.turn == 3 and "西青区" in third.rewritten_query
    with pytest.raises(UnknownSessionError):
        bot.chat("宝坻区呢？", "no-such-session")


def test_swap_index(hash_assistant, hash_index):
    hash_assistant.swap_index(hash_index)
    assert hash_assistant.index is hash_index and hash_assistant.retriever.index is hash_index
    assert not hash_assistant.ask("蓟州区对首次获批的国家高新技术企业奖励多少？").refused


def _env(monkeypatch, settings):
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ASSISTANT_EMBEDDER", "hash")
    monkeypatch.setenv("ASSISTANT_HASH_DIM", "256")


def test_cli_ask_json_and_readable(hash_settings, monkeypatch, capsys):
    from assistant.cli import converse as cli

    _env(monkeypatch, hash_settings)
    assert cli("ask", ["蓟州区对首次获批的国家高新技术企业奖励多少？", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert "30—50万元" in record["answer"] and record["citations"]
    assert cli("ask", ["蓟州区对首次获批的国家高新技术企业奖励多少？"]) == 0
    out = capsys.readouterr().out
    assert "[1]" in out and "《2018年蓟州区新一轮中小企业创新转型行动计划》" in out and "jizhou-2018#" in out


def test_cli_chat_keeps_session(hash_settings, monkeypatch, capsys):
    from assistant.cli import converse as cli

    _env(monkeypatch, hash_settings)
    monkeypatch.setattr("sys.stdin", io.StringIO("蓟州区对首次获批的国家高新技术企业奖励多少？\n宝坻区呢？\nexit\n"))
    assert cli("chat", ["--json"]) == 0
    records = [json.loads(chunk) for chunk in capsys.readouterr().out.strip().split("\n\n")]
    assert [r["turn"] for r in records] == [1, 2] and records[0]["session_id"] == records[1]["session_id"]


# ---------------------------------------------------------------- real model on the real seeds

# Questions the calibration never saw: written for these tests about clauses no evaluation item
# labels (tables of tasks, departments, measures without a figure), each with the clauses that answer
# it and a key phrase the answer must carry. test_questions_are_not_evaluation_items keeps them apart
# from every item of eval/testset.jsonl and the outside dev set.
OWN = [
    ("蓟州区2018年要推动几家中小企业转型为现代服务业企业？", ("jizhou-2018#二.(一).3", "jizhou-2018#表1.6"), "1家"),
    ("蓟州区两化融合试点示范项目2018年要完成几个？", ("jizhou-2018#二.(二).2",), "1个"),
    ("蓟州区引导中小企业优先进入哪些新兴产业？", ("jizhou-2018#二.(一).2",), "机器人"),
    ("蓟州区向战略性新兴产业转型这项工作由哪个部门负责？", ("jizhou-2018#二.(一).2", "jizhou-2018#附件1.二"), "区发改委"),
    ("蓟州区楼宇升级由哪个部门负责？", ("jizhou-2018#二.(四).2", "jizhou-2018#附件1.二"), "区商务委"),
    ("蓟州区民营企业参与国有企业混改由谁负责？", ("jizhou-2018#二.(三).3", "jizhou-2018#附件1.二"), "国资委"),
    ("蓟州区创新转型任务表里的任务总数是多少？", ("jizhou-2018#表1.1",), "47家"),
    ("蓟州区设备升级子路径计划数是多少？", ("jizhou-2018#表1.2",), "13"),
    ("蓟州区专利提升子路径计划完成多少？", ("jizhou-2018#表1.8",), "7"),
    ("宝坻区怎样推动科技企业的发展路径与模式创新？", ("baodi-2019#三.(一).2",), "上云"),
    ("宝坻区培育雏鹰、瞪羚企业的工作什么时候完成？", ("baodi-2019#四.3",), "2019年底"),
    ("宝坻区科技金融助推工程要引导金融资本投向哪些企业？", ("baodi-2019#三.(三).3",), "瞪羚企业"),
    ("宝坻区的商标注册工作由哪个部门负责？", ("baodi-2019#四.8",), "区市场监管局"),
    ("宝坻区的科技招商工作由哪些单位负责？", ("baodi-2019#四.9",), "区合作交流办"),
    ("宝坻区对攻坚行动中配合不力的单位怎么处理？", ("baodi-2019#五.(四)",), "严肃追究责任"),
    ("芦台经济开发区要求企业研发人员占职工总数的比重达到多少？", ("lutai-zjtx#三.(二).2",), "10%"),
    ("芦台经济开发区鼓励企业创建哪一级以上的品牌？", ("lutai-zjtx#三.(三).2",), "省级"),
    ("芦台经济开发区精准招商要落实什么活动？", ("lutai-zjtx#四.(一).1",), "四个一百"),
    ("芦台经济开发区推动项目投产要把好哪四道关口？", ("lutai-zjtx#四.(一).2",), "投资强度"),
    ("芦台经济开发区组织专精特新企业参加哪些展会？", ("lutai-zjtx#四.(三).5",), "中国国际中小企业博览会"),
    ("芦台经济开发区用什么人才政策激励企业家？", ("lutai-zjtx#四.(三).6",), "凤凰英才"),
    ("西青区发展服务型制造的责任单位有哪些？", ("xiqing-2017#二.(二).8",), "区工信委"),
    ("西青区到2020年要建成多少个众创空间？", ("xiqing-2017#二.(四).16",), "10个"),
    ("西青区工业企业创新驱动发展会纳入什么考核？", ("xiqing-2017#三.(四)",), "绩效考核"),
    ("天津市中小企业融资配套体系建设由哪些单位负责？", ("tianjin-2022#二.(七)",), "人民银行天津分行"),
    ("天津市怎样推动工业设计为中小企业赋能？", ("tianjin-2022#五.(十四)",), "工业设计中心"),
    ("天津市支持中小企业发展跨境电商有哪些做法？", ("tianjin-2022#七.(二十二)",), "B2B"),
    ("天津市工业互联网赋能要加快部署哪些网络设施？", ("tianjin-2022#四.(十二)",), "5G"),
    ("天津市促进中小企业专利转化的责任单位是哪个？", ("tianjin-2022#六.(十七)",), "市知识产权局"),
    ("天津市智能制造进园区要帮中小企业建设什么？", ("tianjin-2022#四.(十三)",), "智能车间"),
]
# out of scope, places the library does not cover, and measures the seeds do not have
REFUSE = [
    "明天北京会下雨吗？",
    "广州市黄埔区对独角兽企业奖励多少？",
    "杭州市余杭区的人才公寓怎么申请？",
    "怎么注销个体工商户的营业执照？",
    "给我讲个笑话吧",
    "成都市高新区对新落户的总部企业补贴多少？",
    "西青区对新引进的博士后给多少安家费？",
    "蓟州区对外资企业落户奖励多少钱？",
]
# (first turn, follow-up, clauses that answer the follow-up, key phrase): the follow-up alone is unanswerable.
CONVERSATIONS = [
    ("蓟州区楼宇升级由哪个部门负责？", "园区升级呢？", ("jizhou-2018#二.(四).1",), "区工信委"),
    ("天津市对专精特新中小企业有哪些财政资金支持？", "税收方面呢？", ("tianjin-2022#一.(二)",), "税收优惠"),
    ("芦台开发区的企业去新三板挂牌，奖励是多少？", "那在主板上市呢？", ("lutai-zjtx#四.(三).2",), "75万元"),
    ("宝坻区培育雏鹰、瞪羚企业的工作什么时候完成？", "技术领先型企业库呢？", ("baodi-2019#四.5",), "2019年底"),
]


@pytest.fixture(scope="module")
def real_assistant(real_index, real_embedder, tmp_path_factory):
    from assistant.config import Settings
    from assistant.pipeline import Assistant

    settings = Settings(data_dir=tmp_path_factory.mktemp("data"))
    return Assistant(settings, index=real_index, embedder=real_embedder)


# Floors are the measured values (closing note of issue 23) less about 0.03; ceilings on false
# refusals the measured value plus about 0.03. MEASURED is printed by each test for the next update.
FLOOR = {"own": 0.90, "refused": 0.97, "conversations": 0.72, "eval_facts": 0.895, "eval_refusal_recall": 0.82,
         "eval_refusal_precision": 0.91}
CEILING = {"own_refused": 0.04, "eval_false_refusals": 0.04}


def _right(answer, clause_ids, key) -> bool:
    return (not answer.refused and bool(set(clause_ids) & {c.clause_id for c in answer.citations})
            and compact(key) in compact(answer.answer))


def test_questions_are_not_evaluation_items():
    # The real-model tests measure what calibration did not see: no question here is within 0.8
    # (difflib ratio, after NFKC and without spaces) of a question of either evaluation set.
    import difflib
    import unicodedata

    def norm(text: str) -> str:
        return "".join(unicodedata.normalize("NFKC", text).split())

    items = [json.loads(line) for line in (ROOT / "eval" / "testset.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    asked = [t for it in items for t in (it.get("turns") or [it["question"]])]
    outside = ROOT.parent / "shared" / "extdata" / "ncp" / "dev.jsonl"
    assert outside.exists(), f"{outside} is missing: the outside dev set is part of every checkout's shared/"
    asked += [json.loads(line)["question"] for line in outside.read_text(encoding="utf-8").splitlines() if line.strip()]
    asked = [norm(a) for a in asked]
    ours = sorted({q for q, _, _ in OWN} | set(REFUSE) | {t for c in CONVERSATIONS for t in c[:2]})
    assert len(ours) >= 40
    close = []
    for q in ours:
        n = norm(q)
        matcher = difflib.SequenceMatcher(None, n)
        for a in asked:
            matcher.set_seq1(a)
            if matcher.real_quick_ratio() >= 0.8 and matcher.quick_ratio() >= 0.8 and matcher.ratio() >= 0.8:
                close.append((q, a, round(matcher.ratio(), 2)))
    assert not close, close


@pytest.mark.model
def test_own_questions_cite_the_clause_and_state_the_figure(real_assistant):
    assert len(OWN) >= 30 and {cids[0].split("#")[0] for _, cids, _ in OWN} == {
        "jizhou-2018", "baodi-2019", "lutai-zjtx", "xiqing-2017", "tianjin-2022"}
    wrong, refused = [], 0
    for q, cids, key in OWN:
        a = real_assistant.ask(q)
        assert not check_grounded(a), q
        refused += a.refused
        if not _right(a, cids, key):
            wrong.append((q, [c.clause_id for c in a.citations], a.answer[:100]))
    share = 1 - len(wrong) / len(OWN)
    print(f"\nMEASURED own {share:.3f} ({len(OWN) - len(wrong)}/{len(OWN)}), own_refused {refused / len(OWN):.3f}; wrong: {wrong}")
    assert share >= FLOOR["own"], wrong
    assert refused / len(OWN) <= CEILING["own_refused"], wrong


@pytest.mark.model
def test_refusals(real_assistant):
    refused = 0
    for q in REFUSE:
        a = real_assistant.ask(q)
        if a.refused:
            refused += 1
            assert not a.citations and "[1]" not in a.answer and "天津市蓟州区" in a.answer, q
    print(f"\nMEASURED refused {refused / len(REFUSE):.3f} ({refused}/{len(REFUSE)})")
    assert refused / len(REFUSE) >= FLOOR["refused"]


@pytest.mark.model
def test_two_turn_conversations(real_assistant):
    right = 0
    for first, follow, cids, key in CONVERSATIONS:
        a1 = real_assistant.chat(first)
        a2 = real_assistant.chat(follow, a1.session_id)
        assert a2.turn == 2 and a2.rewritten_query != follow, (follow, a2.rewritten_query)
        right += _right(a2, cids, key)
    print(f"\nMEASURED conversations {right / len(CONVERSATIONS):.3f} ({right}/{len(CONVERSATIONS)})")
    assert right / len(CONVERSATIONS) >= FLOOR["conversations"]


@pytest.mark.model
def test_whole_evaluation_set_is_grounded_and_measured(real_assistant):
    # The calibration data itself: every answer grounded, and the in-sample figures held.
    items = [json.loads(line) for line in (ROOT / "eval" / "testset.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    right = answered = tp = fp = fn = 0
    latencies = []
    for it in items:
        if "turns" in it:
            sid = None
            for turn in it["turns"]:
                started = time.perf_counter()
                a = real_assistant.chat(turn, sid)
                latencies.append(time.perf_counter() - started)
                sid = a.session_id
        else:
            a = real_assistant.ask(it["question"])
        assert not check_grounded(a), (it["id"], check_grounded(a))
        for c in a.citations + a.related:
            assert c.quote in c.text
        if it["refuse"]:
            tp += a.refused
            fn += not a.refused
        elif a.refused:
            fp += 1
        else:
            answered += 1
            right += all(compact(f) in compact(a.answer) for f in it["facts"])
    non_refuse = sum(1 for it in items if not it["refuse"])
    facts, recall, precision = right / non_refuse, tp / (tp + fn), tp / (tp + fp) if tp + fp else 1.0
    print(f"\nMEASURED eval_facts {facts:.3f}, eval_refusal_recall {recall:.3f}, eval_refusal_precision {precision:.3f}, "
          f"eval_false_refusals {fp / non_refuse:.3f} ({fp}); median chat {statistics.median(latencies) * 1000:.0f} ms")
    assert facts >= FLOOR["eval_facts"] and recall >= FLOOR["eval_refusal_recall"] and precision >= FLOOR["eval_refusal_precision"]
    assert fp / non_refuse <= CEILING["eval_false_refusals"]


@pytest.mark.model
def test_every_region_question_answers_per_region(real_assistant):
    a = real_assistant.ask("各区对首次获批的国家高新技术企业有什么奖励？")
    lines = a.answer.splitlines()
    # one line per region under its document's title, which names the region (issue 22: no （region） then)
    assert any(l.startswith("《2018年蓟州区") and "30—50万元" in l for l in lines), a.answer
    assert any(l.startswith("《宝坻区") and "未规定金额" in l for l in lines), a.answer
    assert not check_grounded(a)
