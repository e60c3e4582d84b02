"""Evaluation stage: each metric on a hand-made case, the labelling script, and an end-to-end run on a tiny corpus."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from assistant import evaluate as ev
from assistant.schema import Clause

ROOT = Path(__file__).resolve().parent.parent


def test_ranking_metrics_on_known_case():
    ranked, rel = ["c", "a", "b"], {"a"}
    assert ev.recall_at_k(ranked, rel, 1) == 0
    assert ev.recall_at_k(ranked, rel, 3) == 1
    assert ev.mrr_at_k(ranked, rel, 10) == 0.5
    assert ev.ndcg_at_k(ranked, rel, 3) == pytest.approx(1 / math.log2(3))
    assert ev.mrr_at_k(["x", "y"], rel) == 0
    # two relevant, one found at rank 1: DCG 1, IDCG 1 + 1/log2(3)
    assert ev.ndcg_at_k(["a", "x", "y"], {"a", "b"}, 3) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ev.recall_at_k(["a", "x", "b"], {"a", "b"}, 1) == 0.5


def test_quote_ranking_counts_a_quote_once_and_ignores_spaces():
    passages = ["无关内容", "给予 30—50 万元奖励，另有", "再次 给予30—50万元奖励", "区财政补助500万元"]
    ranked = ev.quote_ranking(passages, ["给予30—50万元奖励", "补助500万元"])
    assert ranked[1] == 0 and ranked[3] == 1
    assert ev.recall_at_k(ranked, {0, 1}, 3) == 0.5
    assert ev.recall_at_k(ranked, {0, 1}, 4) == 1.0
    assert ev.mrr_at_k(ranked, {0, 1}) == 0.5


def test_answer_metrics():
    assert ev.fact_accuracy("奖励 30—50万元，补助５０%", ["30—50万元", "50%"]) == 1.0
    assert ev.fact_accuracy("奖励30万元", ["30—50万元", "30万元"]) == 0.5
    assert ev.fact_accuracy("任何", []) == 1.0
    assert ev.citation_precision(["a", "b"], ["a"]) == 0.5
    assert ev.citation_recall(["a", "b"], ["a", "c", "d", "e"]) == 0.25
    assert ev.citation_precision([], ["a"]) is None
    assert ev.citation_recall(["a"], []) is None
    r = ev.refusal_scores([True, True, False, False], [True, False, True, False])
    assert r["precision"] == 0.5 and r["recall"] == 0.5
    assert ev.refusal_scores([False], [False])["precision"] is None


def test_percentiles_and_tags():
    assert ev.percentile([1, 2, 3, 4, 5], 50) == 3
    assert ev.percentile([0, 10], 95) == pytest.approx(9.5)
    assert ev.percentile([], 50) is None
    rows = [{"tags": ["a", "b"], "v": 1.0}, {"tags": ["a"], "v": 0.0}, {"tags": ["b"], "v": None}]
    assert ev.by_tag(rows, "v") == {"a": 0.5, "b": 1.0}


def test_naive_windows_overlap():
    w = ev.windows("x" * 1000, 500, 50)
    assert [len(p) for p in w] == [500, 500, 100]
    assert ev.windows("短", 500, 50) == ["短"]


def _clause(cid, text, ordinal):
    return Clause(clause_id=cid, doc_id="d", doc_title="T", region="R", section="", text=text, ordinal=ordinal)


def test_label_relevant_including_split_quote():
    clauses = [_clause("d#1", "一、对首次获批的企业给予\n30万元", 1), _clause("d#2", "奖励。二、其他", 2), _clause("d#3", "无关", 3)]
    assert ev.relevant_clauses(clauses, ["首次获批的企业"]) == ["d#1"]
    assert ev.relevant_clauses(clauses, ["给予30万元奖励"]) == ["d#1", "d#2"]
    assert ev.relevant_clauses(clauses, ["不存在"]) == []
    sys.path.insert(0, str(ROOT / "eval"))
    try:
        import label
    finally:
        sys.path.pop(0)
    items, unmatched = label.label_items(
        [{"id": "a", "gold_quotes": ["无关"], "relevant": [], "tags": ["x"]}, {"id": "b", "gold_quotes": ["缺失"], "relevant": []}], clauses
    )
    assert items[0] == {"id": "a", "gold_quotes": ["无关"], "relevant": ["d#3"], "tags": ["x"]}
    assert unmatched == ["b"]


TINY_DOC = """关于支持企业创新的若干措施

