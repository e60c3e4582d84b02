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

# (question, expected clause id, key figure): written for this test, covering all five documents.
OWN = [
    ("蓟州区首次获批国家高新技术企业能拿多少奖励？", "jizhou-2018#三.(一)", "30—50万元"),
    ("蓟州区申请认定国家高新技术企业，区财政先按多大比例补助？", "jizhou-2018#三.(一)", "50%"),
    ("在蓟州区开发杀手锏产品的重大创新项目最多资助多少？", "jizhou-2018#三.(一)", "100—300万元"),
    ("蓟州区完成股份制改造的中小企业区财政补助多少？", "jizhou-2018#三.(五).1", "20万元"),
    ("蓟州区企业到新三板挂牌，区财政补助多少？", "jizhou-2018#三.(五).2", "150万元"),
    ("蓟州区企业在深圳证券交易所上市区财政再补助多少？", "jizhou-2018#三.(五).3", "500万元"),
    ("蓟州区工业企业节能改造每吨标准煤补贴多少元？", "jizhou-2018#三.(四)", "240元"),
    ("蓟州区非工业企业节能改造项目每吨标准煤给多少补贴？", "jizhou-2018#三.(四)", "300元"),
    ("蓟州区获得中国驰名商标一次性奖励多少？", "jizhou-2018#三.(二)", "10万元"),
    ("蓟州区获得中国质量奖奖励多少？", "jizhou-2018#三.(二)", "20万元"),
    ("宝坻区2019年要新发展多少家国家高新技术企业？", "baodi-2019#二", "26家"),
    ("宝坻区2019年新发展国家科技型中小企业目标是多少家？", "baodi-2019#二", "150家"),
    ("宝坻区申报市级企业技术中心的目标是多少家？", "baodi-2019#四.13", "5家"),
    ("宝坻区攻坚行动的指挥部办公室设在哪里？", "baodi-2019#五.(一)", "区科学技术局"),
    ("芦台经济开发区对新认定的国家级专精特新小巨人企业奖励多少？", "lutai-zjtx#四.(三).2", "10万元"),
    ("芦台经济开发区企业在主板上市奖励多少？", "lutai-zjtx#四.(三).2", "75万元"),
    ("芦台经济开发区企业新三板挂牌奖励多少？", "lutai-zjtx#四.(三).2", "50万元"),
    ("芦台经济开发区企业在石交所挂牌能得到多少奖励？", "lutai-zjtx#四.(三).2", "5万元"),
    ("芦台经济开发区每年新增国家级高新技术企业几家？", "lutai-zjtx#二", "5家"),
    ("芦台经济开发区到2025年底高新技术企业要达到多少家？", "lutai-zjtx#二", "40家"),
    ("芦台经济开发区销售收入小于5000万元的企业研发投入比重要达到多少？", "lutai-zjtx#三.(二).3", "5%"),
    ("芦台经济开发区领导小组办公室设在哪个部门？", "lutai-zjtx#四.(四)", "发展和改革局"),
    ("西青区到2020年底高端制造标杆企业要达到多少家？", "xiqing-2017#二.(一).2", "40家"),
    ("西青区到2020年中国驰名商标目标是多少件？", "xiqing-2017#二.(三).13", "22件"),
    ("西青区到2020年底企业专利授权量达到多少件？", "xiqing-2017#二.(五).20", "7000件"),
    ("西青区工业企业创新驱动发展实施方案的文号是什么？", "xiqing-2017#前言", "西青政发〔2017〕7号"),
    ("西青区规模以上工业企业研发投入占主营业务收入比例要提升到多少？", "xiqing-2017#二.(一).1", "1.4%"),
    ("天津市提升中小企业竞争力若干措施的文号是什么？", "tianjin-2022#前言", "津中小企组〔2022〕2号"),
    ("天津市对专精特新小巨人企业有什么支持？", "tianjin-2022#三.(十)", "单项冠军"),
    ("天津市融资担保风险分担比例是多少？", "tianjin-2022#二.(四)", "2:2:4:2"),
    ("天津市中小企业竞争力若干措施是哪天印发的？", "tianjin-2022#前言", "2022年6月18日"),
]

