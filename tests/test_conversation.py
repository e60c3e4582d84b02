"""Conversation stage: follow-up resolution and the session store (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import threading

import pytest

from assistant.conversation import SessionStore, Turn, is_followup, resolve
from assistant.schema import QueryError, UnknownSessionError


@pytest.mark.parametrize(
    "first, follow, must, must_not",
    [
        ("蓟州区企业在新三板挂牌有什么补助？", "那在上交所上市呢？", ["蓟州区", "上交所上市", "补助"], ["新三板"]),
        ("宝坻区今年要新发展多少家国家高新技术企业？", "国家科技型中小企业呢？", ["宝坻区", "国家科技型中小企业", "多少家"], ["高新技术"]),
        ("蓟州区对首次获批的国家高新技术企业奖励多少？", "宝坻区呢？", ["宝坻区", "首次获批的国家高新技术企业", "奖励"], ["蓟州"]),
        ("芦台经济开发区对新认定的省级专精特新企业奖励多少？", "国家级小巨人呢？", ["芦台经济开发区", "国家级小巨人", "奖励多少"], ["省级"]),
        ("西青区到2020年底要培育多少家高端制造标杆企业？", "这项工作的责任单位有哪些？", ["西青区", "标杆企业", "责任单位"], []),
    ],
)
def test_followups_carry_region_type_and_topic(first, follow, must, must_not):
    q = resolve(follow, [first])
    for m in must:
        assert m in q, (q, m)
    for m in must_not:
        assert m not in q, (q, m)


SEED_REGIONS = ["天津市", "天津市宝坻区", "天津市蓟州区", "天津市西青区", "河北省唐山市芦台经济开发区"]


def test_topic_followup_replaces_the_enterprise_type_it_was_about():
    # the first question was about a recognition; "企业上市呢？" asks about listing instead
    q = resolve("企业上市呢？", ["芦台开发区对国家级专精特新小巨人企业奖励多少？"], SEED_REGIONS)
    assert "上市" in q and "小巨人" not in q and "芦台开发区" in q and "奖励多少" in q
    q = resolve("那上市呢？", ["我们公司刚评上高企，能拿多少钱？"], SEED_REGIONS)
    assert "上市" in q and "高企" not in q
    # with a topic already in the earlier question, the type stays and the topic is replaced
    q = resolve("那节能呢？", ["蓟州区高新技术企业研发投入有什么补助？"], SEED_REGIONS)
    assert "节能" in q and "研发" not in q and "高新技术企业" in q


def test_region_names_come_from_the_gazetteer_and_the_corpus():
    # a place no seed knows is still a place; a corpus region's short name is one too
    assert resolve("江西省呢？", ["蓟州区对首次获批的国家高新技术企业奖励多少？"], SEED_REGIONS).startswith("江西省")
    assert resolve("芦台呢？", ["蓟州区对首次获批的国家高新技术企业奖励多少？"], SEED_REGIONS).startswith("芦台")
    assert "蓟州" not in resolve("芦台呢？", ["蓟州区对首次获批的国家高新技术企业奖励多少？"], SEED_REGIONS)


def test_standalone_and_first_messages_are_kept():
    assert resolve("蓟州区对高企奖励多少？", []) == "蓟州区对高企奖励多少?"
    q = resolve("西青区到2020年中国驰名商标的目标是多少件？", ["蓟州区企业在新三板挂牌有什么补助？"])
    assert q == "西青区到2020年中国驰名商标的目标是多少件?"
    assert is_followup("宝坻区呢？") and not is_followup("西青区到2020年中国驰名商标的目标是多少件？")


def test_history_items_may_be_turns_or_dicts():
    t = Turn(1, "蓟州区股改有什么补助", "蓟州区股改有什么补助", {}, 0.0)
    assert resolve("西青区呢", [t]).startswith("西青区")
    assert resolve("西青区呢", [{"message": "x", "rewritten_query": "蓟州区股改有什么补助"}]).startswith("西青区")


def test_resolved_query_uses_the_last_standalone_query():
    history = ["蓟州区对首次获批的国家高新技术企业奖励多少？"]
    q2 = resolve("宝坻区呢？", history)
    q3 = resolve("西青区呢？", history + [q2])
    assert "西青区" in q3 and "首次获批" in q3 and "宝坻" not in q3


def test_sessions_persist_across_store_instances(store_location):
    s1 = SessionStore(store_location)
    sid = s1.create()
    assert s1.append(sid, "蓟州区高企奖励多少", "蓟州区高企奖励多少", {"answer": "30—50万元 [1]"}) == 1
    assert s1.append(sid, "宝坻区呢", "宝坻区高企奖励多少", {}) == 2
    s1.close()
    s2 = SessionStore(store_location)
    turns = s2.history(sid)
    assert [t.turn for t in turns] == [1, 2] and turns[1].rewritten_query == "宝坻区高企奖励多少"
    assert turns[0].answer["answer"] == "30—50万元 [1]"
    # the conversation's own tables carry its prefix, beside the store's record of migrations
    assert s2.db.tables() == {"conv_sessions", "conv_turns", "store_schema"}
    s2.close()


def test_unknown_and_expired_sessions(store_location):
    now = [1000.0]
    store = SessionStore(store_location, ttl_s=60, clock=lambda: now[0])
    with pytest.raises(UnknownSessionError):
        store.history("nope")
    with pytest.raises(UnknownSessionError):
        store.append("nope", "m", "m", {})
    sid = store.create()
    store.append(sid, "m", "m", {})
    now[0] += 59
    assert store.exists(sid)
    now[0] += 120
    with pytest.raises(UnknownSessionError):
        store.history(sid)
    with pytest.raises(UnknownSessionError):
        store.append(sid, "m", "m", {})
    other = store.create()  # a new session purges the expired one with its turns
    assert store.exists(other) and not store.exists(sid)
    assert store.db.query("SELECT COUNT(*) FROM conv_turns")[0][0] == 0
    store.close()


def test_turn_cap(store_location):
    store = SessionStore(store_location, max_turns=2)
    sid = store.create()
    store.append(sid, "a", "a", {})
    store.append(sid, "b", "b", {})
    with pytest.raises(QueryError):
        store.append(sid, "c", "c", {})
    assert store.turn_count(sid) == 2
    store.close()


def test_store_is_thread_safe(store_location):
    """Concurrent turns of one conversation each get their own number; two store objects (two
    replicas' connections to the same database) write to it at once."""
    stores = [SessionStore(store_location, max_turns=1000) for _ in range(2)]
    sid = stores[0].create()
    errors = []

    def work(store):
        try:
            for _ in range(20):
                store.append(sid, "q", "q", {})
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(stores[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and [t.turn for t in stores[1].history(sid)] == list(range(1, 81))
    for store in stores:
        store.close()


def test_database_location_from_settings(tmp_path):
    """Sessions and feedback open one database named by ASSISTANT_DATABASE_URL (the replicas' seam)."""
    from assistant.config import Settings
    from assistant.conversation import SessionStore
    from assistant.schema import BackendError
    from assistant.store import ApiStore, database_location

    assert database_location(Settings(data_dir=tmp_path / "d")) == tmp_path / "d" / "assistant.db"
    shared = Settings(data_dir=tmp_path / "unused", database_url=f"sqlite:///{tmp_path / 'shared' / 'one.db'}")
    sessions, feedback = SessionStore.from_settings(shared), ApiStore.from_settings(shared)
    sid = sessions.create()
    feedback.add_feedback(sid, 1, "up")
    assert (tmp_path / "shared" / "one.db").exists() and not (tmp_path / "unused").exists()
    assert SessionStore.from_settings(shared).exists(sid)  # a second process (replica) sees the session
    assert database_location(Settings(database_url="postgresql://u:p@db/assistant")) == "postgresql://u:p@db/assistant"
    with pytest.raises(BackendError, match="'mysql' is not supported"):
        database_location(Settings(database_url="mysql://db/assistant"))
