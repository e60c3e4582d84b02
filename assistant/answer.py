"""Answer stage: a grounded, extractive answer composed from retrieved clauses.

Every statement is a sentence copied from a clause (the citation's `quote`, always a substring of
the clause text) followed by its `[n]` marker. Policy text answers "多少" with an amount written as
a range ("30—50万元") or a rate ("每吨标准煤给予240元"), so sentences that carry the kind of figure
asked for are preferred, and the figure is never rewritten. When the retrieved evidence is weak
(chit-chat, questions outside the library) or the question names a place no retrieved clause
concerns, the answer is a refusal that lists the covered regions and shows the nearest clauses as
"可能相关". An answer that differs by region begins with one line per region and asks which applies
(`clarify`); when a cited document's term has ended, or it is old and undated, the answer ends
with one plain sentence saying so (`notice` holds the same sentence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from assistant.calibration import DEFAULT, Thresholds
from assistant.intents import ACROSS_REGIONS, INTENT_WORDS, asks_every_region, intents
from assistant.layout import Quoted, fact_line, same_statement, source_lines, validity_line, validity_note
from assistant.quotes import GRANT, QUOTE_MIN_CHARS, SECONDARY_MIN_CHARS, best_quote, key_figure
from assistant.schema import Answer, Citation, Hit
from assistant.text import match_form, normalize, split_sentences, token_weights, weighted_coverage
from assistant.vocab import blank_not_places, region_aliases

# When a question is answered at all (min coverage, weak coverage, min cosine, min quote coverage)
# is calibrated per embedding model: calibration.Thresholds, chosen by `python -m assistant calibrate`.
# The constants below shape an answer that is given; they are design choices, not fitted values.
MAX_CLAUSES = 2  # the lead and one other: an answer fits a phone screen (issue 22)
# Another clause is quoted too when the retrieval ranked it first (the sentence cues chose another to
# lead: both readings are shown), or when its score is within this of the lead's: half an average
# question word (token weights have mean 1), a near tie.
CLAUSE_MARGIN = 0.5
_LEAD_IN = ("：", ":")  # a quote ending so announces what follows it
REGION_MARGIN = 3.0  # … or, one line per region, within this
MAX_REGION_LINES = 5
SUMMARY_COVERAGE_GAP = 0.2  # a region joins the per-region summary when its clause covers this close to the best
EVERY_REGION_COVERAGE_GAP = 0.35  # "各区…": a region's line is listed when its clause covers this close to the best
# Retrieval rank orders the candidate lines; a sentence's score (quotes.py, figure cue 2.5) breaks
# near-ties: four ranks down, a clause carrying the asked figure still ties the one above without it.
RANK_PENALTY = 0.6
CLARIFY_QUESTION = "您的企业注册在哪个地区？"
MAX_LISTED_REGIONS = 12  # a refusal names at most this many covered regions


def mentioned_region(question: str, regions: list[str]) -> str | None:
    """The most specific corpus region a question names (海淀 → 北京市海淀区), or None."""
    q = blank_not_places(normalize(question))
    best: tuple[int, str] | None = None
    for r in region_aliases(regions):
        for a in r.aliases:
            if a in q and (best is None or len(r.name) > best[0]):
                best = (len(r.name), r.name)
    return best[1] if best else None


def places_named(question: str, regions: list[str]) -> list[str]:
    """The places a question names: gazetteer places (provinces, cities and counties by full name)
    and the short names of the corpus's own regions (海淀, 龙河开发区), in the order written."""
    from assistant.vocab import gazetteer

    q = blank_not_places(normalize(question))
    found = {s: name for s, _, name in gazetteer().find(q)}
    for r in region_aliases(regions):
        for a in r.aliases:
            i = q.find(a)
            if i >= 0 and not any(s <= i < s + len(n) or i <= s < i + len(a) for s, n in found.items() if n != a):
                found[i] = a
                break
    return [name for _, name in sorted(found.items())]


def _place_forms(place: str) -> tuple[str, ...]:
    from assistant.vocab import short_place

    return tuple({place, short_place(place)})