REFUSE = [
    "今天天气怎么样？",
    "上海市浦东新区对高新技术企业有什么奖励？",
    "北京市海淀区专精特新企业补助多少？",
    "帮我订一张去广州的机票",
    "深圳市对上市企业奖励多少？",
    "个人所得税怎么申报？",
    "推荐一部好看的电影",
]

# (first turn, follow-up, expected clause id, key figure): the follow-up alone is unanswerable.
CONVERSATIONS = [
    ("蓟州区企业在新三板挂牌有什么补助？", "那在上交所上市呢？", "jizhou-2018#三.(五).3", "500万元"),
    ("宝坻区今年要新发展多少家国家高新技术企业？", "国家科技型中小企业呢？", "baodi-2019#二", "150家"),
    ("芦台经济开发区对新认定的省级专精特新企业奖励多少？", "国家级小巨人呢？", "lutai-zjtx#四.(三).2", "10万元"),
    ("蓟州区工业企业节能改造每吨标准煤补贴多少？", "那非工业企业呢？", "jizhou-2018#三.(四)", "300元"),
]


@pytest.fixture(scope="module")
def real_assistant(real_index, real_embedder, tmp_path_factory):
    from assistant.config import Settings
    from assistant.pipeline import Assistant

    settings = Settings(data_dir=tmp_path_factory.mktemp("data"))
    return Assistant(settings, index=real_index, embedder=real_embedder)


@pytest.mark.model
def test_own_questions_cite_the_clause_and_state_the_figure(real_assistant):
    assert len(OWN) >= 30 and {cid.split("#")[0] for _, cid, _ in OWN} == {
        "jizhou-2018", "baodi-2019", "lutai-zjtx", "xiqing-2017", "tianjin-2022"}
    failures = []
    for q, cid, fig in OWN:
        a = real_assistant.ask(q)
        assert not check_grounded(a), q
        if a.refused or cid not in {c.clause_id for c in a.citations} or compact(fig) not in compact(a.answer):
            failures.append((q, [c.clause_id for c in a.citations], a.answer[:120]))
    print(f"\nown questions: {len(OWN) - len(failures)}/{len(OWN)} right clause and figure")
    assert not failures, failures


@pytest.mark.model
def test_refusals(real_assistant):
    for q in REFUSE:
        a = real_assistant.ask(q)
        assert a.refused and not a.citations and "[1]" not in a.answer, q
        assert "天津市蓟州区" in a.answer


@pytest.mark.model
def test_two_turn_conversations(real_assistant):
    for first, follow, cid, fig in CONVERSATIONS:
        region = next(r for r in ("蓟州区", "宝坻区", "芦台经济开发区", "西青区") if r in first)
        assert region not in follow  # the follow-up alone names no region: only the first turn sets it
        a1 = real_assistant.chat(first)
        a2 = real_assistant.chat(follow, a1.session_id)
        assert a2.turn == 2 and a2.rewritten_query != follow and region in a2.rewritten_query
        assert cid in {c.clause_id for c in a2.citations}, (a2.rewritten_query, a2.answer)
        assert compact(fig) in compact(a2.answer), (a2.rewritten_query, a2.answer)


@pytest.mark.model
def test_whole_evaluation_set_is_grounded_and_measured(real_assistant):
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
    print(
        f"\neval set: facts in answer {right}/{non_refuse} ({right / non_refuse:.1%}); "
        f"refusal precision {tp}/{tp + fp}, recall {tp}/{tp + fn}; median chat {statistics.median(latencies) * 1000:.0f} ms"
    )
    # Floors well below the measured values (see the closing note), so regressions show.
    assert right / non_refuse >= 0.75 and tp / (tp + fn) >= 0.5


@pytest.mark.model
def test_every_region_question_answers_per_region(real_assistant):
    a = real_assistant.ask("各区对首次获批的国家高新技术企业有什么奖励？")
    lines = a.answer.splitlines()
    assert any("（天津市蓟州区）" in l and "30—50万元" in l for l in lines), a.answer
    assert any("（天津市宝坻区）" in l and "未规定金额" in l for l in lines), a.answer
    assert not check_grounded(a)
