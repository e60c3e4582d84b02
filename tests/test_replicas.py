"""Several replicas: two service processes (uvicorn over `assistant.api:app_factory`, as `serve
--workers N` runs it) over one PostgreSQL and one index folder, each with a data folder of its own, so
nothing they share goes through SQLite."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest

from conftest import CORPUS, ROOT

TOKEN = "replica-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NEW_TERM = "量子计算示范工程"
NEW_DOC = f"""关于支持{NEW_TERM}的若干措施
一、对承担{NEW_TERM}的企业，给予一次性奖励五十万元。
二、本措施自发布之日起施行。
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    """One service process on a free localhost port; its output kept in a log file for failures."""

    def __init__(self, name: str, env: dict, folder):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"{name}.log"
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "assistant.api:app_factory", "--factory", "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "warning"],
                env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
            )

    def wait_ready(self, deadline: float) -> None:
        while True:
            assert self.process.poll() is None, f"replica exited ({self.process.returncode}):\n{self.log.read_text()}"
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.time() < deadline, f"replica did not start:\n{self.log.read_text()}"
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck shutdown must not hang the suite
            self.process.kill()
            self.process.wait(5)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, postgres):
    """(a, b): two replicas sharing a fresh PostgreSQL database and a hash-embedder index of the seeds."""
    from assistant.embed import make_embedder
    from assistant.index import build_corpus

    folder = tmp_path_factory.mktemp("replicas")
    corpus, index_dir = folder / "corpus", folder / "index"
    shutil.copytree(CORPUS, corpus)
    build_corpus(corpus, index_dir, make_embedder("hash", "m3e-small", 256), 600)
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    base.update(
        ASSISTANT_CORPUS_DIR=str(corpus), ASSISTANT_INDEX_DIR=str(index_dir), ASSISTANT_EMBEDDER="hash",
        ASSISTANT_HASH_DIM="256", ASSISTANT_DATABASE_URL=postgres.new_database(), ASSISTANT_ADMIN_TOKEN=TOKEN,
        ASSISTANT_RATE_LIMIT="1000/minute", HF_HUB_OFFLINE="1",
        # this checkout's package, whichever one the interpreter has installed
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    started = [Replica(name, {**base, "ASSISTANT_DATA_DIR": str(folder / f"data-{name}")}, folder) for name in "ab"]
    try:
        deadline = time.time() + 180
        for replica in started:
            replica.wait_ready(deadline)
        yield started
    finally:
        for replica in started:
            replica.stop()
    for name in "ab":  # the shared state went to PostgreSQL: no replica made a SQLite file
        assert not (folder / f"data-{name}" / "assistant.db").exists()


def test_a_conversation_continues_on_the_other_replica(replicas):
    a, b = replicas
    first = httpx.post(f"{a.url}/api/chat", json={"message": "蓟州区对首次获批的国家高新技术企业奖励多少？"}, timeout=60)
    assert first.status_code == 200, first.text
    sid = first.json()["session_id"]
    follow = httpx.post(f"{b.url}/api/chat", json={"message": "宝坻区呢？", "session_id": sid}, timeout=60)
    assert follow.status_code == 200, follow.text
    body = follow.json()
    assert body["session_id"] == sid and body["turn"] == 2
    # resolved against the turn replica a stored: the place replaced, the subject carried over
    assert "宝坻" in body["rewritten_query"] and "高新技术企业" in body["rewritten_query"]
    assert "蓟州" not in body["rewritten_query"]


def test_feedback_sent_to_one_is_seen_by_the_others_admin(replicas):
    a, b = replicas
    sid = httpx.post(f"{b.url}/api/chat", json={"message": "企业上市有什么补助？"}, timeout=60).json()["session_id"]
    sent = httpx.post(f"{a.url}/api/feedback", json={"session_id": sid, "turn": 1, "rating": "down",
                                                     "comment": "没有说明申报时间"}, timeout=30)
    assert sent.status_code == 200, sent.text
    seen = httpx.get(f"{b.url}/api/admin/feedback", headers=AUTH, timeout=30)
    assert seen.status_code == 200, seen.text
    rows = [r for r in seen.json()["feedback"] if r["session_id"] == sid]
    assert [(r["turn"], r["rating"], r["comment"]) for r in rows] == [(1, "down", "没有说明申报时间")]


def test_a_reindex_on_one_is_picked_up_by_the_other(replicas):
    a, b = replicas

    def found_on_b() -> list[str]:
        r = httpx.post(f"{b.url}/api/search", json={"query": NEW_TERM, "k": 3}, timeout=30)
        assert r.status_code == 200, r.text
        return [h["doc_title"] for h in r.json()["hits"] if NEW_TERM in h["text"]]

    before = httpx.get(f"{b.url}/api/health", timeout=30).json()["documents"]
    corpus = replicas[0].log.parent / "corpus"
    (corpus / "quantum.txt").write_text(NEW_DOC, encoding="utf-8")
    assert found_on_b() == []  # in the folder, not yet in the index
    started = httpx.post(f"{a.url}/api/admin/reindex", headers=AUTH, timeout=30)
    assert started.status_code == 202, started.text
    deadline = time.time() + 180
    while (status := httpx.get(f"{a.url}/api/admin/reindex", headers=AUTH, timeout=30).json())["state"] == "running":
        assert time.time() < deadline, "re-index did not finish"
        time.sleep(0.3)
    assert status["state"] == "done", status
    assert found_on_b(), "replica b still searches the index it loaded before a's re-index"
    assert httpx.get(f"{b.url}/api/health", timeout=30).json()["documents"] == before + 1


def test_a_swapped_index_folder_is_noticed_and_a_missing_one_is_not_a_swap(hash_settings, hash_index):
    """The FAISS replica's check (LocalTarget.replaced): one stat of the manifest per request."""
    from assistant.backends import LocalTarget

    target = LocalTarget(hash_settings.index_dir)
    loaded = target.load()
    assert not target.replaced(loaded)
    assert not target.replaced(hash_index)  # built in memory, not loaded from the folder: nothing to follow
    target.write(hash_index.clauses, hash_index.documents, hash_index.vectors(), hash_index.hashes,
                 {**hash_index.manifest, "built_at": "later"})
    assert target.replaced(loaded) and not target.replaced(target.load())
    shutil.rmtree(hash_settings.index_dir)  # mid-swap, the folder is briefly absent: keep serving
    assert not target.replaced(loaded)


def test_a_curated_answer_written_on_one_is_served_by_the_other(replicas):
    a, b = replicas
    question = "首次获批的国家高新技术企业在蓟州区能拿到多少奖励？"
    written = httpx.post(f"{a.url}/api/admin/curated", headers=AUTH, timeout=30, json={
        "question": question,
        "answer": "蓟州区对首次获批的国家高新技术企业按规模给予30—50万元奖励 [1]",
        "clause_ids": ["jizhou-2018#三.(一)"],
        "note": "replica test",
    })
    assert written.status_code == 201, written.text
    served = httpx.post(f"{b.url}/api/chat", json={"message": question}, timeout=60)
    assert served.status_code == 200, served.text
    body = served.json()
    assert body["source"] == "curated", body
    assert "30—50万元" in body["answer"] and [c["clause_id"] for c in body["citations"]] == ["jizhou-2018#三.(一)"]
    # and b's staff see it in their list
    listed = httpx.get(f"{b.url}/api/admin/curated", headers=AUTH, timeout=30)
    assert listed.status_code == 200 and any(c["id"] == written.json()["id"] for c in listed.json()["curated"]), listed.text
