"""API edge: every route over the real Assistant with the hash embedder, bad inputs, admin, re-index."""

from __future__ import annotations

import io
import json
import time
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

QUESTION = "首次获批的国家高新技术企业有什么奖励？"
TOKEN = "s3cret-token"


def make_client(settings, **overrides):
    from assistant.api import create_app

    settings = settings.model_copy(update=overrides)
    app = create_app(settings)
    return TestClient(app), app


@pytest.fixture
def client(hash_settings):
    c, _ = make_client(hash_settings, admin_token=TOKEN)
    with c:
        yield c


@pytest.fixture
def app_client(hash_settings):
    c, app = make_client(hash_settings, admin_token=TOKEN)
    with c:
        yield c, app


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def parse_sse(body: str) -> list[tuple[str, dict]]:
    """(event, data) pairs of a server-sent-events body."""
    events = []
    for block in body.strip().split("\n\n"):
        event, data = "message", []
        for line in block.splitlines():
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
        if data:
            events.append((event, json.loads("\n".join(data))))
    return events


# ---------------------------------------------------------------- public routes


def test_health(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["documents"] == 5 and body["clauses"] > 100
    assert body["model"].startswith("hash")
    assert "天津市蓟州区" in body["regions"]


def test_chat_answers_with_citations_and_follow_up(client):
    r = client.post("/api/chat", json={"message": QUESTION})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"session_id", "turn", "answer", "refused", "rewritten_query", "citations", "related"}
    assert body["session_id"] and body["turn"] >= 1
    # the seeds answer this question (30—50万元 for 首次获批的国家高新技术企业): a refusal is a failure
    assert not body["refused"], body["answer"]
    assert body["citations"] and f"[{body['citations'][0]['n']}]" in body["answer"]
    c = body["citations"][0]
    assert c["quote"] in c["text"]
    r2 = client.post("/api/chat", json={"message": "那上市呢？", "session_id": body["session_id"]})
    assert r2.status_code == 200
    assert r2.json()["session_id"] == body["session_id"] and r2.json()["turn"] == body["turn"] + 1


def test_chat_stream_sends_meta_deltas_done(client):
    with client.stream("POST", "/api/chat/stream", json={"message": QUESTION}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    events = parse_sse(body)
    names = [e for e, _ in events]
    assert names[0] == "meta" and names[-1] == "done" and "delta" in names
    meta, done = events[0][1], events[-1][1]
    assert meta["session_id"] == done["session_id"] and meta["turn"] == done["turn"]
    assert "".join(d["text"] for e, d in events if e == "delta") == done["answer"]
    assert "citations" in done


def test_chat_stream_bad_input_is_http_error(client):
    r = client.post("/api/chat/stream", json={"message": "  "})
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    r = client.post("/api/chat/stream", json={"message": "x", "session_id": "nope"})
    assert r.status_code == 404


@pytest.mark.parametrize(
    "payload, status, words",
    [
        ({"message": ""}, 422, "empty"),
        ({"message": "   \n\t"}, 422, "empty"),
        ({"message": "高" * 1001}, 422, "too long"),
        ({}, 422, "message"),
        ({"message": 12}, 422, "message"),
        ({"message": "x", "session_id": "no-such-session"}, 404, ""),
    ],
)
def test_chat_bad_input(client, payload, status, words):
    r = client.post("/api/chat", json=payload)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["detail"], str) and words in r.json()["detail"]


