"""Staff console over HTTP: sign-in and CSRF, the audit log, curated answers (the contract and the paraphrase
match), feedback review, the test-set export run by `assistant eval`, test-set uploads, validity and re-index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
TOKENS = "alice:alice-token-123,bob:bob-token-456"
ADMIN = "plain-admin-token"
ALICE = {"Authorization": "Bearer alice-token-123"}
CURATED_Q = "蓟州区对首次获批的国家高新技术企业奖励多少钱？"  # the seed set's jz-001
PARAPHRASE = "蓟州区首次获批国家高新技术企业的，奖励多少钱？"
CLAUSE = "jizhou-2018#三.(一)"


@pytest.fixture
def app_client(hash_settings):
    from assistant.api import create_app

    settings = hash_settings.model_copy(update={"admin_tokens": TOKENS, "admin_token": ADMIN, "rate_limit": "100000/minute"})
    app = create_app(settings)
    with TestClient(app) as c:
        yield c, app


@pytest.fixture
def client(app_client):
    return app_client[0]


def signed_in(client, token="alice-token-123") -> dict:
    r = client.post("/api/admin/session", json={"token": token})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf"]}


def curate(client, headers=ALICE, **fields) -> int:
    body = {"question": CURATED_Q, "answer": "对首次获批的国家高新技术企业，按规模给予30—50万元奖励[1]。", "clause_ids": [CLAUSE],
            **fields}
    r = client.post("/api/admin/curated", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


# ---------------------------------------------------------------- sign-in, CSRF, audit


def test_wrong_token_is_401_and_audited_without_the_token(client):
    assert client.post("/api/admin/session", json={"token": "guess-1234567"}).status_code == 401
    assert client.get("/api/admin/library", headers={"Authorization": "Bearer guess-7654321"}).status_code == 401
    entries = client.get("/api/admin/audit", headers=ALICE).json()["entries"]
    failed = [e for e in entries if e["action"] == "auth.failed"]
    assert [e["detail"]["via"] for e in failed] == ["bearer", "sign-in"] and all(not e["ok"] for e in failed)
    assert failed[0]["target"] == "testclient"
    dump = json.dumps(entries)
    assert "guess-1234567" not in dump and "guess-7654321" not in dump


def test_session_cookie_is_signed_httponly_strict_and_writes_need_the_csrf_header(client):
    r = client.post("/api/admin/session", json={"token": "bob-token-456"})
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie and "bob-token-456" not in cookie
    csrf = r.json()["csrf"]
    assert client.get("/api/admin/session").json()["actor"] == "bob"
    body = {"question": CURATED_Q, "answer": "答[1]", "clause_ids": [CLAUSE]}
    assert client.post("/api/admin/curated", json=body).status_code == 403  # the cookie alone is not enough
    assert client.post("/api/admin/curated", json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/api/admin/curated", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    # a tampered cookie is no session
    value = client.cookies.get("assistant_admin")
    client.cookies.clear()
    assert client.get("/api/admin/session", headers={"Cookie": f"assistant_admin={value}"}).status_code == 200
    assert client.get("/api/admin/session", headers={"Cookie": f"assistant_admin={value[:-3]}xyz"}).status_code == 401


def test_named_tokens_name_the_actor_and_the_single_token_stays_admin(client):
    curate(client)
    curate(client, headers={"Authorization": f"Bearer {ADMIN}"})
    client.delete("/api/admin/session", headers={"Authorization": "Bearer bob-token-456"})
    entries = client.get("/api/admin/audit", headers=ALICE).json()["entries"]
    assert [(e["actor"], e["action"]) for e in entries[:3]] == [("bob", "auth.sign_out"), ("admin", "curated.add"),
                                                                ("alice", "curated.add")]
    assert entries[1]["target"].startswith("curated:") and entries[1]["detail"]["clause_ids"] == [CLAUSE]


def test_malformed_named_tokens_are_refused_by_position(hash_settings):
    from assistant.api.auth import staff_tokens

    with pytest.raises(ValueError, match="entry 2: expected name:token"):
        staff_tokens(hash_settings.model_copy(update={"admin_tokens": "alice:alice-token-123,bob"}))
    tokens_file = hash_settings.data_dir.parent / "tokens.txt"
    tokens_file.write_text("carol:carol-token-789\n# a comment\ndave:dave-token-000\n", encoding="utf-8")
    assert staff_tokens(hash_settings.model_copy(update={"admin_tokens": str(tokens_file)})) == {
        "carol-token-789": "carol", "dave-token-000": "dave"}


# ---------------------------------------------------------------- curated answers


def test_curated_contract(client):
    new = curate(client, note="按2018年计划")
    listed = client.get("/api/admin/curated", headers=ALICE).json()["curated"]
    assert [(c["id"], c["served"], c["missing"], c["note"], c["actor"]) for c in listed] == [(new, True, [], "按2018年计划", "alice")]
    r = client.put(f"/api/admin/curated/{new}", headers=ALICE,
                   json={"question": CURATED_Q, "answer": "新的答复[1]", "clause_ids": [CLAUSE]})
    assert r.status_code == 200 and r.json() == {"id": new}
    assert client.get("/api/admin/curated", headers=ALICE).json()["curated"][0]["answer"] == "新的答复[1]"
    assert client.delete(f"/api/admin/curated/{new}", headers=ALICE).json() == {"ok": True}
    assert client.delete(f"/api/admin/curated/{new}", headers=ALICE).status_code == 404
    assert client.put(f"/api/admin/curated/{new}", headers=ALICE,
                      json={"question": "q", "answer": "a", "clause_ids": [CLAUSE]}).status_code == 404


@pytest.mark.parametrize("body, words", [
    ({"clause_ids": [CLAUSE, "jizhou-2018#九.(九)"]}, "unknown clause 'jizhou-2018#九.(九)'"),
    ({"answer": "见[2]"}, "marker [2] cites no clause"),
    ({"clause_ids": []}, "clause_ids: cite 1"),
    ({"question": "  "}, "question: must be"),
])
def test_curated_bad_input_is_422_naming_it_and_stores_nothing(client, body, words):
    payload = {"question": CURATED_Q, "answer": "答复[1]", "clause_ids": [CLAUSE], **body}
    r = client.post("/api/admin/curated", headers=ALICE, json=payload)
    assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert client.get("/api/admin/curated", headers=ALICE).json()["curated"] == []


def test_a_close_paraphrase_gets_the_curated_answer_with_current_clause_text(app_client):
    client, app = app_client
    curate(client)
    r = client.post("/api/chat", json={"message": PARAPHRASE}).json()
    assert r["source"] == "curated" and r["answer"].startswith("对首次获批的国家高新技术企业，按规模给予30—50万元奖励[1]")
    cite = r["citations"][0]
    assert cite["clause_id"] == CLAUSE and cite["text"] == app.state.assistant.index.get(CLAUSE).text
    assert cite["quote"] in cite["text"] and cite["validity"]["status"] in ("current", "expired", "unknown")
    stream = client.post("/api/chat/stream", json={"message": CURATED_Q}).text
    meta = json.loads(stream.split("event: meta\ndata: ", 1)[1].split("\n", 1)[0])
    assert meta["source"] == "curated"
    # a follow-up the conversation rewrites is never matched: it asks something else
    follow = client.post("/api/chat", json={"message": "宝坻区呢？", "session_id": r["session_id"]}).json()
    assert follow["source"] == "retrieval"


def test_no_other_seed_question_gets_the_curated_answer(client):
    """Every single-turn seed question that asks something else (other gold quotes) gets retrieval."""
    curate(client)
    items = [json.loads(line) for line in (ROOT / "eval/testset.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    gold = next(i for i in items if i["question"] == CURATED_Q if "question" in i)["gold_quotes"]
    others = [i["question"] for i in items if "question" in i and i.get("gold_quotes") != gold]
    assert len(others) > 150
    served = [q for q in others if client.post("/api/chat", json={"message": q}).json()["source"] == "curated"]
    assert served == []


def test_a_curated_answer_whose_clause_disappears_is_flagged_and_not_served(client, hash_settings):
    import time

    policy = "关于支持无人机产业发展的若干措施\n一、对新落户的无人机整机企业，给予一次性奖励200万元。\n二、对无人机企业研发投入给予补助。\n"
    up = client.post("/api/admin/documents", headers=ALICE, files={"file": ("无人机.txt", policy.encode())}).json()
    client.post("/api/admin/reindex", headers=ALICE)
    for _ in range(200):
        status = client.get("/api/admin/reindex", headers=ALICE).json()
        if status["state"] != "running":
            break
        time.sleep(0.05)
    assert status["state"] == "done" and status["progress"]["stage"] == "done" and status["stats"]["skipped"] == []
    hits = client.post("/api/search", json={"query": "无人机整机企业 一次性奖励", "k": 3, "doc_id": up["doc_id"]}).json()["hits"]
    cid = hits[0]["clause_id"]
    question = "对新落户的无人机整机企业奖励多少？"
    new = curate(client, question=question, answer="一次性奖励200万元[1]。", clause_ids=[cid])
    assert client.post("/api/chat", json={"message": question}).json()["source"] == "curated"
    client.delete(f"/api/admin/documents/{up['doc_id']}", headers=ALICE)
    client.post("/api/admin/reindex", headers=ALICE)
    for _ in range(200):
        if client.get("/api/admin/reindex", headers=ALICE).json()["state"] != "running":
            break
        time.sleep(0.05)
    listed = {c["id"]: c for c in client.get("/api/admin/curated", headers=ALICE).json()["curated"]}
    assert listed[new]["served"] is False and listed[new]["missing"] == [cid]
    assert client.post("/api/chat", json={"message": question}).json()["source"] == "retrieval"
    actions = [e["action"] for e in client.get("/api/admin/audit", headers=ALICE).json()["entries"]]
    assert actions[:3] == ["reindex.start", "document.delete", "curated.add"] and "document.upload" in actions


# ---------------------------------------------------------------- feedback review, test items, export


def test_feedback_review_keeps_question_and_answer_and_filters(client):
    r = client.post("/api/chat", json={"message": "首次获批的国家高新技术企业有什么奖励？"}).json()
    client.post("/api/feedback", json={"session_id": r["session_id"], "turn": 1, "rating": "down", "comment": "要区分地区"})
    client.post("/api/feedback", json={"session_id": r["session_id"], "turn": 1, "rating": "up"})
    down = client.get("/api/admin/review?rating=down", headers=ALICE).json()["feedback"]
    assert len(down) == 1 and down[0]["question"] == "首次获批的国家高新技术企业有什么奖励？"
    assert down[0]["answer"] == r["answer"] and down[0]["comment"] == "要区分地区"
    assert [c["clause_id"] for c in down[0]["citations"]] == [c["clause_id"] for c in r["citations"]]
    assert len(client.get("/api/admin/review", headers=ALICE).json()["feedback"]) == 2
    assert client.get("/api/admin/review?until=2000-01-01", headers=ALICE).json()["feedback"] == []
    assert client.get("/api/admin/review?since=nonsense", headers=ALICE).status_code == 422


def test_exported_items_run_with_assistant_eval(client, hash_settings, tmp_path):
    curate(client)
    r = client.post("/api/admin/testitems", headers=ALICE, json={"question": "蓟州区对获评中国驰名商标的企业奖励多少？",
                                                                  "clause_ids": ["jizhou-2018#三.(二)"], "facts": ["10万元"],
                                                                  "expected": "中国驰名商标一次性奖励10万元"})
    assert r.status_code == 201
    client.post("/api/admin/testitems", headers=ALICE, json={"question": "今天天气怎么样？", "refuse": True})
    bad = client.post("/api/admin/testitems", headers=ALICE, json={"question": "x", "clause_ids": ["nope#1"]})
    assert bad.status_code == 422 and "nope#1" in bad.json()["detail"]
    text = client.get("/api/admin/testset.jsonl", headers=ALICE).text
    items = [json.loads(line) for line in text.splitlines()]
    assert [(i["id"][:7], i["refuse"]) for i in items] == [("curated", False), ("review-", True), ("review-", False)]
    index = client.app.state.assistant.index
    for item in (items[0], items[2]):  # each gold quote is verbatim text of a cited clause
        assert item["gold_quotes"] and all(any(q in c.text for c in index.clauses) for q in item["gold_quotes"])
    questions = tmp_path / "exported.jsonl"
    questions.write_text(text, encoding="utf-8")
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(hash_settings.corpus_dir), "ASSISTANT_INDEX_DIR": str(hash_settings.index_dir),
           "ASSISTANT_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "assistant", "eval", "--questions", str(questions), "--out", str(tmp_path / "out"),
                           "--embedder", "hash", "--modes", "hybrid", "bm25", "--index-cache", str(tmp_path / "cache")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out/report.json").read_text(encoding="utf-8"))
    assert report["meta"]["items"] == 3 and report["meta"]["retrieval_items"] == 2
    assert report["answers"]["refusal"]["recall"] == 1.0
    assert report["retrieval"]["hybrid"]["recall@10"] == 1.0


# ---------------------------------------------------------------- evaluation runs and test sets


@pytest.mark.parametrize("content, words", [
    (b'{"question": "a"}\n{"question": \n', "line 2: not valid JSON"),
    (b'{"question": "a"}\n\n{"gold_quotes": ["x"]}\n', "line 3: needs a question"),
    (b'{"id": "x", "question": "a"}\n{"id": "x", "question": "b"}\n', "line 2: id 'x' is used twice"),
    (b'{"question": "a", "refuse": "yes"}\n', "line 1: refuse must be"),
    (b'["a"]\n', "line 1: each line must be a JSON object"),
    (b'{"question": "a"}\n\xff\xfe\n', "line 2: not UTF-8"),
])
def test_a_broken_test_set_is_422_naming_the_line_and_nothing_is_stored(client, content, words):
    r = client.post("/api/admin/testsets", headers=ALICE, files={"file": ("set.jsonl", content)})
    assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert client.get("/api/admin/testsets", headers=ALICE).json()["uploaded"] == []


def test_an_oversized_test_set_is_422_naming_the_line():
    from assistant.review import parse_testset
    from assistant.schema import QueryError

    data = b"".join(b'{"question": "q%d"}\n' % i for i in range(50))
    with pytest.raises(QueryError, match=r"line 5: the test set passes the size limit of 80 bytes"):
        parse_testset(data, max_bytes=80)
    with pytest.raises(QueryError, match="line 11: the test set passes the limit of 10 items"):
        parse_testset(data, max_items=10)


def test_an_evaluation_runs_in_the_background_and_keeps_its_report(app_client):
    client, app = app_client
    lines = [{"id": "a", "question": CURATED_Q, "gold_quotes": ["给予30—50万元奖励"], "facts": ["30—50万元"], "refuse": False},
             {"id": "b", "question": "今天天气怎么样？", "gold_quotes": [], "refuse": True}]
    up = client.post("/api/admin/testsets", headers=ALICE,
                     files={"file": ("mini.jsonl", "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode())})
    assert up.status_code == 201 and up.json()["items"] == 2
    run = client.post("/api/admin/evalruns", headers=ALICE, json={"testset": str(up.json()["id"])})
    assert run.status_code == 202 and run.json()["state"] == "running" and run.json()["total"] == 2
    app.state.eval_runner.join(120)
    done = client.get(f"/api/admin/evalruns/{run.json()['id']}", headers=ALICE).json()
    assert done["state"] == "done", done["error"]
    assert done["metrics"]["recall@3"] == 1.0 and done["report"]["answers"]["refusal"]["recall"] == 1.0
    png = client.get(f"/api/admin/evalruns/{done['id']}/files/recall_at_k.png", headers=ALICE)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert client.get(f"/api/admin/evalruns/{done['id']}/files/..%2Fsecret", headers=ALICE).status_code == 404
    assert client.get("/api/admin/evalruns", headers=ALICE).json()["runs"][0]["index_version"]
    bad = client.post("/api/admin/evalruns", headers=ALICE, json={"testset": "nonsense"})
    assert bad.status_code == 422


# ---------------------------------------------------------------- library


def test_validity_override_is_written_to_the_sidecar_and_audited(client, hash_settings):
    r = client.put("/api/admin/documents/jizhou-2018/validity", headers=ALICE,
                   json={"valid_until": "2030-12-31", "basis": "延期通知"})
    assert r.status_code == 200 and r.json()["override"] == {"valid_until": "2030-12-31", "validity_basis": "延期通知"}
    docs = {d["doc_id"]: d for d in client.get("/api/admin/library", headers=ALICE).json()["documents"]}
    assert docs["jizhou-2018"]["override"]["valid_until"] == "2030-12-31" and docs["jizhou-2018"]["state"] == "indexed"
    assert docs["jizhou-2018"]["region"] and docs["jizhou-2018"]["clause_count"] > 10
    bad = client.put("/api/admin/documents/jizhou-2018/validity", headers=ALICE, json={"valid_until": "明年"})
    assert bad.status_code == 422
    assert client.put("/api/admin/documents/nope/validity", headers=ALICE, json={"valid_until": ""}).status_code == 404
    entry = client.get("/api/admin/audit?action=document.", headers=ALICE).json()["entries"]
    assert [(e["target"], e["ok"]) for e in entry] == [("nope", False), ("jizhou-2018", False), ("jizhou-2018", True)]


def test_batch_upload_reports_each_file(client):
    files = [("files", ("一.txt", "关于支持企业的措施\n一、对企业给予奖励10万元。\n".encode())),
             ("files", ("坏.exe", b"MZ")), ("files", ("二.txt", "关于支持人才的措施\n一、对人才给予补贴5万元。\n".encode()))]
    r = client.post("/api/admin/upload", headers=ALICE, files=files)
    assert r.status_code == 207
    assert [(x["file"], x["ok"], x["status"]) for x in r.json()["results"]] == [("一.txt", True, 201), ("坏.exe", False, 415),
                                                                               ("二.txt", True, 201)]
    states = {d["source"]: d["state"] for d in client.get("/api/admin/library", headers=ALICE).json()["documents"]}
    assert states["一.txt"] == "pending" and "坏.exe" not in states
    uploads = client.get("/api/admin/audit?action=document.", headers=ALICE).json()["entries"]
    assert [(e["target"], e["ok"]) for e in uploads] == [("二.txt", True), ("坏.exe", False), ("一.txt", True)]