一、高新技术企业
（一）对首次认定的国家高新技术企业给予30万元奖励。
（二）对重新认定的高新技术企业给予10万元奖励。
二、上市挂牌
（一）对在全国中小企业股份转让系统挂牌的企业给予150万元补助。
（二）对在上海证券交易所上市的企业给予500万元补助。
三、保障措施
（一）领导小组办公室设在区工信委，负责日常工作。
"""


def test_evaluate_end_to_end_tiny(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"doc_id": "tiny", "title": "支持企业创新的若干措施", "text": TINY_DOC}, ensure_ascii=False) + "\n", encoding="utf-8")
    qs = [
        {"id": "t-001", "question": "首次认定的国家高新技术企业奖励多少？", "gold_quotes": ["对首次认定的国家高新技术企业给予30万元奖励"], "relevant": [], "facts": ["30万元"], "refuse": False, "tags": ["amount"]},
        {"id": "t-002", "turns": ["新三板挂牌有补助吗？", "那在上交所上市呢？"], "gold_quotes": ["对在上海证券交易所上市的企业给予500万元补助"], "relevant": [], "facts": ["500万元"], "refuse": False, "tags": ["multi_turn"]},
        {"id": "t-003", "question": "今天天气怎么样？", "gold_quotes": [], "relevant": [], "facts": [], "refuse": True, "tags": ["refusal"]},
    ]
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in qs), encoding="utf-8")
    out = tmp_path / "out"
    from assistant.config import Settings

    settings = Settings(embedder="hash", hash_dim=256, data_dir=tmp_path / "data", index_dir=tmp_path / "index")
    report = ev.evaluate(questions, out, corpus=corpus, embedder_kind="hash", settings=settings, progress=False,
                         cache_root=tmp_path / "cache")
    for name in ("report.json", "report.md", "recall_at_k.png"):
        assert (out / name).exists(), name
    assert set(report["retrieval"]) == set(ev.MODES)
    assert report["meta"]["retrieval_items"] == 2
    for m in report["retrieval"].values():
        for key in ("recall@1", "recall@3", "recall@10", "mrr@10", "ndcg@10"):
            assert 0 <= m[key] <= 1
        assert m["recall@1"] <= m["recall@3"] <= m["recall@10"]
    # Two answerable items over a nine-clause document whose gold clauses share the questions' words:
    # the lexical and the hybrid ranking put each first, and each answer states its figure.
    for mode in ("bm25", "hybrid"):
        assert report["retrieval"][mode]["recall@1"] == 1.0 and report["retrieval"][mode]["mrr@10"] == 1.0, mode
    a = report["answers"]
    assert a["fact_accuracy"] == 1.0 and a["all_facts"] == 1.0 and a["latency_p50_ms"] > 0
    assert a["citation_recall"] == 1.0
    assert (a["refusal"]["tp"], a["refusal"]["fp"], a["refusal"]["fn"]) == (1, 0, 0)  # the weather question, and only it
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in data["items"]] == ["t-001", "t-002", "t-003"]
    assert data["items"][0]["relevant"]


def test_cli_no_answers(tmp_path, monkeypatch):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"doc_id": "tiny", "title": "若干措施", "text": TINY_DOC}, ensure_ascii=False) + "\n", encoding="utf-8")
    q = {"id": "t-001", "question": "办公室设在哪里？", "gold_quotes": ["领导小组办公室设在区工信委"], "relevant": [], "facts": ["区工信委"], "refuse": False, "tags": ["place"]}
    (tmp_path / "q.jsonl").write_text(json.dumps(q, ensure_ascii=False) + "\n", encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    rc = ev.cli("eval", ["--corpus", str(corpus), "--questions", str(tmp_path / "q.jsonl"), "--out", str(tmp_path / "o"),
                         "--embedder", "hash", "--no-answers", "--modes", "bm25", "naive", "--index-cache", str(tmp_path / "cache")])
    assert rc == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))
    assert set(report["retrieval"]) == {"bm25", "naive"} and "answers" not in report


# -- span items (outside sets such as ../shared/extdata/ncp/dev.jsonl) ----------------------------------------------
# Expected values computed with ../shared/extdata/score_http.py's norm()/found() (not imported: it lives outside).
@pytest.mark.parametrize(
    "raw, normed",
    [
        ("给予 30—50 万元奖励", "给予30-50万元奖励"),
        ("２０２０年１月１日至１２月３１日", "2020年1月1日-12月31日"),
        ("“小巨人”企业〔2020〕7号", '"小巨人"企业[2020]7号'),
        ("1~3年 到 5年", "1-3年-5年"),
        ("ＡＢＣ\u3000ｄｅｆ\n\t x", "ABCdefx"),
        ("减免3-6个月房租––至到", "减免3-6个月房租-"),
        ("西青政发〔 2017 〕 7 号", "西青政发[2017]7号"),
        (None, ""),
    ],
)
def test_span_norm_matches_score_http(raw, normed):
    assert ev.span_norm(raw) == normed


LONG_GOLD = "对参加展会的中小微企业按照实际缴纳场租费用50%的标准给予支持，补助金额不超过50万元。此外另行给予每家企业一次性奖励二十万元并由区财政统一拨付到位"


def test_span_found_substring_and_long_runs():
    assert ev.span_found("给予30-50万元奖励", "对企业给予30-50万元奖励。")
    assert not ev.span_found("abc", "xabx")
    g = ev.span_norm(LONG_GOLD)
    assert len(g) == 74
    assert ev.span_found(g, ev.span_norm(LONG_GOLD[:44]))  # over 60 chars: a 30-char run (at offset 0) suffices
    assert ev.span_found(g, ev.span_norm(LONG_GOLD[5:40]))  # the run at offset 5
    assert not ev.span_found(g, ev.span_norm(LONG_GOLD[1:30]))  # no whole run of 30
    assert not ev.span_found(g[:60], g[:59])  # up to 60 chars: the whole span is needed
    assert ev.span_found(g[:61], g[:30] + "z")


def test_span_rank_hits_and_answers():
    passages = ["无关", "给予 30—50 万元奖励", "给予30至50万元奖励"]
    assert ev.span_rank(passages, "给予30-50万元奖励") == 1
    assert ev.span_rank(passages, "不存在") is None
    m = ev.span_hits([0, 2, None, 4])
    assert m == {"hit@1": 0.25, "hit@3": 0.5, "hit@5": 0.75, "hit@10": 0.75, "mrr@10": pytest.approx((1 + 1 / 3 + 1 / 5) / 4)}
    assert ev.span_hits([12])["mrr@10"] == 0 and ev.span_hits([])["hit@1"] is None
    assert ev.answer_contains("奖励 30—50 万元[1]", "30到50万元", refused=False)
    assert not ev.answer_contains("奖励 30—50 万元[1]", "30到50万元", refused=True)
    assert ev.upper_median([5, 1, 9, 3]) == 5 and ev.upper_median([]) is None
    assert ev.is_span_item({"question": "q", "answer": "a"}) and not ev.is_span_item({"question": "q", "answer": "a", "gold_quotes": []})


SPAN_DOCS = [
    {"doc_id": "a", "title": "北京市关于支持中小微企业应对疫情的若干措施",
     "text": "北京市关于支持中小微企业应对疫情的若干措施\n对参加展会的中小微企业按照实际缴纳场租费用50%的标准给予支持，补助金额不超过50万元。"},
    {"doc_id": "b", "title": "上海市关于稳定就业的通知",
     "text": "上海市关于稳定就业的通知\n对不裁员或少裁员的企业，返还上年度实际缴纳失业保险费的50%，执行期限为2020年1月1日至12月31日。"},
]
# Each document is one clause, so every search returns at most two. Hybrid fuses BM25 (weight 1) with dense
# (weight 0.5): the BM25 winner is first whatever the hash vectors say.
SPAN_QS = [
    # BM25 and hybrid first: the question shares 北京市/展会/场租 with a only
    {"id": "s1", "question": "北京市对参加展会的中小微企业场租有什么补助？", "answer": "按照实际缴纳场租费用50%的标准给予支持"},
    # 到 in the gold, 至 in the text: both become "-"
    {"id": "s2", "question": "上海市对不裁员的企业返还多少失业保险费？", "answer": "返还上年度实际缴纳失业保险费的50%，执行期限为2020年1月1日到12月31日"},
    # the question matches a, the gold is in b: hybrid rank 2 (b comes from the dense side only), BM25 misses
    {"id": "s3", "question": "北京市展会场租补助标准", "answer": "不裁员或少裁员的企业"},
    # a 74-character gold whose first 44 characters are in a: found through a 30-character run
    {"id": "s4", "question": "北京市展会补助金额不超过多少？", "answer": LONG_GOLD},
    # in no document (and the place is not covered: a refusal)
    {"id": "s5", "question": "广州市对餐饮企业有什么补贴？", "answer": "给予餐饮企业每家10万元补贴"},
]


def _write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _span_settings(tmp_path):
    from assistant.config import Settings

    return Settings(embedder="hash", hash_dim=256, data_dir=tmp_path / "data", index_dir=tmp_path / "index")


def test_span_set_end_to_end_and_cached_index(tmp_path):
    corpus = _write_jsonl(tmp_path / "corpus.jsonl", SPAN_DOCS)
    questions = _write_jsonl(tmp_path / "dev.jsonl", SPAN_QS)
    cache = tmp_path / "cache"
    run = lambda out: ev.evaluate(questions, tmp_path / out, corpus=corpus, embedder_kind="hash",  # noqa: E731
                                  settings=_span_settings(tmp_path), progress=False, cache_root=cache)
    report = run("o1")
    span = report["span"]
    # hybrid ranks 1, 1, 2, 1, none
    assert span["questions"] == 5 and span["mode"] == "hybrid"
    assert (span["hit@1"], span["hit@3"], span["hit@5"], span["hit@10"]) == (0.6, 0.8, 0.8, 0.8)
    assert span["mrr@10"] == pytest.approx((1 + 1 + 0.5 + 1 + 0) / 5)
    # BM25 ranks 1, 1, none, 1, none
    bm = span["by_mode"]["bm25"]
    assert (bm["hit@1"], bm["hit@10"], bm["mrr@10"]) == (0.6, 0.6, 0.6)
    assert set(span["by_mode"]) == set(ev.MODES)
    # extractive answers from the one matching clause hold s1, s2, s4; s3's answer comes from a, s5 is refused
    rows = {r["id"]: r for r in json.loads((tmp_path / "o1" / "report.json").read_text(encoding="utf-8"))["items"]}
    assert {i: r["answer_contains"] for i, r in rows.items()} == {"s1": True, "s2": True, "s3": False, "s4": True, "s5": False}
    assert rows["s5"]["refused"] and span["refused"] == 0.2
    assert span["answer_contains"] == 0.6
    assert span["answer_chars_p50"] == sorted(len(r["answer"]) for r in rows.values())[2]
    assert report["retrieval"] == {} and "answers" not in report
    md = (tmp_path / "o1" / "report.md").read_text(encoding="utf-8")
    assert "answer_contains" in md and "span mode" in md
    assert [json.loads(line)["id"] for line in (tmp_path / "o1" / "misses.jsonl").read_text(encoding="utf-8").splitlines()] == ["s3", "s5"]

    info = report["meta"]["index"]
    assert info["built"] == "missing" and info["embedded"] == 2
    index_dir = Path(info["dir"])
    assert index_dir.parent == cache
    manifest = (index_dir / "manifest.json").read_bytes()
    naive = Path(info["dir"] + "-naive.npz")
    naive_mtime = naive.stat().st_mtime_ns

    again = run("o2")  # the cached index is current: nothing is embedded or rewritten
    assert again["meta"]["index"]["built"] is None and again["meta"]["index"]["embedded"] == 0
    assert (index_dir / "manifest.json").read_bytes() == manifest
    assert naive.stat().st_mtime_ns == naive_mtime
    assert {k: v for k, v in again["span"].items() if "ms" not in k and k != "by_mode"} == {
        k: v for k, v in span.items() if "ms" not in k and k != "by_mode"}

    # an edited corpus (same path) rebuilds in place and embeds only the clause whose text changed
    docs = [SPAN_DOCS[0], {**SPAN_DOCS[1], "text": SPAN_DOCS[1]["text"].replace("50%", "60%")}]
    _write_jsonl(corpus, docs)
    third = run("o3")
    assert third["meta"]["index"]["built"] == "corpus changed"
    assert third["meta"]["index"]["embedded"] == 1 and third["meta"]["index"]["dir"] == info["dir"]


def test_span_answer_metrics_follow_the_answer_text(tmp_path, monkeypatch):
    """answer_contains, refused and the answer length come from the text `chat` returns, as POST /api/chat gives it."""
    from assistant.pipeline import Assistant
    from assistant.schema import Answer

    canned = {
        "s1": Answer("按照实际缴纳场租费用 50％ 的标准给予支持[1]"),  # NFKC and spaces: contains
        "s2": Answer("返还上年度实际缴纳失业保险费的50%，执行期限为2020年1月1日至12月31日。[1]"),  # 至 vs 到: contains
        "s3": Answer("不裁员或少裁员的企业", refused=True),  # refused: never contains
        "s4": Answer("补助金额不超过50万元。"),  # 12 characters of a 74-character gold: no 30-character run
        "s5": Answer("抱歉", refused=True),
    }
    by_question = {q["question"]: canned[q["id"]] for q in SPAN_QS}
    monkeypatch.setattr(Assistant, "chat", lambda self, message, session_id=None: by_question[message])
    corpus = _write_jsonl(tmp_path / "corpus.jsonl", SPAN_DOCS)
    questions = _write_jsonl(tmp_path / "dev.jsonl", SPAN_QS)
    report = ev.evaluate(questions, tmp_path / "o", corpus=corpus, embedder_kind="hash", settings=_span_settings(tmp_path),
                         modes=["hybrid"], progress=False, cache_root=tmp_path / "cache")
    span = report["span"]
    assert span["answer_contains"] == 0.4 and span["refused"] == 0.4
    assert span["answer_chars_p50"] == len(canned["s4"].answer)  # lengths 24, 46, 10, 12, 2 → sorted[2] = 12
    assert set(span["by_mode"]) == {"hybrid"}


def test_mixed_file_and_limit(tmp_path):
    corpus = _write_jsonl(tmp_path / "corpus.jsonl", SPAN_DOCS)
    seed = {"id": "t-001", "question": "北京市展会场租补助多少？", "gold_quotes": ["补助金额不超过50万元"], "relevant": [],
            "facts": ["50万元"], "refuse": False, "tags": ["amount"]}
    questions = _write_jsonl(tmp_path / "q.jsonl", [seed] + SPAN_QS)
    report = ev.evaluate(questions, tmp_path / "o", corpus=corpus, embedder_kind="hash", settings=_span_settings(tmp_path),
                         modes=["bm25", "hybrid"], progress=False, cache_root=tmp_path / "cache", limit=3)
    assert report["meta"]["items"] == 3 and report["meta"]["retrieval_items"] == 1 and report["meta"]["span_items"] == 2
    assert report["retrieval"]["bm25"]["recall@1"] == 1.0  # the seed item, scored as before
    assert report["answers"]["refusal"]["tp"] == 0 and report["answers"]["fact_accuracy"] is not None
    assert report["span"]["questions"] == 2 and report["span"]["hit@1"] == 1.0
    text = ev.table(report)
    assert "recall@1" in text and "hit@1" in text


def test_cli_span_run_prints_span_metrics(tmp_path, capsys, monkeypatch):
    corpus = _write_jsonl(tmp_path / "corpus.jsonl", SPAN_DOCS)
    questions = _write_jsonl(tmp_path / "dev.jsonl", SPAN_QS)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    rc = ev.cli("eval", ["--corpus", str(corpus), "--questions", str(questions), "--out", str(tmp_path / "o"), "--embedder", "hash",
                         "--modes", "hybrid", "--limit", "2", "--index-cache", str(tmp_path / "cache")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "answer_contains" in out and '"questions": 2' in out and '"hit@1": 1.0' in out
    assert json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))["span"]["questions"] == 2


@pytest.mark.parametrize(
    "command, options",
    [("eval", ["--corpus", "--questions", "--limit", "--modes"]), ("bench", ["--sizes"]), ("ask", ["--region", "--json"]),
     ("chat", ["--json"]), ("serve", ["--port"])],
)
def test_subcommand_help_lists_the_modules_options(command, options, capsys):
    from assistant.cli import main

    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in options:
        assert option in out
