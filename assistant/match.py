"""Match stage (政策匹配): the clauses that grant something to a company like the one described.

A profile is free text ("首次获批的国家高新技术企业，计划在新三板挂牌"); the terms it names — enterprise
types and recognitions, listing plans, policy topics, all from `data/` — are looked up sentence by
sentence in the clauses that grant something (an amount, or 奖励/补助/资助/贴息 …). Targets and duties
("到2025年底达到40家", "由区科委负责") grant nothing and never match. A match quotes its sentence and
states the benefit as written (the amount whose beneficiary names the matched term, when the clause
has several) and the condition it sets. Retrieval over the profile adds a small bonus, so wording the
vocabulary does not know still counts a little. A company registered in a district is offered its
district's clauses and those of the city and province containing it, never a neighbour's.

With structured facts (the calculator, assistant.calculator) every rule a clause states is checked
against them: the matches are the rules the company qualifies for, by estimated amount, then those
some unknown fact decides (with the question that settles it), then near misses (one condition
unmet, with what is missing). Facts no clause of the library conditions on are reported as unused.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass

from assistant.calculator import (
    Evaluation,
    Profile,
    evaluate,
    form,
    given,
    parse_facts,
    profile_terms,
    subject_met,
    unquoted,
    used_by,
)
from assistant.facts import extract
from assistant.schema import QueryError
from assistant.vocab import applies_in, locate, quantities, read_rows, units

_GRANTS = re.compile(r"奖励|补助|资助|补贴|奖补|贴息|减免|免征|给予[^。；;，,]{0,12}支持")
_SENTENCE = re.compile(r"[^。；;！？!?\n]+[。；;！？!?]?")
MAX_MATCHES = 20


@dataclass(frozen=True)
class Match:
    clause_id: str
    doc_id: str
    doc_title: str
    region: str
    section: str
    benefit: str  # the amount, rate or support as written
    condition: str  # the threshold or eligibility as written ("" when none)
    quote: str  # the sentence granting it; a substring of the clause
    validity: dict
    why: tuple[str, ...]  # the profile terms it matched
    score: float = 0.0
    # with facts (the calculator): the rule checked, condition by condition
    conditions: tuple = ()  # calculator.Checked
    eligible: bool | None = None
    estimate: dict | None = None  # {amount_yuan | min_yuan, max_yuan, formula, quote}
    group: str = ""  # eligible | unknown | near_miss
    question: str = ""  # what would settle the first unknown condition
    missing: str = ""  # for a near miss: the one condition unmet

    def to_dict(self) -> dict:
        d = asdict(self)
        d["why"] = list(self.why)
        d["conditions"] = [c.to_dict() for c in self.conditions]
        return d


@dataclass(frozen=True)
class MatchReport:
    """What a match with facts returns: the matches and the facts no clause of the library uses."""

    matches: tuple[Match, ...]
    unused: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"matches": [m.to_dict() for m in self.matches], "unused": list(self.unused)}


_form = form  # the look-up form of profile terms (calculator owns it)


_LEVEL = re.compile(r"国家级|省级|市级|区级|县级")


def _benefit(sentence: str, why: tuple[str, ...], profile: str = "") -> tuple[str, str]:
    """(benefit, condition) of a granting sentence: the amount whose beneficiary names a matched term
    (and the level the profile names, 省级 or 国家级, when the sentence rewards both), else every
    amount it states; and the threshold or beneficiary it sets."""
    facts = extract(sentence)
    amounts = [f for f in facts if f.kind in ("amount", "percent")]
    chosen = [f for f in amounts if f.kind == "amount" and any(w in _form(f.beneficiary) for w in why)]
    levels = set(_LEVEL.findall(profile))
    at_level = [f for f in chosen if levels & set(_LEVEL.findall(f.beneficiary))]
    chosen = at_level or chosen
    if not chosen:
        chosen = [f for f in amounts if f.kind == "amount"] or amounts
    benefit = "、".join(dict.fromkeys(f.text for f in chosen[:3]))
    if not benefit:
        m = _GRANTS.search(sentence)
        benefit = f"给予{m.group(0).removeprefix('给予')}（未定金额）" if m else ""
    conditions = [f.text for f in facts if f.kind == "condition"]
    condition = conditions[0] if conditions else next((f.beneficiary for f in chosen if f.beneficiary), "")
    return benefit, condition


def match(index, retriever=None, region: str | None = None, profile: str | None = None, only_current: bool = False,
          today=None, limit: int = MAX_MATCHES, facts=None) -> list[Match]:
    """The clauses granting something to a company of `profile` (free text) and `facts` (a dict or a
    calculator.Profile) in `region`, best fit first."""
    return list(match_report(index, retriever, region, profile, only_current, today, limit, facts).matches)


def match_report(index, retriever=None, region: str | None = None, profile: str | None = None,
                 only_current: bool = False, today=None, limit: int = MAX_MATCHES, facts=None) -> MatchReport:
    """`match` with the facts no clause of the library conditions on (FactsError names a bad fact)."""
    region = (region or "").strip()
    profile = (profile or "").strip()
    day = today or dt.date.today()
    company = facts if isinstance(facts, Profile) or facts is None else parse_facts(facts, profile, day)
    if isinstance(facts, Profile) and profile and not facts.text:
        company = Profile(**{**facts.__dict__, "text": profile})
    if not region and not profile and company is None:
        raise QueryError("give a region, a profile, or both")
    candidates = _candidates(index, region, only_current, today)
    if company is None:
        return MatchReport(tuple(_by_terms(candidates, retriever, region, profile, limit)))
    matches = _calculated(candidates, company, profile_terms(profile), day, limit)
    used = used_by((r for c in index.clauses for r in c.rules), company, day)
    return MatchReport(tuple(matches), tuple(f for f in given(company) if f not in used))


def _candidates(index, region: str, only_current: bool, today) -> list[tuple]:
    """(clause, validity) of every clause that applies to a company registered in `region`."""
    from assistant.validity import of_record

    records = {d.get("doc_id"): d for d in index.documents}
    library = sorted({d.get("region") or "" for d in index.documents} - {""})
    locations = locate(region, library) if region else ()
    if region and not locations:
        raise QueryError(f"unknown region {region!r}: name a province, city or district, or a region of the library")
    out = []
    for c in index.clauses:
        if region and not applies_in(c.region, locations):
            continue  # never a clause of another region, nor of one inside it, nor of a document stating none
        validity = of_record(records.get(c.doc_id), today).to_dict()
        if only_current and validity["status"] != "current":
            continue
        out.append((c, validity))
    return out


def _by_terms(candidates, retriever, region: str, profile: str, limit: int) -> list[Match]:
    # the free-text match: granting sentences that name the profile's terms
    terms = profile_terms(profile)
    bonus: dict[str, float] = {}
    if profile and retriever is not None:
        # a company's own place and every place containing it (its city's, its province's policies)
        for where in sorted({c.region for c, _ in candidates}) if region else [None]:
            for rank, hit in enumerate(retriever.search(profile, k=50, region=where)):
                score = 1.0 / (1 + rank / 5)
                bonus[hit.clause.clause_id] = max(score, bonus.get(hit.clause.clause_id, 0.0))
    out: list[Match] = []
    for c, validity in candidates:
        best = None
        for m in _SENTENCE.finditer(c.text):
            sentence = m.group(0).strip()
            if not sentence or not _GRANTS.search(sentence):
                continue
            form_ = _form(sentence)
            why = tuple(t for t in terms if t in form_)
            if terms and not why:
                continue
            score = sum(terms[t] for t in why) + (0.5 if extract(sentence) else 0.0)
            if best is None or score > best[0]:
                best = (score, sentence, why)
        if best is None:
            continue
        score, sentence, why = best
        if profile and not terms and c.clause_id not in bonus:
            continue  # a profile in words the vocabulary lacks: only what retrieval finds for it
        benefit, condition = _benefit(sentence, why, profile)
        out.append(Match(c.clause_id, c.doc_id, c.doc_title, c.region, c.section, benefit, condition, sentence,
                         validity, why, round(score + bonus.get(c.clause_id, 0.0), 4)))
    out.sort(key=lambda m: (-m.score, m.clause_id))
    return out[:limit]


_GROUPS = {"eligible": 0, "unknown": 1, "near_miss": 2}


def _calculated(candidates, company: Profile, terms: dict[str, float], today: dt.date, limit: int) -> list[Match]:
    # every rule checked: eligible by estimate, then unknown (fewest unknowns first), then near misses
    ranked: list[tuple[tuple, Match]] = []
    for c, validity in candidates:
        for rule in c.rules:
            ev = evaluate(rule, company, today)
            group = ev.group
            if group not in _GROUPS:
                continue
            why = tuple(t for t in terms if t in _form(rule.text)) or tuple(x.text for x in ev.conditions if x.status == "met")
            m = Match(c.clause_id, c.doc_id, c.doc_title, c.region, c.section, rule.benefit.text,
                      "；".join(x.text for x in rule.conditions), rule.text, validity, why, round(ev.value(), 2),
                      ev.conditions, ev.eligible, ev.estimate, group, ev.question, ev.missing)
            ranked.append((_order(ev, group), m))
    ranked.sort(key=lambda r: (r[0], r[1].clause_id))
    return [m for _, m in ranked[:limit]]


def _order(ev: Evaluation, group: str) -> tuple:
    unknown = sum(1 for c in ev.conditions if c.status == "unknown")
    figure = 0 if ev.estimate else 1
    if group == "eligible":
        return (0, figure, -ev.value())
    if group == "unknown":
        return (1, unknown, figure, -ev.value())
    return (2, 0 if ev.unmet[0].kind == "threshold" else 1, figure, -ev.value())


_NUMBERING = re.compile(r"^(?:\d+[．.、]\s*)?(?:对在|对|在)?")
MAX_LABEL = 20  # longer subjects are sentences, not something a company ticks


def options(index, region: str | None = None) -> dict:
    """What a calculator form offers, drawn from the library's own rules (in `region` when given):
    the qualifications its subject conditions name (each one a subject condition accepts), the
    quantities its thresholds and rates are on (not those a profile field states), the industries of
    data/industries.tsv, and the units of each dimension (data/units.tsv)."""
    region = (region or "").strip()
    labels: dict[str, int] = {}
    amounts: dict[str, dict] = {}
    fields = {q.name for q in quantities().values() if q.field}
    for c, _ in _candidates(index, region, False, None):
        for rule in c.rules:
            conds = [*rule.conditions, *(t.condition for t in rule.benefit.tiers)]
            for cond in conds:
                if cond.kind == "subject":
                    for label in _labels(cond):
                        labels[label] = labels.get(label, 0) + 1
                elif cond.kind == "threshold" and cond.name not in fields:
                    amounts.setdefault(cond.name, {"name": cond.name, "unit": cond.unit, "dimension": cond.dimension})
            b = rule.benefit
            if b.kind == "rate" and b.quantity and b.quantity not in fields:
                amounts.setdefault(b.quantity, {"name": b.quantity, "unit": b.per, "dimension": b.dimension})
    by_dimension: dict[str, list[str]] = {}
    for u in units().values():
        by_dimension.setdefault(u.dimension, []).append(u.name)
    return {"qualifications": sorted(labels, key=lambda q: (-labels[q], q)),
            "quantities": sorted(amounts.values(), key=lambda a: a["name"]),
            "industries": list(dict.fromkeys(row[1] for row in read_rows("industries.tsv"))),
            "units": by_dimension}


def _labels(cond) -> list[str]:
    # each option of a list (中国质量奖、鲁班奖 …), else the subject as written without its lead-in
    # (对在…), quotes or numbering; only a short one that the condition itself accepts
    if cond.options:
        return [o for o in cond.options if subject_met(cond, o)]
    for text in (cond.text, cond.name):
        label = _NUMBERING.sub("", unquoted(text)).strip()
        if 2 <= len(label) <= MAX_LABEL and not label[0].isdigit() and subject_met(cond, label):
            return [label]
    return []


_MARKS = {"met": "✓", "unmet": "✗", "unknown": "?"}
_HEADINGS = {"eligible": "符合条件", "unknown": "待确认", "near_miss": "差一项"}


def format_report(report: MatchReport) -> str:
    """A calculated match for a terminal: each rule's checklist, estimate and question, then the unused facts."""
    if not report.matches:
        return "没有找到适用于该企业的支持条款。"
    out = []
    for i, m in enumerate(report.matches, 1):
        est = (m.estimate or {}).get("formula", "未定金额")
        out.append(f"{i}. [{_HEADINGS.get(m.group, m.group)}] {est}  《{m.doc_title}》 {m.section} ({m.clause_id})")
        out += [f"   {_MARKS[c.status]} {c.text}：{c.why}" for c in m.conditions]
        if m.question:
            out.append(f"   问：{m.question}")
        if m.missing:
            out.append(f"   尚缺：{m.missing}")
        out.append(f"   “{m.quote}”")
    if report.unused:
        out.append("未用到的信息：" + "、".join(report.unused))
    return "\n".join(out)
