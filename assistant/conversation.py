"""Conversation stage: sessions that keep their turns, and follow-up resolution.

Enterprises ask elliptically after a first question: "那在上交所上市呢？", "国家科技型中小企业呢？",
"朝阳区呢？". `resolve()` rewrites such a follow-up into a standalone query by carrying over the
region, enterprise type and topic of the previous (already standalone) query; whatever the new
message names explicitly replaces the carried value. Sessions live in the store's database (SQLite
in the data folder, or PostgreSQL shared by replicas), so neither a restart nor another replica loses
one; they expire after a time-to-live and stop at a turn cap.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from assistant.schema import QueryError, UnknownSessionError
from assistant.store import Migration, TableStore, database_location
from assistant.text import normalize
from assistant.vocab import blank_not_places, gazetteer, region_aliases, words

# Slot grammar; the words come from data/. Enterprise types carry an optional level (国家级/省级 …);
# a listing topic is a venue plus an action ("在上交所上市"); other topics are single instruments.
_LEVEL = r"(?:国家级|省级|市级|区级|国家|省|市级)?"
_ZONE = re.compile(r"[\u4e00-\u9fa5]{2,4}?(?:经济技术开发区|经济开发区|开发区|高新区)")


def _alternation(name: str) -> str:
    return "|".join(re.escape(w) for w in words(name))


ENTERPRISE = re.compile(_LEVEL + f"(?:{_alternation('enterprise_types.txt')})(?:企业)?")
TOPIC = re.compile(
    f"(?:在)?(?:{_alternation('listing_venues.txt')})?(?:首次公开发行股票并)?(?:上市|挂牌|股改|股份制改造)"
    f"|{_alternation('topics.txt')}"
)


class _Regions:
    """Region spans of a message: gazetteer places, development zones (龙河开发区) and the corpus's own
    region names (海淀), adjacent ones merged ("北京市海淀区" is one span)."""

    def __init__(self, regions: tuple[str, ...] = ()):
        self.aliases = sorted({a for r in region_aliases(list(regions)) for a in r.aliases}, key=len, reverse=True)

    def spans(self, text: str) -> list[tuple[int, int]]:
        text = blank_not_places(text)  # the 上海 of 上海证券交易所 is no region of the message
        found = [(s, e) for s, e, _ in gazetteer().find(text)]
        found += [m.span() for m in _ZONE.finditer(text)]
        for a in self.aliases:
            i = text.find(a)
            while i >= 0:
                found.append((i, i + len(a)))
                i = text.find(a, i + len(a))
        merged: list[tuple[int, int]] = []
        for s, e in sorted(found):
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
            else:
                merged.append((s, e))
        return merged

    def search(self, text: str) -> bool:
        return bool(self.spans(text))


_RECOGNISED = re.compile(r"(?:刚刚|刚|新|首次)?(?:被)?(?:评上|评为|认定为|获评|获批|成为|认定)(?:了)?(?:的)?$")
_FOLLOW_PREFIX = re.compile(r"^(?:那么|那|还有|另外|如果是|如果|要是|换成|改成|这|此|该|其|它)")
_STRIP_PREFIX = re.compile(r"^(?:那么|那|还有|另外)")
_FOLLOW_SUFFIX = re.compile(r"(?:呢|吗|怎么样|如何)?[？?。！!\s]*$")


@dataclass(frozen=True)
class Turn:
    """One exchange: what the user wrote, the standalone query searched, and the answer record."""

    turn: int
    message: str
    rewritten_query: str
    answer: dict
    created_at: float


def _spans(pattern, text: str) -> list[tuple[int, int]]:
    if isinstance(pattern, _Regions):
        return pattern.spans(text)
    return [m.span() for m in pattern.finditer(text) if m.group(0)]


def _standalone(item) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return item.get("rewritten_query") or item.get("message", "")
    return getattr(item, "rewritten_query", "") or getattr(item, "message", "")


def is_followup(message: str) -> bool:
    """True for an elliptical follow-up ("朝阳区呢？", "那在上交所上市呢？", "这项工作的责任单位有哪些？")."""
    m = normalize(message)
    core = _FOLLOW_SUFFIX.sub("", m)
    return bool(_FOLLOW_PREFIX.match(m)) or bool(re.search(r"呢[？?]?$", m)) or len(core) <= 8


def own_words(message: str) -> str:
    """What a follow-up itself asks about, without its framing ("那在主板上市呢？" → "在主板上市"): the
    answer stage lets the clause that covers it lead, the earlier turn's words giving only context."""
    return _FOLLOW_SUFFIX.sub("", _STRIP_PREFIX.sub("", normalize(message))).strip("，,。 ")


