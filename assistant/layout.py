"""Answer form stage: the chosen quotes written as an answer that reads like one.

An enterprise reads the answer text first, often on a phone, so:
- the fact first: when the question asks for a typed value (an amount, a count, a date, a
  department, a yes or no) and the leading quote states it, the answer opens with that value as
  written, with the markers of every quote that states it ("30—50万元 [1]", "可予以展期或续贷 [1][2]");
- one source line per document: the title once (a transmitting notice's by the document it transmits),
  the region only when the title does not name it,
  each quote after its section marker (三、（五）3．);
- a statement quoted from several documents is written once, with all their markers;
- quotes show scraped whitespace runs as one space; their edges were already trimmed (quotes.py);
- the validity warning is one short line (⚠ [1] 已过期（2020年）); its full sentence is `notice`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from assistant.intents import CONTACT, asks_date
from assistant.quotes import AMOUNT_UNIT, ngram_jaccard, tidy_quote
from assistant.schema import Citation, Clause
from assistant.text import compact, normalize
from assistant.vocab import region_aliases

NEAR_IDENTICAL = 0.5  # two quotes sharing half their character 5-grams say the same thing (issue 22's measure)
MAX_FACTS = 3  # a fact line names at most this many figures, in the quote's order
MAX_FACT_CHARS = 30  # a yes/no fact longer than this is a sentence, not a fact: the quote says it

_MARKER = re.compile(r"^(第[一二三四五六七八九十百零〇\d]+[章条节]|[一二三四五六七八九十]+、|[（(][一二三四五六七八九十]+[)）]|\d+[.．、]|[（(]\d+[)）]|表\d+|第\d+行)")
# "多少所医疗机构", "几个批次": the classifier after 多少/几 is the unit the count is written in
_ASKED_UNIT = re.compile(r"(?:多少|几)(万|亿)?([所条起幅份批名位户台辆张套家个项件人次吨天日年月元])")
_COUNTED = r"\d[\d.,]*\s*(?:[—\-–~～至到]\s*\d[\d.,]*\s*)?(?:万|亿)?\s*"
_COUNT_UNITS = "家个项件人次吨所条起幅份批名位户台辆张套"
_DATE = re.compile(r"(?:\d{4}\s*年\s*)?\d{1,2}\s*月\s*\d{1,2}\s*日(?:\s*\d{1,2}\s*[时点])?(?:前|起|至今|以前)?|\d{4}\s*年\s*(?:\d{1,2}\s*月)?(?:底|末)?前?")
_DURATION = re.compile(r"\d+\s*(?:个)?\s*(?:工作日|自然日|天|日|小时|个月|周|年)(?:内|以内)?")
_DEPARTMENT = re.compile(r"(?:责任单位|责任部门|牵头单位|牵头部门|主管部门)\s*[:：]\s*[^）)。；;\n]{2,40}")
# a yes-or-no question, and the verbs a policy sentence answers it with ("可予以展期或续贷", "不得停产")
_YES_NO = re.compile(r"能否|是否|可否|能不能|可不可以|是不是|会不会|允不允许|[可能会要]\S{0,12}吗[？?]?$")
_VERDICT = re.compile(r"(?:可予以|予以|可以|可|准予|允许|免征|免予|免收|减半|暂停|暂缓|不得|不能|不予|不再|禁止|无需|不需要|须|应当)")


@dataclass(frozen=True)
class Quoted:
    """A cited clause as the answer shows it: its citation (number, quote) and the clause itself."""

    citation: Citation
    clause: Clause


def section_label(section: str) -> str:
    """三、政策扶持 > （一）支持… > 1．… → 三、（一）1．: the numbering a reader looks up."""
    labels = []
    for part in section.split(" > "):
        m = _MARKER.match(part.strip())
        labels.append(m.group(1) if m else part.strip()[:12])
    return "".join(labels)


# "X关于印发《Y》的通知": a notice that transmits a document is named in an answer by the document it transmits
_TRANSMITTAL = re.compile(r"^[^《》〈〉]{0,60}?(?:关于)?(?:印发|转发)\s*[《〈]?(?P<inner>[^《》〈〉]{6,80}?)[》〉]?\s*(?:的?(?:通知|函))?$")


def short_title(title: str) -> str:
    """The title an answer line shows: a transmitting notice's by the document it transmits."""
    m = _TRANSMITTAL.match(title.strip())
    return m.group("inner") if m else title


def where(clause: Clause) -> str:
    """（region） after the title, unless the document states none or its title already names the
    region's own level (海淀 in 《2018年海淀区…》 for 北京市海淀区)."""
    if not clause.region:
        return ""
    names = region_aliases([clause.region])[0].aliases
    return "" if any(a in clause.doc_title for a in names) else f"（{clause.region}）"


def markers(ns) -> str:
    """[1][2] for the citation numbers ns, in order, each once."""
    return "".join(f"[{n}]" for n in sorted(set(ns)))