def test_malformed_json_is_400(client):
    for path in ("/api/chat", "/api/search", "/api/feedback"):
        r = client.post(path, content=b'{"message": ', headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "JSON" in r.json()["detail"]


def test_search_with_filters(client):
    r = client.post("/api/search", json={"query": "高新技术企业 奖励", "k": 3})
    assert r.status_code == 200
    body = r.json()
    assert len(body["hits"]) == 3 and body["took_ms"] >= 0
    assert set(body["hits"][0]) == {"clause_id", "doc_id", "doc_title", "region", "section", "text", "department", "score"}
    r = client.post("/api/search", json={"query": "奖励", "k": 5, "region": "蓟州"})
    assert r.json()["hits"] and all("蓟州" in h["region"] for h in r.json()["hits"])
    r = client.post("/api/search", json={"query": "奖励", "k": 5, "doc_id": "xiqing-2017"})
    assert r.json()["hits"] and all(h["doc_id"] == "xiqing-2017" for h in r.json()["hits"])
    r = client.post("/api/search", json={"query": "奖励", "k": 5, "department": "科"})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert hits and all("科" in h["department"] for h in hits), hits


@pytest.mark.parametrize(
    "payload, status",
    [({"query": " "}, 422), ({"query": "奖励", "k": 0}, 422), ({"query": "奖励", "k": "many"}, 422), ({"k": 3}, 422)],
)
def test_search_bad_input(client, payload, status):
    r = client.post("/api/search", json=payload)
    assert r.status_code == status and isinstance(r.json()["detail"], str)


def test_feedback_is_stored(app_client):
    client, app = app_client
    sid = client.post("/api/chat", json={"message": QUESTION}).json()["session_id"]
    r = client.post("/api/feedback", json={"session_id": sid, "turn": 1, "rating": "down", "comment": "金额不对"})
    assert r.status_code == 200 and r.json() == {"ok": True}
    rows = app.state.store.feedback()
    assert rows[0]["session_id"] == sid and rows[0]["rating"] == "down" and rows[0]["comment"] == "金额不对"
    assert (app.state.settings.data_dir / "assistant.db").exists()
    assert client.get("/api/admin/feedback", headers=AUTH).json()["feedback"][0]["comment"] == "金额不对"
    assert client.get("/api/admin/feedback").status_code == 401
    r = client.post("/api/feedback", json={"session_id": sid, "turn": 1, "rating": "meh"})
    assert r.status_code == 422 and "rating" in r.json()["detail"]


def test_documents_document_clause(client):
    docs = client.get("/api/documents").json()["documents"]
    assert {d["doc_id"] for d in docs} >= {"jizhou-2018", "xiqing-2017", "tianjin-2022"}
    assert set(docs[0]) == {"doc_id", "title", "issuer", "region", "level", "date", "doc_number", "clause_count", "duplicates",
                            "issued", "validity"}
    assert all(d["duplicates"] == [] for d in docs)  # the seeds have no near-duplicates
    r = client.get("/api/documents/xiqing-2017")
    assert r.status_code == 200
    body = r.json()
    assert body["document"]["doc_number"] == "西青政发〔2017〕7号"
    ordinals = [c["ordinal"] for c in body["clauses"]]
    assert ordinals == sorted(ordinals) and len(ordinals) == body["document"]["clause_count"]
    cid = body["clauses"][3]["clause_id"]
    assert "#" in cid
    r = client.get("/api/clauses/" + quote(cid, safe=""))
    assert r.status_code == 200 and r.json()["clause_id"] == cid and r.json()["document"]["doc_id"] == "xiqing-2017"
    for cid in ("jizhou-2018#三.(五).2", "xiqing-2017#二.(一).4"):
        r = client.get("/api/clauses/" + quote(cid, safe=""))
        assert r.status_code == 200, (cid, r.text)
        assert r.json()["clause_id"] == cid


def test_unknown_ids_are_404(client):
    assert client.get("/api/documents/nope").status_code == 404
    r = client.get("/api/clauses/" + quote("nope#一.1", safe=""))
    assert r.status_code == 404 and "unknown clause" in r.json()["detail"]


def test_static_pages_and_docs(client):
    r = client.get("/widget.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert client.get("/static/widget.js").status_code == 200
    for path in ("/", "/lookup", "/lookup.js", "/lookup.css", "/dom.js"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/css" if path.endswith(".css") else "application/javascript" if path.endswith(".js") else "text/html"), path
    assert client.get("/docs").status_code == 200
    assert "/api/chat/stream" in client.get("/openapi.json").json()["paths"]


def test_cors_allow_list(hash_settings):
    c, _ = make_client(hash_settings, cors_origins=["https://park.example.gov.cn"])
    with c:
        ok = c.options("/api/chat", headers={"Origin": "https://park.example.gov.cn", "Access-Control-Request-Method": "POST"})
        assert ok.headers.get("access-control-allow-origin") == "https://park.example.gov.cn"
        bad = c.options("/api/chat", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in bad.headers


def test_rate_limit(hash_settings):
    c, _ = make_client(hash_settings, rate_limit="3/minute")
    with c:
        codes = [c.post("/api/search", json={"query": "奖励", "k": 1}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.post("/api/chat", json={"message": QUESTION})
        assert r.status_code == 429 and "rate limit" in r.json()["detail"]
        assert c.get("/api/health").status_code == 200  # only chat and search are limited


# ---------------------------------------------------------------- admin


def test_admin_disabled_is_404(hash_settings):
    c, _ = make_client(hash_settings, admin_token="")
    with c:
        assert c.get("/api/admin/documents", headers=AUTH).status_code == 404
        assert c.post("/api/admin/reindex", headers=AUTH).status_code == 404


def test_admin_auth(client):
    assert client.get("/api/admin/documents").status_code == 401
    assert client.get("/api/admin/documents", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/admin/documents", files={"file": ("a.txt", b"x")}).status_code == 401
    assert client.delete("/api/admin/documents/jizhou-2018").status_code == 401
    assert client.post("/api/admin/reindex").status_code == 401
    r = client.get("/api/admin/documents", headers=AUTH)
    assert r.status_code == 200
    docs = {d["doc_id"]: d for d in r.json()["documents"]}
    assert docs["jizhou-2018"]["indexed"] is True


NEW_POLICY = """某某区关于支持无人机产业发展的若干措施
一、支持企业落户
（一）对新落户的无人机整机制造企业，给予一次性落户奖励80万元。（区工信局负责）
（二）对无人机企业租用办公用房的，给予三年房租补贴。
"""


@pytest.mark.parametrize(
    "name, data, status",
    [
        ("../x.txt", b"text", 400),
        ("a/b.txt", b"text", 400),
        ("a\\b.txt", b"text", 400),
        (".hidden.txt", b"text", 400),
        ("notes.xyz", b"text", 415),
        ("policy.exe", b"MZ", 415),
        ("empty.txt", b"   ", 422),
        ("binary.txt", b"\x00\x01\x02" * 10, 422),
        ("broken.pdf", b"%PDF-1.4 not really", 422),
        ("broken.docx", b"PK not a zip", 422),
    ],
)
def test_upload_rejects_bad_files(client, hash_settings, name, data, status):
    before = sorted(p.name for p in hash_settings.corpus_dir.iterdir())
    r = client.post("/api/admin/documents", headers=AUTH, files={"file": (name, data, "application/octet-stream")})
    assert r.status_code == status, r.text
    assert isinstance(r.json()["detail"], str) and r.json()["detail"]
    assert sorted(p.name for p in hash_settings.corpus_dir.iterdir()) == before


def test_upload_oversize_is_413(hash_settings):
    c, _ = make_client(hash_settings, admin_token=TOKEN, max_upload_bytes=100)
    with c:
        r = c.post("/api/admin/documents", headers=AUTH, files={"file": ("big.txt", "政策".encode() * 100)})
        assert r.status_code == 413 and "too large" in r.json()["detail"]


def _wait_reindex(client, timeout=60.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = client.get("/api/admin/reindex", headers=AUTH).json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError("re-index did not finish")


def test_upload_reindex_search_while_serving(app_client, hash_settings, monkeypatch, held_build):
    client, app = app_client

    assert client.get("/api/admin/reindex", headers=AUTH).json()["state"] == "idle"
    r = client.post("/api/admin/documents", headers=AUTH, files={"file": ("无人机政策.txt", NEW_POLICY.encode("gb18030"))})
    assert r.status_code == 201, r.text
    doc_id = r.json()["doc_id"]
    assert r.json()["source"] == "无人机政策.txt"
    listed = {d["doc_id"]: d for d in client.get("/api/admin/documents", headers=AUTH).json()["documents"]}
    assert listed[doc_id]["indexed"] is False and listed[doc_id]["source"] == "无人机政策.txt"

    # Hold the build open so queries provably run while it is in progress.
    gate, entered = held_build(monkeypatch)
    r = client.post("/api/admin/reindex", headers=AUTH)
    assert r.status_code == 202 and r.json()["state"] == "running"
    assert entered.wait(10)
    assert client.post("/api/admin/reindex", headers=AUTH).status_code == 409
    during = client.post("/api/chat", json={"message": QUESTION})
    assert during.status_code == 200
    hits = client.post("/api/search", json={"query": "无人机整机制造企业落户奖励", "k": 3}).json()["hits"]
    assert all(h["doc_id"] != doc_id for h in hits)
    assert client.get("/api/admin/reindex", headers=AUTH).json()["state"] == "running"
    gate.set()
    status = _wait_reindex(client)
    assert status["state"] == "done", status
    assert status["stats"]["documents"] == 6 and status["finished_at"] >= status["started_at"]

    hits = client.post("/api/search", json={"query": "无人机整机制造企业落户奖励", "k": 3}).json()["hits"]
    assert hits[0]["doc_id"] == doc_id and "80万元" in hits[0]["text"]
    assert client.get("/api/health").json()["documents"] == 6

    # delete → re-index → gone again
    assert client.delete(f"/api/admin/documents/{doc_id}", headers=AUTH).json() == {"ok": True}
    assert not any(p.name.startswith(doc_id) for p in hash_settings.corpus_dir.iterdir())
    assert client.delete(f"/api/admin/documents/{doc_id}", headers=AUTH).status_code == 404
    assert client.post("/api/admin/reindex", headers=AUTH).status_code == 202
    assert _wait_reindex(client)["state"] == "done"
    assert client.get("/api/health").json()["documents"] == 5


def test_failed_reindex_keeps_old_index(app_client, hash_settings, monkeypatch):
    client, app = app_client
    from assistant import index as index_mod
    from assistant.schema import CorpusError

    def broken(*args, **kwargs):
        raise CorpusError("no readable documents")

    monkeypatch.setattr(index_mod, "build_corpus", broken)
    assert client.post("/api/admin/reindex", headers=AUTH).status_code == 202
    status = _wait_reindex(client)
    assert status["state"] == "failed" and "no readable documents" in status["error"]
    assert client.get("/api/health").json()["clauses"] > 100
    assert client.post("/api/search", json={"query": "奖励", "k": 1}).status_code == 200


def _docx_bytes() -> bytes:
    import docx

    d = docx.Document()
    for line in NEW_POLICY.splitlines():
        d.add_paragraph(line)
    t = d.add_table(rows=1, cols=2)
    t.rows[0].cells[0].text = "无人机首台套"
    t.rows[0].cells[1].text = "奖励50万元"
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_ingest_docx_and_html(client, hash_settings):
    from assistant.ingest import extract_text

    text = extract_text("p.docx", _docx_bytes())
    assert "80万元" in text and "无人机首台套 奖励50万元" in text
    page = (
        "<html><head><title>t</title></head><body><nav>首页 | 政务公开 | 办事服务</nav><article><h1>某某区关于支持无人机产业发展的若干措施</h1>"
        + "".join(f"<p>{line}</p>" for line in NEW_POLICY.splitlines()[1:])
        + "</article><footer>版权所有 联系电话：12345</footer></body></html>"
    )
    html_text = extract_text("p.html", page.encode("utf-8"))
    assert "80万元" in html_text and "版权所有" not in html_text
    r = client.post("/api/admin/documents", headers=AUTH, files={"file": ("措施.docx", _docx_bytes())})
    assert r.status_code == 201, r.text
    saved = hash_settings.corpus_dir / r.json()["file"]
    assert saved.suffix == ".txt" and "80万元" in saved.read_text(encoding="utf-8")
    side = json.loads(saved.with_name(saved.stem + ".meta.json").read_text(encoding="utf-8"))
    assert side == {"doc_id": r.json()["doc_id"], "source": "措施.docx"}


def test_corpus_loader_reads_docx(tmp_path):
    from assistant.corpus import load_file

    path = tmp_path / "措施.docx"
    path.write_bytes(_docx_bytes())
    doc = load_file(path)
    assert "80万元" in doc.text


def test_index_missing_is_503(hash_settings):
    from assistant.api import create_app
    from assistant.pipeline import Assistant
    from assistant.schema import IndexMissingError

    assistant = Assistant(hash_settings)

    class Broken:
        def search(self, *a, **k):
            raise IndexMissingError("no index at /x (run `python -m assistant build`)")

    assistant.retriever = Broken()
    with TestClient(create_app(hash_settings, assistant=assistant)) as c:
        r = c.post("/api/search", json={"query": "奖励"})
        assert r.status_code == 503 and "no index" in r.json()["detail"]


def test_serve_cli_parses_and_prints_urls(monkeypatch, capsys, hash_settings):
    import uvicorn

    from assistant.cli import main

    calls = {}
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(hash_settings.corpus_dir))
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(hash_settings.index_dir))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(hash_settings.data_dir))
    monkeypatch.setenv("ASSISTANT_EMBEDDER", "hash")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    assert main(["serve", "--port", "8123", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8123/lookup" in out and "/docs" in out
    assert calls["app"] == "assistant.api:app_factory" and calls["factory"] is True and calls["workers"] == 2


def test_followup_in_the_widget_cites_the_new_topic_first(client):
    # the widget's conversation: a 高企 question, then "那上市呢？" — the listing clause comes first now
    first = client.post("/api/chat", json={"message": "我们公司刚被认定为高企，能拿多少钱？"}).json()
    assert not first["refused"] and "高新技术企业" in first["citations"][0]["quote"]
    follow = client.post("/api/chat", json={"message": "那上市呢？", "session_id": first["session_id"]}).json()
    assert not follow["refused"]
    assert "上市" in follow["rewritten_query"] and "高企" not in follow["rewritten_query"]
    assert "上市" in follow["citations"][0]["quote"]


def test_followup_after_a_recognition_question_quotes_the_listing_sentence(client):
    first = client.post("/api/chat", json={"message": "芦台开发区对国家级专精特新小巨人企业奖励多少？"}).json()
    assert "10万元" in first["answer"]
    follow = client.post("/api/chat", json={"message": "企业上市呢？", "session_id": first["session_id"]}).json()
    assert "75万元" in follow["answer"] and "上市" in follow["citations"][0]["quote"]


# ---------------------------------------------------------------- validity (issue 11)
def _validity_client(hash_settings, today):
    c, _ = make_client(hash_settings, admin_token=TOKEN, today=today)
    return c


def test_documents_carry_issued_and_validity_judged_against_today(hash_settings):
    with _validity_client(hash_settings, "2026-11-29") as c:
        docs = {d["doc_id"]: d for d in c.get("/api/documents").json()["documents"]}
    got = {k: (d["issued"], d["validity"]["status"], d["validity"]["until"]) for k, d in docs.items()}
    assert got == {
        "jizhou-2018": ("2018-05-12", "expired", "2020-12-31"),
        "baodi-2019": ("2019-05-20", "expired", "2019-12-31"),
        "lutai-zjtx": (None, "expired", "2025-12-31"),
        "xiqing-2017": ("2017-05-22", "expired", "2020-12-31"),
        "tianjin-2022": ("2022-06-18", "unknown", None),
    }
    assert "2019年底完成" in docs["baodi-2019"]["validity"]["basis"]
    with _validity_client(hash_settings, "2020-06-01") as c:
        docs = {d["doc_id"]: d["validity"]["status"] for d in c.get("/api/documents").json()["documents"]}
    assert docs["jizhou-2018"] == "current" and docs["baodi-2019"] == "expired"


def test_answer_citing_an_expired_document_carries_a_warning(hash_settings):
    with _validity_client(hash_settings, "2026-11-29") as c:
        r = c.post("/api/chat", json={"message": "蓟州区对首次获批的国家高新技术企业奖励多少？"}).json()
    cite = r["citations"][0]
    assert cite["doc_id"] == "jizhou-2018" and cite["issued"] == "2018-05-12"
    assert cite["validity"]["status"] == "expired" and cite["validity"]["until"] == "2020-12-31"
    notice = r["notice"]
    # one plain sentence naming the document by its citation and year
    assert notice == "提示：[1]（2018年）期限已于2020年12月届满，请向发文部门核实是否仍执行。"
    # the answer ends with one short line (issue 22); its full sentence is `notice`
    assert r["answer"].endswith("\n⚠ [1] 已过期（2020年）") and "提示：" not in r["answer"]
    with _validity_client(hash_settings, "2020-06-01") as c:
        r = c.post("/api/chat", json={"message": "蓟州区对首次获批的国家高新技术企业奖励多少？"}).json()
    assert r["notice"] == "" and "提示" not in r["answer"] and "⚠" not in r["answer"]  # still in force then, and issued less than 3 years before



def test_search_can_keep_only_current_documents(hash_settings):
    with _validity_client(hash_settings, "2020-06-01") as c:
        every = c.post("/api/search", json={"query": QUESTION, "k": 20}).json()["hits"]
        current = c.post("/api/search", json={"query": QUESTION, "k": 20, "only_current": True}).json()["hits"]
    assert {h["doc_id"] for h in every} >= {"baodi-2019", "jizhou-2018"}
    assert current and {h["doc_id"] for h in current} <= {"jizhou-2018", "lutai-zjtx", "xiqing-2017"}
    with _validity_client(hash_settings, "2026-11-29") as c:
        assert c.post("/api/search", json={"query": QUESTION, "k": 20, "only_current": True}).json()["hits"] == []


def test_upload_and_sidecar_override_the_term(hash_settings):
    text = "某区支持企业发展若干措施\n一、对新认定的高新技术企业给予奖励。\n二、本措施自发布之日起施行。".encode()
    with _validity_client(hash_settings, "2026-11-29") as c:
        bad = c.post("/api/admin/documents", headers=AUTH, files={"file": ("m.txt", io.BytesIO(text), "text/plain")},
                     data={"valid_until": "2027-13-01"})
        assert bad.status_code == 422 and "valid_until" in bad.json()["detail"]
        ok = c.post("/api/admin/documents", headers=AUTH, files={"file": ("m.txt", io.BytesIO(text), "text/plain")},
                    data={"valid_until": "2027-12-31", "validity_basis": "发文机关答复：继续执行至2027年底"})
        assert ok.status_code == 201
        doc_id = ok.json()["doc_id"]
        assert c.post("/api/admin/reindex", headers=AUTH).status_code == 202
        c.app.state.reindexer.join(60)
        doc = c.get(f"/api/documents/{doc_id}").json()["document"]
    assert doc["validity"] == {"status": "current", "until": "2027-12-31", "basis": "发文机关答复：继续执行至2027年底"}


# ---------------------------------------------------------------- per-region summary and clarify (issue 11)
def test_answer_differing_by_region_lists_each_and_asks_which(client):
    r = client.post("/api/chat", json={"message": QUESTION}).json()
    lines = r["answer"].splitlines()
    assert lines[0] == "天津市蓟州区：30—50万元 [1]"
    assert lines[1] == "天津市宝坻区：给予奖励（未定金额） [2]"
    assert r["clarify"] == {"question": "您的企业注册在哪个地区？", "options": ["天津市蓟州区", "天津市宝坻区"]}
    assert [c["region"] for c in r["citations"][:2]] == ["天津市蓟州区", "天津市宝坻区"]
    # choosing an option asks the same question in that region
    follow = client.post("/api/chat", json={"message": "天津市宝坻区", "session_id": r["session_id"]}).json()
    assert follow["rewritten_query"].startswith("天津市宝坻区") and "首次获批" in follow["rewritten_query"]
    assert follow["clarify"] is None and {c["region"] for c in follow["citations"]} == {"天津市宝坻区"}


def test_no_clarify_when_the_question_names_a_region(client):
    r = client.post("/api/chat", json={"message": "蓟州区对首次获批的国家高新技术企业奖励多少？"}).json()
    assert r["clarify"] is None and not r["answer"].startswith("天津市蓟州区：")
