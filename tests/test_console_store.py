"""The console's stores on both engines (SQLite, PostgreSQL): curated answers, the audit log, test items,
evaluation runs, feedback snapshots; another replica sees each write, and a failed write leaves nothing."""

from __future__ import annotations

import pytest

from assistant.audit import AuditStore
from assistant.curated import CuratedStore
from assistant.evalruns import EvalStore
from assistant.review import ReviewStore, RegressionItem
from assistant.schema import UnknownRecordError
from assistant.store import ApiStore


def test_curated_store_round_trip(store_location):
    store = CuratedStore(store_location)
    first = store.add("问一", "答一[1]", ["d#1"], "备注", "alice")
    second = store.add("问二", "答二[1][2]", ["d#1", "d#2"], actor="bob")
    other = CuratedStore(store_location)  # another replica
    assert [(c.id, c.question, c.clause_ids, c.actor) for c in other.all()] == [
        (second, "问二", ("d#1", "d#2"), "bob"), (first, "问一", ("d#1",), "alice")]
    store.update(first, "问一改", "答[1]", ["d#3"], "", "carol")
    got = other.get(first)
    assert (got.question, got.clause_ids, got.actor) == ("问一改", ("d#3",), "carol") and got.updated_at >= got.created_at
    assert other.delete(second).question == "问二"
    with pytest.raises(UnknownRecordError, match=f"unknown curated answer: {second}"):
        store.delete(second)
    with pytest.raises(UnknownRecordError):
        store.update(second, "q", "a", ["d#1"])
    assert [c.id for c in store.all()] == [first]
    store.close()
    other.close()


def test_audit_log_appends_and_filters(store_location):
    clock = iter(range(1000, 2000))
    log = AuditStore(store_location, clock=lambda: float(next(clock)))
    log.record("?", "auth.failed", "10.0.0.1", ok=False, via="bearer")
    log.record("alice", "curated.add", "curated:1", question="问", clause_ids=["d#1"])
    log.record("bob", "curated.delete", "curated:1")
    entries = AuditStore(store_location).entries()
    assert [(e.actor, e.action, e.target, e.ok) for e in entries] == [
        ("bob", "curated.delete", "curated:1", True), ("alice", "curated.add", "curated:1", True),
        ("?", "auth.failed", "10.0.0.1", False)]
    assert entries[1].detail == {"question": "问", "clause_ids": ["d#1"]} and entries[0].at > entries[1].at
    assert [e.actor for e in log.entries(action="curated.")] == ["bob", "alice"]
    assert [e.action for e in log.entries(actor="alice")] == ["curated.add"]
    assert len(log.entries(limit=1)) == 1
    log.close()


def test_review_items_and_feedback_snapshots(store_location):
    items = ReviewStore(store_location)
    new = items.add(RegressionItem(0, "问", ("d#1",), "期望", ("10万元",), False, 7, "alice"))
    got = ReviewStore(store_location).all()
    assert [(t.id, t.clause_ids, t.facts, t.feedback_id) for t in got] == [(new, ("d#1",), ("10万元",), 7)]
    items.delete(new)
    with pytest.raises(UnknownRecordError):
        items.delete(new)
    api = ApiStore(store_location)
    api.add_feedback("s", 1, "down", "不对", "问题", {"answer": "答复", "citations": [{"clause_id": "d#1"}]})
    api.add_feedback("s", 2, "up")
    down = api.feedback(rating="down")
    assert [(r["question"], r["answer"]["answer"]) for r in down] == [("问题", "答复")]
    assert [r["turn"] for r in api.feedback(commented=True)] == [1]
    assert api.feedback(since=4e9) == [] and len(api.feedback(until=4e9)) == 2
    items.close()
    api.close()


def test_evaluation_runs_one_at_a_time(store_location):
    store = EvalStore(store_location)
    ts = store.add_testset("mini.jsonl", [{"id": "a", "question": "问"}], "alice")
    assert store.testsets()[0]["items"] == 1 and store.testset_content(ts)[1].startswith('{"id": "a"')
    run = store.start_run("mini.jsonl", "alice", "v1", 1)
    assert EvalStore(store_location).start_run("mini.jsonl", "bob", "v1", 1) is None  # another replica waits its turn
    store.progress(run, 0, 1)
    store.finish(run, {"recall@3": 1.0})
    done = store.run(run)
    assert (done["state"], done["done"], done["metrics"]) == ("done", 1, {"recall@3": 1.0})
    failed = store.start_run("seed", "bob", "v1", 5)
    store.finish(failed, error="RuntimeError: boom")
    assert [(r["id"], r["state"], r["done"]) for r in store.runs()] == [(failed, "failed", 0), (run, "done", 1)]
    with pytest.raises(UnknownRecordError):
        store.run(999)
    with pytest.raises(UnknownRecordError):
        store.testset_content(999)
    store.close()


def test_every_console_table_is_created_by_its_migration(store_location):
    stores = [CuratedStore(store_location), AuditStore(store_location), ReviewStore(store_location), EvalStore(store_location)]
    assert {"curated_answers", "audit_log", "review_items", "eval_testsets", "eval_runs"} <= stores[0].db.tables()
    versions = dict(stores[0].db.query("SELECT component, MAX(version) FROM store_schema GROUP BY component"))
    assert versions == {"curated": 1, "audit": 1, "review": 1, "evalrun": 1}
    for s in stores:
        s.close()