# -- the fact first -----------------------------------------------------------------------------
def _figures(quote: str, wanted: set[str], question: str) -> list[str]:
    from assistant.facts import extract

    q = normalize(question)
    asked = _ASKED_UNIT.search(q)
    if asked:  # "多少所", "几个": the count in that unit, as written
        pattern = re.compile(_COUNTED + re.escape(asked.group(2)))
        return [m.group(0).strip() for m in pattern.finditer(quote)]
    facts = extract(quote)
    if wanted & {"amount", "grant"}:  # the amounts granted; a rate only when the quote states no amount
        return [f.text for f in facts if f.kind == "amount"] or [f.text for f in facts if f.kind == "percent"]
    if "count" in wanted:
        return [f.text for f in facts if f.kind == "count" and f.text[-1:] in _COUNT_UNITS]
    return []


def _department(quoted: Quoted) -> str:
    c = quoted.clause
    if c.department and f"{c.department}负责" in c.text:
        return f"{c.department}负责"
    m = _DEPARTMENT.search(quoted.citation.quote) or _DEPARTMENT.search(c.text)
    return m.group(0).strip() if m else ""


def _contact(found: str) -> str:
    # "电话：0523-86391105" → 0523-86391105, "12366纳税服务热线" → 12366: the fact is the number; its
    # label stays in the quote beside it. An address (https://…, a mailbox) is the fact as found.
    if re.search(r"https?://|www\.|@", found):
        return found.strip()
    m = re.search(r"\d[\d\s\-－—]*\d", found)
    return m.group(0).strip() if m else found.strip()


def _when(quote: str) -> list[str]:
    return [m.group(0).strip() for m in _DATE.finditer(quote)] or [m.group(0).strip() for m in _DURATION.finditer(quote)]


def _verdict(quote: str, question: str) -> str:
    """The clause of the quote that answers a yes-or-no question: from its verb on ("可予以展期或续贷")."""
    asked = set(re.findall(r"[\u4e00-\u9fff]{2}", normalize(question)))
    for part, end in re.findall(r"([^，,；;。：:！!？?\n]+)([，,；;。：:！!？?\n]?)", quote):
        m = _VERDICT.search(part)
        if not m or end in "？?" or re.search(r"[吗呢]\s*$", part):
            continue  # a question the text repeats ("医院可以…吗？") is not its answer
        said = part[m.start():].strip()
        if 2 < len(said) <= MAX_FACT_CHARS and any(w in said for w in asked):
            return said
    return ""


def fact_of(question: str, wanted: set[str], lead: Quoted) -> str:
    """The typed value the question asks for, as the leading quote writes it ("" when it states none)."""
    quote = lead.citation.quote
    figures = _figures(quote, wanted, question)
    if figures:
        return "、".join(dict.fromkeys(figures[:MAX_FACTS]))
    if "department" in wanted:
        dep = _department(lead)
        if dep:
            return dep
    if asks_date(question):  # "热线什么时候开通": the date, not the number
        when = _when(quote)
        if when:
            return "、".join(dict.fromkeys(when[:MAX_FACTS]))
    if "contact" in wanted:
        contacts = [_contact(m.group(0)) for m in CONTACT.finditer(normalize(quote))]
        if contacts:
            return "、".join(dict.fromkeys(contacts[:MAX_FACTS]))
    q = normalize(question)
    if _YES_NO.search(q):
        return _verdict(quote, question)
    return ""


def fact_line(question: str, wanted: set[str], quoted: list[Quoted]) -> str:
    """"30—50万元 [1]": the fact the leading quote states, marked by every quote that states it too."""
    if not quoted:
        return ""
    fact = fact_of(question, wanted, quoted[0])
    if not fact or ngram_jaccard(fact, quoted[0].citation.quote) >= NEAR_IDENTICAL:
        return ""  # none, or the quote is the fact nearly word for word ("咨询电话：0523-…。"): said once
    parts = [compact(p) for p in fact.split("、")]
    ns = [x.citation.n for x in quoted if all(p in compact(x.citation.quote) for p in parts)]
    return f"{fact} {markers(ns or [quoted[0].citation.n])}"


# -- one line per document ------------------------------------------------------------------------
@dataclass
class _Statement:
    text: str
    ns: list[int]
    first: Quoted


def _notes(x: Quoted, wanted: set[str]) -> str:
    c, quote = x.clause, x.citation.quote
    note = ""
    # "（未规定金额）" answers "how much?" only: a question about a benefit in general is answered by what it grants
    if "amount" in wanted and not any(f.kind in ("amount", "percent") for f in c.facts) and not AMOUNT_UNIT.search(normalize(quote)):
        note += "（未规定金额）"
    if "department" in wanted and c.department and c.department not in quote:
        note += f"（负责单位：{c.department}）"
    return note