def resolve(message: str, history: list, regions: tuple[str, ...] | list[str] = ()) -> str:
    """The standalone query for a message, given the earlier turns (Turn, dict or str; oldest first)
    and the corpus regions (so their short names count as places)."""
    msg = normalize(message)
    if not history:
        return msg
    REGION = _Regions(tuple(regions))
    prev = normalize(_standalone(history[-1]))
    # A question that names no place inherits the region of the conversation so far; a message that
    # is only a place (a clarifying option chosen: "北京市海淀区") asks the previous question there.
    bare = _FOLLOW_SUFFIX.sub("", msg).strip("，,。 ")
    only_place = bool(bare) and sum(e - s for s, e in REGION.spans(bare)) == len(bare)
    if not prev or not (only_place or is_followup(msg) or (not REGION.search(msg) and REGION.search(prev))):
        return msg
    core = own_words(msg)
    if not core:
        return prev
    result = prev
    covered: list[tuple[int, int]] = []
    appended: list[str] = []
    # "龙河开发区对国家级专精特新小巨人企业奖励多少？" → "企业上市呢？": the earlier question's subject was
    # the enterprise type; a follow-up that names a topic and no type asks about that topic instead.
    topic = _spans(TOPIC, core)
    if topic and not _spans(ENTERPRISE, core) and not _spans(TOPIC, result):
        old = _spans(ENTERPRISE, result)
        if old:
            # the recognition verb belonged to the type ("刚评上高企"): it goes with it
            head = _RECOGNISED.sub("", result[: old[0][0]])
            result = head + "企业" + core[topic[0][0] : topic[-1][1]] + result[old[-1][1]:]
    for pattern in (REGION, ENTERPRISE, TOPIC):
        new = _spans(pattern, core)
        if not new:
            continue
        covered.extend(new)
        new_text = core[new[0][0] : new[-1][1]]
        old = _spans(pattern, result)
        if old:
            # Replace the whole run the previous query used for this slot ("新三板挂牌" → "上交所上市").
            start, end = old[0][0], old[-1][1]
            if start > 0 and result[start - 1] == "在" and new_text.startswith("在"):
                new_text = new_text[1:]
            result = result[:start] + new_text + result[end:]
        elif pattern is REGION:
            result = new_text + result
        else:
            appended.append(new_text)
    leftover = core
    for s, e in sorted(covered, reverse=True):
        leftover = leftover[:s] + leftover[e:]
    leftover = re.sub(r"^(?:的|在|对|是|企业|公司)+|(?:的|在|是|企业|公司)+$", "", leftover.strip("，,。 "))
    if not covered or len(leftover) >= 2:
        # Nothing to substitute, or the follow-up asks something new about the same subject:
        # keep the subject and add the new question ("…标杆企业，这项工作的责任单位有哪些？").
        base = re.sub(r"[？?。！!]+$", "", result)
        return f"{base}，{core}?"
    if appended:
        result = re.sub(r"[？?。！!]+$", "", result) + "，" + "、".join(appended) + "？"
    return result


_TABLES = (
    Migration(1, """
CREATE TABLE IF NOT EXISTS conv_sessions (id TEXT PRIMARY KEY, created_at {float}, updated_at {float});
CREATE TABLE IF NOT EXISTS conv_turns (session_id TEXT, turn INTEGER, message TEXT, rewritten_query TEXT,
    answer TEXT, created_at {float}, PRIMARY KEY (session_id, turn))
"""),
    # every new session purges the expired ones: found by time, not by a scan of all sessions
    Migration(2, "CREATE INDEX IF NOT EXISTS conv_sessions_updated ON conv_sessions (updated_at)"),
)