def concerns(hit: Hit, place: str, doc_places: tuple[str, ...] | list[str] = ()) -> bool:
    """True when a retrieved clause is about a place: its region, document title or text names it,
    or its document names it elsewhere (`doc_places`, short forms)."""
    c = hit.clause
    # 上海证券交易所 in a Tianjin listing clause is where shares trade, not a sign the clause is 上海's
    where = f"{c.region} {blank_not_places(c.doc_title)} {blank_not_places(c.text)}"
    forms = _place_forms(place)
    return any(f in where for f in forms) or any(f in doc_places for f in forms)


def unconcerned_place(question: str, hits: list[Hit], regions: list[str], documents: list[dict] | None = None) -> str | None:
    """A place the question names that no retrieved clause concerns (so the library does not cover
    it), or None. Places are judged by evidence, not by a list: a question about 江西 is answered
    when the clauses found are 江西's, or come from documents that name 江西."""
    places = {d.get("doc_id"): d.get("places") or () for d in documents or ()}
    for place in places_named(question, regions):
        if any(f in r for r in regions for f in _place_forms(place)):
            continue  # a region of the library's own documents: covered, whatever this question finds
        if not any(concerns(h, place, places.get(h.clause.doc_id, ())) for h in hits):
            return place
    return None


def coverage(question: str, clause_text: str, region_words: tuple[str, ...] = (), idf: dict[str, float] | None = None) -> float:
    """Share of the question's content tokens (weighted by rarity when an idf table is given) that
    the clause, with its title and path, contains."""
    return weighted_coverage(token_weights(question, idf, region_words), match_form(clause_text))


_ASK_WORDS = re.compile("|".join(sorted({w for ws in INTENT_WORDS.values() for w in ws} | {"多少", "什么", "哪些", "有没有", "能", "可以", "给", "钱", "万元"}, key=len, reverse=True)))


def _subject(question: str) -> str:
    """The question without its asking words: what the answer must be about."""
    return _ASK_WORDS.sub(" ", normalize(question))


def _citation(n: int, hit: Hit, quote: str, record: dict | None = None, today=None) -> Citation:
    from assistant.validity import of_record

    c = hit.clause
    issued = (record or {}).get("issued") or None
    validity = of_record(record, today).to_dict() if record is not None else None
    return Citation(n, c.clause_id, c.doc_id, c.doc_title, c.region, c.section, c.text, quote, round(float(hit.score), 6),
                    issued, validity)


def _cn_date(iso: str) -> str:
    m = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2})$", iso)
    return f"{m.group(1)}年{int(m.group(2))}月{int(m.group(3))}日" if m else iso


def mentioned_regions(question: str, regions: list[str]) -> list[str]:
    """Every corpus region a question names, most specific first ("海淀区和龙河经济开发区分别…")."""
    q = blank_not_places(normalize(question))
    found = [r.name for r in region_aliases(regions) if any(a in q for a in r.aliases)]
    # "北京市海淀区" names 北京市 too through its prefix: keep only the most specific of a nested pair.
    found = [r for r in found if not any(o != r and o.startswith(r) for o in found)]
    return sorted(found, key=len, reverse=True)


# places joined as one list ("海淀区和朝阳区", "海淀区、朝阳区及龙河开发区"): what lies between two of them
_COORDINATION = re.compile(r"\s*(?:和|与|及|以及|、|，|,|跟|同|或)\s*")


def regions_asked_apart(question: str, named: list[str]) -> list[str]:
    """Of the regions a question names (`named`: mentioned_regions), those it asks about one by one:
    several it names as one list ("海淀区和朝阳区…"), or with 分别/各/比较; [] otherwise. "重庆市为湖北
    支援了…" names two places in different roles and is one question about one subject."""
    if len(named) < 2:
        return []
    if asks_every_region(question):
        return named
    q = blank_not_places(normalize(question))
    spans = []
    for r in region_aliases(named):
        at = [(q.find(a), -len(a)) for a in r.aliases if a in q]
        if at:
            pos, neg = min(at)  # the earliest mention, in its longest form (海淀区, not 海淀)
            spans.append((pos, -neg))
    spans.sort()
    joined = all(_COORDINATION.fullmatch(q[a + n : b]) for (a, n), (b, _) in zip(spans, spans[1:]))
    return named if len(spans) == len(named) and joined else []