def same_statement(a: str, b: str) -> bool:
    """Whether two quotes say the same thing: near-identical (5-gram Jaccard ≥ NEAR_IDENTICAL) or one inside the other."""
    ca, cb = compact(a), compact(b)
    return bool(ca and cb) and (ca in cb or cb in ca or ngram_jaccard(a, b) >= NEAR_IDENTICAL)


def _statements(quoted: list[Quoted], wanted: set[str]) -> list[_Statement]:
    out: list[_Statement] = []
    for x in quoted:
        text = tidy_quote(x.citation.quote)
        same = next((s for s in out if same_statement(s.text, text)), None)
        if same is None:
            out.append(_Statement(text, [x.citation.n], x))
            continue
        same.ns.append(x.citation.n)
        if len(text) > len(same.text) and same.first.clause.doc_id == x.clause.doc_id:
            same.text = text  # one document's longer quote holds its shorter one
    for s in out:
        s.text += _notes(s.first, wanted)
    return out


def source_lines(quoted: list[Quoted], wanted: set[str], named: set[str] = frozenset()) -> list[str]:
    """One line per cited document: 《title》（region）section：quote [n] section：quote [m]; a document
    a line above already names (`named`: its metadata line) without its title again."""
    by_doc: dict[str, list[_Statement]] = {}
    for s in _statements(quoted, wanted):
        by_doc.setdefault(s.first.clause.doc_id, []).append(s)
    lines = []
    for statements in by_doc.values():
        c = statements[0].first.clause
        parts = []
        for s in statements:
            label = section_label(s.first.clause.section) if s.first.clause.section != "前言" else ""
            parts.append(f"{label}：{s.text} {markers(s.ns)}" if label or not parts else f"{s.text} {markers(s.ns)}")
        head = "" if c.doc_id in named else f"《{short_title(c.doc_title)}》{where(c)}"
        lines.append(head + " ".join(parts) if head or not parts[0].startswith("：") else "原文" + " ".join(parts))
    return lines


# -- validity -------------------------------------------------------------------------------------
def validity_groups(citations: list[Citation], records: dict[str, dict], today=None) -> tuple[list, list]:
    """The cited documents to warn about, once each by their first marker: (expired, old and undated),
    each as (n, issue year, until)."""
    from assistant.validity import needs_warning, of_record

    expired, undated, seen = [], [], set()
    for c in citations:
        record = records.get(c.doc_id)
        if record is None or c.doc_id in seen:
            continue
        seen.add(c.doc_id)
        v = of_record(record, today)
        issued = record.get("issued") or ""
        if needs_warning(v, issued, today):
            (expired if v.status == "expired" else undated).append((c.n, issued[:4], v.until))
    return expired, undated


def _years(values) -> str:
    years = sorted({y for y in values if y})
    return "、".join(years)


def validity_note(citations: list[Citation], records: dict[str, dict], today=None) -> str:
    """One plain sentence when cited documents' terms have ended, or they state none and are old,
    advising a check with the issuing department; "" when no cited document needs it.

    Each document is named by its citation marker and its year:
    提示：[1]（2018年）期限已于2020年12月届满，[2]（2020年）未载明有效期，请向发文部门核实。
    """
    expired, undated = validity_groups(citations, records, today)

    def named(group) -> str:
        years = _years(y for _, y, _ in group)
        return markers(n for n, _, _ in group) + (f"（{years}年）" if years else "")

    parts = []
    if len(expired) == 1:
        until = dt.date.fromisoformat(expired[0][2])
        parts.append(f"{named(expired)}期限已于{until.year}年{until.month}月届满")
    elif expired:
        parts.append(f"{named(expired)}期限均已届满")
    if undated:
        parts.append(f"{named(undated)}{'均' if len(undated) > 1 else ''}未载明有效期")
    if not parts:
        return ""
    # an undated document's sentence already says what is unknown; an ended term asks whether it still applies
    return f"提示：{'，'.join(parts)}，请向发文部门核实{'' if undated else '是否仍执行'}。"


VALIDITY_MARK = "⚠"


def validity_line(citations: list[Citation], records: dict[str, dict], today=None) -> str:
    """The short warning line that ends an answer: ⚠ [1][2] 已过期（2020年）；[3] 未载明有效期（2018年）, the
    year of the term's end, or of issue when no term is stated, as the notice names each document."""
    expired, undated = validity_groups(citations, records, today)
    parts = []
    if expired:
        years = _years(u[:4] for _, _, u in expired)
        parts.append(f"{markers(n for n, _, _ in expired)} 已过期（{years}年）")
    if undated:
        years = _years(y for _, y, _ in undated)
        parts.append(f"{markers(n for n, _, _ in undated)} 未载明有效期" + (f"（{years}年）" if years else ""))
    return f"{VALIDITY_MARK} " + "；".join(parts) if parts else ""