class SessionStore(TableStore):
    """Conversation sessions (tables conv_*) in the store's database: thread-safe, with a TTL and a
    turn cap. `location` is a SQLite path or a postgresql:// URL (store.database_location)."""

    component, migrations = "conv", _TABLES

    def __init__(self, location: Path | str, ttl_s: int = 7 * 24 * 3600, max_turns: int = 50, clock=time.time):
        super().__init__(location)
        self.ttl_s = ttl_s
        self.max_turns = max_turns
        self.clock = clock

    @classmethod
    def from_settings(cls, settings) -> "SessionStore":
        """The store in the database the settings name (store.database_location)."""
        return cls(database_location(settings), settings.session_ttl_s, settings.max_turns)

    def create(self) -> str:
        """A new empty session; expired sessions are purged on the way."""
        sid = uuid.uuid4().hex
        now = self.clock()
        with self.db.transaction() as tx:
            cutoff = now - self.ttl_s
            tx.execute("DELETE FROM conv_turns WHERE session_id IN (SELECT id FROM conv_sessions WHERE updated_at < ?)",
                       (cutoff,))
            tx.execute("DELETE FROM conv_sessions WHERE updated_at < ?", (cutoff,))
            tx.execute("INSERT INTO conv_sessions (id, created_at, updated_at) VALUES (?, ?, ?)", (sid, now, now))
        return sid

    def _check(self, session_id: str) -> None:
        rows = self.db.query("SELECT updated_at FROM conv_sessions WHERE id = ?", (session_id,))
        if not rows or rows[0][0] < self.clock() - self.ttl_s:
            raise UnknownSessionError(f"unknown or expired session: {session_id}")

    def exists(self, session_id: str) -> bool:
        """True when the session exists and has not expired."""
        try:
            self._check(session_id)
            return True
        except UnknownSessionError:
            return False

    def history(self, session_id: str) -> list[Turn]:
        """The session's turns, oldest first; UnknownSessionError when unknown or expired."""
        self._check(session_id)
        rows = self.db.query(
            "SELECT turn, message, rewritten_query, answer, created_at FROM conv_turns WHERE session_id = ? ORDER BY turn",
            (session_id,),
        )
        return [Turn(r[0], r[1], r[2], json.loads(r[3] or "{}"), r[4]) for r in rows]

    def append(self, session_id: str, message: str, rewritten_query: str, answer: dict) -> int:
        """Record a turn and return its number (1-based); QueryError once the turn cap is reached."""
        now = self.clock()
        with self.db.transaction() as tx:
            # Touching the session first takes its row lock (PostgreSQL; SQLite's write lock alike):
            # two replicas adding to one conversation take turns, and each counts the other's turn.
            touched = tx.execute("UPDATE conv_sessions SET updated_at = ? WHERE id = ? AND updated_at >= ?",
                                 (now, session_id, now - self.ttl_s)).rowcount
            if touched != 1:
                raise UnknownSessionError(f"unknown or expired session: {session_id}")
            (count,) = tx.execute("SELECT COUNT(*) FROM conv_turns WHERE session_id = ?", (session_id,)).fetchone()
            if count >= self.max_turns:
                raise QueryError(f"this conversation reached its limit of {self.max_turns} turns; start a new one")
            turn = count + 1
            tx.execute(
                "INSERT INTO conv_turns (session_id, turn, message, rewritten_query, answer, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, turn, message, rewritten_query, json.dumps(answer, ensure_ascii=False), now),
            )
        return turn

    def turn_record(self, session_id: str, turn: int) -> Turn | None:
        """One stored turn (None when there is none), so feedback on it can keep what was asked and answered."""
        rows = self.db.query("SELECT turn, message, rewritten_query, answer, created_at FROM conv_turns "
                             "WHERE session_id = ? AND turn = ?", (session_id, turn))
        return Turn(rows[0][0], rows[0][1], rows[0][2], json.loads(rows[0][3] or "{}"), rows[0][4]) if rows else None

    def turn_count(self, session_id: str) -> int:
        """How many turns the session holds."""
        self._check(session_id)
        return self.db.query("SELECT COUNT(*) FROM conv_turns WHERE session_id = ?", (session_id,))[0][0]

    def close(self) -> None:
        """Close the database connection (or pool)."""
        self.db.close()