def refusal(reason: str, hits: list[Hit], regions: list[str], related_k: int = 3) -> Answer:
    """A refused answer that names what the corpus covers and shows the nearest clauses as 可能相关."""
    covered = "、".join(regions[:MAX_LISTED_REGIONS]) if regions else "（无）"
    if len(regions) > MAX_LISTED_REGIONS:
        covered += f"等{len(regions)}个地区"
    related = tuple(_citation(i, h, (split_sentences(h.clause.text) or [h.clause.text])[0].strip()) for i, h in enumerate(hits[:related_k], 1))
    text = f"{reason}本助手只依据已收录的政策文件作答，目前覆盖的地区：{covered}。"
    if related:
        text += "以下条款可能相关，仅供参考，并非答案。"
    return Answer(answer=text, refused=True, related=related)


_NOT_FOUND = "已收录的政策文件中没有找到能回答这个问题的条款。"


@dataclass(frozen=True)
class _Question:
    """What compose reads from a question once: what it asks for and which regions it names."""

    text: str
    wanted: set  # the intents (amount, count, doc_number, date …)
    idf: dict | None
    focus_weight: float  # how much the words beside the question word count in choosing the sentence
    region_words: tuple  # every alias of every covered region: not content words of the question
    named: str | None  # the one region it names (None when it names none, or several)
    several: set  # the regions it names one by one ("朝阳区和顺义区…分别"), when more than one
    explicit: bool  # it asks across regions (各区, 分别, 比较 …)
    from_metadata: bool  # a document-number or date question, with document records to answer from
    meta_question: bool  # … that names a region

    @property
    def general(self) -> bool:
        """Not about one region: every region may get its line."""
        return self.explicit or self.named is None


class _Scored(NamedTuple):
    """A retrieved clause as a candidate line of the answer."""

    cov: float  # how much of the question's content the clause covers
    score: float  # its best sentence's score less RANK_PENALTY per retrieval rank: the order lines are used in
    rank: int
    hit: Hit
    quote: str


def compose(
    question: str,
    hits: list[Hit],
    regions: list[str] | None = None,
    documents: list[dict] | None = None,
    thresholds: Thresholds | None = None,
    max_clauses: int = MAX_CLAUSES,
    idf: dict[str, float] | None = None,
    pool: list[Hit] | None = None,
    today=None,
    focus: str | None = None,
) -> Answer:
    """The grounded answer for a question from its retrieved hits (pure: no I/O). `thresholds` are
    the model's calibrated ones (the Assistant passes them); DEFAULT when not given. `focus` is a
    follow-up's own words when the question was rewritten from the conversation: the clauses that
    cover them lead."""
    t = thresholds or DEFAULT
    regions = list(regions or sorted({h.clause.region for h in hits}))
    if not hits:
        return refusal("没有找到回答这个问题的政策条款。", [], regions)
    # The place check looks at everything retrieved (`pool`, a deeper cut of the same search), not
    # only the clauses quoted: a library covers a place when any clause found for the question is about it.
    place = unconcerned_place(question, list(pool or hits), regions, documents)
    if place:
        return refusal(f"已收录的政策文件不涉及“{place}”。", hits, regions)
    q = _read_question(question, regions, documents, idf, t.focus_weight)
    scored = _score(q, hits)
    evidence, usable = _weigh(q, scored, hits, t.min_coverage)
    if evidence.refuses(t):
        return refusal(_NOT_FOUND, hits, regions)
    best_cov, min_coverage = evidence.best_coverage, t.min_coverage
    if focus:
        usable = _focused(q, usable, focus)
    if (q.explicit or q.several) and len({x.hit.clause.region for x in usable}) > 1:
        chosen = _one_per_region(q, usable, best_cov, min_coverage)
    else:
        chosen = _closest_clauses(usable, max_clauses)
    chosen, lines, clarify = _region_summary(q, _by_document(chosen), usable, best_cov, min_coverage)
    named: set[str] = set()
    if q.from_metadata:
        meta_lines, named = _metadata_lines(q, chosen, documents)
        if not meta_lines:
            return refusal("所涉文件未载明文号或印发日期。", hits, regions)
        lines.extend(meta_lines)
    records = {d.get("doc_id"): d for d in documents or ()}
    quoted = _cite(q, chosen, records, today)
    citations = [x.citation for x in quoted]
    if not lines and not (q.explicit or q.several):
        # the fact first; the per-region summary and the metadata lines above are this case's answer already
        lines = [f for f in [fact_line(q.text, q.wanted, quoted)] if f]
    # a benefit compared across regions ("各区…有什么奖励") is told region by region, a missing figure included
    noted = q.wanted | ({"amount"} if q.explicit and "grant" in q.wanted else set())
    lines.extend(source_lines(quoted, noted, named))
    # A short validity line ends the answer (an owner reading only the answer must see it); `notice`
    # holds the full sentence so a UI can set it apart from the quoted text.
    warning = validity_line(citations, records, today)
    return Answer(answer="\n".join(lines + ([warning] if warning else [])), citations=tuple(citations),
                  notice=validity_note(citations, records, today), clarify=clarify)


