"""Validity (part of the corpus stage): when a policy document applies, read from its own words.

Chinese policy texts state their term in a few ways, strongest first:
- an explicit term: "有效期至2025年12月31日", "执行至2021年7月31日", "有效期3年" (counted from issue);
- a plan period: "（2018—2020年）", "2017至2020年";
- the last target or deadline of an action plan: "到2025年底…达到40家", "2019年底完成";
- only a start: "自发布之日起施行" (in force, end unknown).
A document with none of these is `unknown`. What is read at build time is the end date and the
sentence it came from; whether that end has passed is judged when asked, against a `today` the
caller (and the tests) can set. Every pattern is linear: bounded classes, no nested repeats.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass

_CN_NUMBER = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_DATE = r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日"
_EXPLICIT_END = re.compile(r"(?:有效期|执行期限?|实施期限?|执行|实施|施行)\s*(?:为|至|到|截至|截止到?)\s*(?:[^。；;\d]{0,12})?" + _DATE)
_TERM_YEARS = re.compile(r"有效期\s*(?:为)?\s*([0-9一二两三四五六七八九十])\s*年")
_PERIOD = re.compile(r"(\d{4})\s*(?:年)?\s*[—\-–~～至到]\s*(\d{4})\s*年")
_TARGET_YEAR = re.compile(r"(?:到|至|截至)\s*(\d{4})\s*年\s*(?:底|末)?")
_DEADLINE = re.compile(r"(\d{4})\s*年\s*(?:底|末|年底)\s*(?:前)?\s*(?:完成|实现|达到)")
_START_ONLY = re.compile(r"自\s*(?:发布|印发|公布|颁布)\s*之日起\s*(?:施行|执行|实施|生效)")
_SENTENCE_END = "。；;！？!?\n"
STALE_AFTER_YEARS = 3  # an `unknown` document issued longer ago than this gets a warning


@dataclass(frozen=True)
class Validity:
    """Whether a document applies: `status` judged against a date, `until` (ISO) and the sentence read."""

    status: str  # current | expired | unknown
    until: str | None = None
    basis: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _sentence(text: str, start: int, end: int, limit: int = 120) -> str:
    left = max(text.rfind(c, 0, start) for c in _SENTENCE_END) + 1
    rights = [i for i in (text.find(c, end) for c in _SENTENCE_END) if i >= 0]
    right = min(rights) + 1 if rights else len(text)
    sentence = re.sub(r"\s+", " ", text[left:right]).strip()
    return sentence if len(sentence) <= limit else sentence[:limit] + "…"


def _iso(year: int, month: int = 12, day: int = 31) -> str | None:
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def _plausible(year: int) -> bool:
    return 1990 <= year <= 2100


def read_term(text: str, issued: str = "") -> tuple[str | None, str]:
    """The end of a document's term (ISO date or None) and the sentence it was read from ("" when nothing)."""
    text = text or ""
    found = [(m, _iso(int(m.group(1)), int(m.group(2)), int(m.group(3)))) for m in _EXPLICIT_END.finditer(text)]
    found = [(m, d) for m, d in found if d and _plausible(int(m.group(1)))]
    if found:
        m, until = max(found, key=lambda x: x[1])
        return until, _sentence(text, m.start(), m.end())
    m = _TERM_YEARS.search(text)
    if m and issued:
        n = int(m.group(1)) if m.group(1).isdigit() else _CN_NUMBER.get(m.group(1), 0)
        start = dt.date.fromisoformat(issued)
        try:
            until = start.replace(year=start.year + n) - dt.timedelta(days=1)
        except ValueError:  # 29 February
            until = start.replace(year=start.year + n, day=28)
        return until.isoformat(), _sentence(text, m.start(), m.end())
    for pattern, group in ((_PERIOD, 2), (_TARGET_YEAR, 1), (_DEADLINE, 1)):
        years = [(int(m.group(group)), m) for m in pattern.finditer(text) if _plausible(int(m.group(group)))]
        if pattern is _PERIOD:
            years = [(y, m) for y, m in years if int(m.group(1)) <= y]
        if years:
            year, m = max(years, key=lambda x: x[0])
            return _iso(year), _sentence(text, m.start(), m.end())
    m = _START_ONLY.search(text)
    if m:
        return None, _sentence(text, m.start(), m.end())
    return None, ""


def judge(until: str | None, basis: str, today: dt.date | None = None) -> Validity:
    """The validity on `today` (default: the real today) of a term read by `read_term`."""
    today = today or dt.date.today()
    if not until:
        return Validity("unknown", None, basis)
    return Validity("expired" if dt.date.fromisoformat(until) < today else "current", until, basis)


def needs_warning(validity: Validity, issued: str = "", today: dt.date | None = None) -> bool:
    """True when an answer citing the document should advise a check with the issuing department:
    its term has ended, or it states none and was issued more than STALE_AFTER_YEARS ago."""
    if validity.status == "expired":
        return True
    if validity.status == "unknown" and issued:
        today = today or dt.date.today()
        try:
            return (today - dt.date.fromisoformat(issued)).days > 365.25 * STALE_AFTER_YEARS
        except ValueError:
            return False
    return False


def of_record(record: dict | None, today: dt.date | None = None) -> Validity:
    """The validity of a stored document record (documents.jsonl) on `today`."""
    term = (record or {}).get("term") or {}
    return judge(term.get("until"), term.get("basis", ""), today)