def _read_question(question: str, regions: list[str], documents: list[dict] | None, idf,
                   focus_weight: float = DEFAULT.focus_weight) -> _Question:
    wanted = intents(question)
    named = mentioned_regions(question, regions)
    apart = regions_asked_apart(question, named)
    from_metadata = bool(wanted & {"doc_number", "date"} and documents)
    return _Question(
        text=question,
        wanted=wanted,
        idf=idf,
        focus_weight=focus_weight,
        region_words=tuple(a for r in region_aliases(regions) for a in r.aliases),
        named=mentioned_region(question, regions) if len(named) <= 1 else None,  # several: answer per region
        several=set(apart),
        explicit=asks_every_region(question),
        from_metadata=from_metadata,
        meta_question=from_metadata and bool(named),
    )


def _score(q: _Question, hits: list[Hit]) -> list[_Scored]:
    scored = []
    for rank, h in enumerate(hits):
        cov = coverage(ACROSS_REGIONS.sub("", q.text), h.clause.index_text(), q.region_words, q.idf)
        quote, s = best_quote(h.clause, q.text, q.wanted, q.idf, focus_weight=q.focus_weight)
        # Retrieval rank matters most; the sentence score breaks near-ties toward clauses that carry the figure.
        scored.append(_Scored(cov, s - RANK_PENALTY * rank, rank, h, quote))
    return scored


@dataclass(frozen=True)
class Evidence:
    """What decides whether a question is answered: how well the best clause covers the question,
    the nearest clause's cosine, and how well the quote that would lead covers the asked subject."""

    best_coverage: float
    best_dense: float
    quote_coverage: float
    meta_question: bool  # a document-number or date question naming a region: answered from metadata
    from_metadata: bool  # a document-number or date question with document records

    def refuses(self, t: Thresholds) -> bool:
        """Whether thresholds t refuse on this evidence (the only refusals the thresholds decide)."""
        weak = self.best_coverage < t.min_coverage or (self.best_coverage < t.weak_coverage and self.best_dense < t.min_dense)
        # the clause may be about the topic while its best sentence is not about the asked subject
        # ("顺义区…高新技术企业奖励" answered with a 人才 target): the quote itself must cover the subject
        off_subject = self.quote_coverage < t.min_quote_coverage and not self.from_metadata
        return (weak and not self.meta_question) or off_subject


def _weigh(q: _Question, scored: list[_Scored], hits: list[Hit], min_coverage: float) -> tuple[Evidence, list[_Scored]]:
    """The evidence of the scored hits, and the usable candidates (covering min_coverage) best first."""
    best_cov = max(x.cov for x in scored)
    usable = sorted([x for x in scored if x.cov >= min_coverage] or scored, key=lambda x: -x.score)
    top = usable[0]
    subject = _subject(q.text)
    quote_cov = coverage(subject, top.quote + " " + top.hit.clause.section, q.region_words, q.idf) if subject else 1.0
    evidence = Evidence(best_cov, max((h.dense_score or 0.0) for h in hits), quote_cov, q.meta_question, q.from_metadata)
    return evidence, usable


def assess(question: str, hits: list[Hit], regions: list[str] | None = None, documents: list[dict] | None = None,
           idf: dict[str, float] | None = None, min_coverage: float = DEFAULT.min_coverage,
           focus_weight: float = DEFAULT.focus_weight) -> Evidence | None:
    """The refusal evidence compose weighs for these hits (None without hits), for calibration."""
    if not hits:
        return None
    regions = list(regions or sorted({h.clause.region for h in hits}))
    q = _read_question(question, regions, documents, idf, focus_weight)
    return _weigh(q, _score(q, hits), hits, min_coverage)[0]


def _one_per_region(q: _Question, usable: list[_Scored], best_cov: float, min_coverage: float) -> list[_Scored]:
    # "各区…" asks for every region: a region is listed when its clause is about the question at
    # all, even without a figure; otherwise only when it nearly ties the best. Regions the question
    # names one by one ("朝阳区和顺义区…分别") each get their best line.
    top = usable[0].score
    floor = 0.0 if q.meta_question else min_coverage
    chosen: list[_Scored] = []
    seen: set[str] = set()
    for x in usable:
        reg = x.hit.clause.region
        if q.explicit:
            close = x.cov >= floor if reg in q.several else x.cov >= max(floor, best_cov - EVERY_REGION_COVERAGE_GAP)
        else:
            close = x.score >= top - REGION_MARGIN
        if reg in seen or not close:
            continue
        seen.add(reg)
        chosen.append(x)
        if len(chosen) >= MAX_REGION_LINES:
            break
    return chosen


def _focused(q: _Question, usable: list[_Scored], focus: str) -> list[_Scored]:
    # A rewritten follow-up carries the earlier question's words as context, and they match the clause
    # that answered it; what the user asks now is the follow-up's own words. Clauses are ordered by how
    # much of those they cover, to tenths (a near difference leaves the order to the score), then by score.
    def key(x: _Scored):
        return (-round(coverage(focus, x.hit.clause.index_text(), q.region_words, q.idf), 1), -x.score)

    ordered = sorted(usable, key=key)
    # the lead is the retrieval's first too now (_closest_clauses keeps "rank 0" for the lead only)
    return [x._replace(rank=i) for i, x in enumerate(ordered)]


def _closest_clauses(usable: list[_Scored], max_clauses: int) -> list[_Scored]:
    # The best clause, the retrieval's first, and others whose score nearly ties the best (each quote once).
    # Another document saying the same thing is cited too, at the cost of a marker: its statement is
    # written once with every marker (layout.same_statement), up to MAX_REGION_LINES citations.
    top = usable[0].score
    chosen: list[_Scored] = []
    seen_text: set[str] = set()
    for x in usable:
        if (x.score < top - CLAUSE_MARGIN and x.rank > 0) or x.quote in seen_text:
            continue
        seen_text.add(x.quote)
        chosen.append(x)
        if len(chosen) < max_clauses and x.quote.rstrip().endswith(_LEAD_IN):
            # "具体标准如下：" ends a heading clause whose content is the items numbered under it: the
            # next clause of its document, when retrieved for the question, is quoted with it.
            nxt = next((y for y in usable if y.hit.clause.doc_id == x.hit.clause.doc_id
                        and y.hit.clause.ordinal == x.hit.clause.ordinal + 1 and y.quote not in seen_text), None)
            if nxt is not None:
                seen_text.add(nxt.quote)
                chosen.append(nxt)
        if len(chosen) >= max_clauses:
            break
    docs = {x.hit.clause.doc_id for x in chosen}
    for x in usable:
        if len(chosen) >= MAX_REGION_LINES:
            break
        if x.hit.clause.doc_id not in docs and any(same_statement(x.quote, c.quote) for c in chosen):
            docs.add(x.hit.clause.doc_id)
            chosen.append(x)
    return chosen


def _region_summary(q: _Question, chosen: list[_Scored], usable: list[_Scored], best_cov: float,
                    min_coverage: float) -> tuple[list[_Scored], list[str], dict | None]:
    """(the clauses to cite, the summary lines, the question back) for an amount that differs by region.

    A question naming no region, answered by clauses of several regions that grant different
    amounts: one line per region with its figure first, and a question back (which region?).
    A region takes part when its best clause covers the question nearly as well as the best one
    (a clause granting without a figure counts: "给予奖励（未定金额）")."""
    if q.named is not None or q.explicit or not q.wanted & {"amount", "grant"} or q.meta_question:
        return chosen, [], None
    best_of: dict[str, _Scored] = {}
    for x in chosen + usable:
        reg = x.hit.clause.region
        # only clauses that grant something: a target ("比重提高到50%") is not what a region gives
        grants = bool(GRANT.search(x.quote))
        if reg and reg not in best_of and grants and (x in chosen or x.cov >= max(min_coverage, best_cov - SUMMARY_COVERAGE_GAP)):
            best_of[reg] = x
    figures = {reg: key_figure(x.hit.clause, x.quote) for reg, x in list(best_of.items())[:MAX_REGION_LINES]}
    if len(figures) < 2 or len(set(figures.values())) < 2:
        return chosen, [], None
    chosen = list(chosen)
    for reg in figures:
        if not any(x.hit is best_of[reg].hit for x in chosen):
            chosen.append(best_of[reg])
    chosen = _by_document(chosen)
    number = {id(x.hit): n for n, x in enumerate(chosen, 1)}
    summary = [f"{reg}：{fig} [{number[id(best_of[reg].hit)]}]" for reg, fig in figures.items()]
    return chosen, summary, {"question": CLARIFY_QUESTION, "options": list(figures)}


def _metadata_lines(q: _Question, chosen: list[_Scored], documents: list[dict]) -> tuple[list[str], set[str]]:
    # Document-number and date questions are answered from the document's metadata, each line
    # cited to a clause of that document (one line per document); the documents so named.
    docs = {d["doc_id"]: d for d in documents}
    lines, named = [], set()
    for n, x in enumerate(chosen, 1):
        d = docs.get(x.hit.clause.doc_id, {})
        if any(x2.hit.clause.doc_id == x.hit.clause.doc_id for x2 in chosen[: n - 1]):
            continue
        meta = []
        if "doc_number" in q.wanted and d.get("doc_number"):
            meta.append(f"文号：{d['doc_number']}")
        if d.get("date"):
            meta.append(f"日期：{_cn_date(d['date'])}")
        if meta:
            if d.get("issuer"):
                meta.append(f"发文机关：{d['issuer']}")
            lines.append(f"《{d.get('title', '')}》" + "，".join(meta) + f"。 [{n}]")
            named.add(x.hit.clause.doc_id)
    return lines, named


def _by_document(chosen: list[_Scored]) -> list[_Scored]:
    """The chosen clauses with each document's together, in order of its first (so one line per document
    reads [1][2], then [3])."""
    first: dict[str, int] = {}
    for i, x in enumerate(chosen):
        first.setdefault(x.hit.clause.doc_id, i)
    return sorted(chosen, key=lambda x: first[x.hit.clause.doc_id])


def _cite(q: _Question, chosen: list[_Scored], records: dict, today) -> list[Quoted]:
    # One citation per chosen clause, numbered in order.
    quoted = []
    for n, x in enumerate(chosen, 1):
        quote = x.quote
        if n > 1 and SECONDARY_MIN_CHARS < QUOTE_MIN_CHARS:
            # the best clause is quoted at length; the others only as far as they say something
            quote = best_quote(x.hit.clause, q.text, q.wanted, q.idf, SECONDARY_MIN_CHARS, q.focus_weight)[0]
        quoted.append(Quoted(_citation(n, x.hit, quote, records.get(x.hit.clause.doc_id), today), x.hit.clause))
    return quoted


MARKER = re.compile(r"\[(\d+)\]")


def check_grounded(answer: Answer) -> list[str]:
    """Problems with an answer's grounding: quotes not in their clause, markers without a citation,
    citations the answer does not mark."""
    problems = []
    ns = {c.n for c in answer.citations}
    for c in answer.citations:
        if c.quote not in c.text:
            problems.append(f"quote of [{c.n}] is not in {c.clause_id}")
    shown = {int(m) for m in MARKER.findall(answer.answer)}
    for m in sorted(shown - ns):
        problems.append(f"[{m}] has no citation")
    for n in sorted(ns - shown):
        problems.append(f"citation [{n}] is not marked in the answer")
    return problems
