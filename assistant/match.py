"""Match stage (政策匹配): the clauses that grant something to a company like the one described.

A profile is free text ("首次获批的国家高新技术企业，计划在新三板挂牌"); the terms it names — enterprise
types and recognitions, listing plans, policy topics, all from `data/` — are looked up sentence by
sentence in the clauses that grant something (an amount, or 奖励/补助/资助/贴息 …). Targets and duties
("到2025年底达到40家", "由区科委负责") grant nothing and never match. A match quotes its sentence and
states the benefit as written (the amount whose beneficiary names the matched term, when the clause
has several) and the condition it sets. Retrieval over the profile adds a small bonus, so wording the
vocabulary does not know still counts a little. A company registered in a district is offered its
district's clauses and those of the city and province containing it, never a neighbour's.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache

from assistant.facts import extract
from assistant.schema import QueryError
from assistant.text import expand_aliases, match_form
from assistant.vocab import applies_in, locate, words

_GRANTS = re.compile(r"奖励|补助|资助|补贴|奖补|贴息|减免|免征|给予[^。；;，,]{0,12}支持")
_SENTENCE = re.compile(r"[^。；;！？!?\n]+[。；;！？!?]?")
_ACTIONS = ("上市", "挂牌", "股份制改造", "股改")
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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["why"] = list(self.why)
        return d


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[tuple[str, float], ...]:
    # (canonical term, weight): what a company is (types) weighs most, then what it plans (topics).
    terms: dict[str, float] = {}
    for name, weight in (("enterprise_types.txt", 3.0), ("listing_venues.txt", 2.0), ("topics.txt", 2.0)):
        for w in words(name):
            term = _unquoted(expand_aliases(w))
            if len(term) >= 2:
                terms.setdefault(term, weight)
    for action in _ACTIONS:
        terms.setdefault(expand_aliases(action), 1.0)
    return tuple(sorted(terms.items(), key=lambda t: -len(t[0])))


def _unquoted(text: str) -> str:
    # 专精特新“小巨人”企业 and 专精特新小巨人企业 are the same recognition
    return re.sub(r"[“”\"'‘’「」]", "", text)


def _form(text: str) -> str:
    return _unquoted(match_form(text))


def profile_terms(profile: str) -> dict[str, float]:
    """The vocabulary terms a profile names (canonical form → weight), longest first, no term twice."""
    text = _form(profile or "")
    found: dict[str, float] = {}
    for term, weight in _vocabulary():
        t = term.lower()
        if t in text and not any(t in f for f in found):
            found[t] = weight
    return found


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
          today=None, limit: int = MAX_MATCHES) -> list[Match]:
    """The clauses granting something to a company of `profile` in `region`, best fit first."""
    from assistant.validity import of_record

    region = (region or "").strip()
    profile = (profile or "").strip()
    if not region and not profile:
        raise QueryError("give a region, a profile, or both")
    terms = profile_terms(profile)
    records = {d.get("doc_id"): d for d in index.documents}
    library = sorted({d.get("region") or "" for d in index.documents} - {""})
    locations = locate(region, library) if region else ()
    if region and not locations:
        raise QueryError(f"unknown region {region!r}: name a province, city or district, or a region of the library")
    # a company's own place and every place containing it (its city's, its province's policies)
    applicable = [r for r in library if applies_in(r, locations)] if region else [None]
    bonus: dict[str, float] = {}
    if profile and retriever is not None:
        for where in applicable:
            for rank, hit in enumerate(retriever.search(profile, k=50, region=where)):
                score = 1.0 / (1 + rank / 5)
                bonus[hit.clause.clause_id] = max(score, bonus.get(hit.clause.clause_id, 0.0))
    out: list[Match] = []
    for c in index.clauses:
        if region and not applies_in(c.region, locations):
            continue  # never a clause of another region, nor of one inside it, nor of a document stating none
        record = records.get(c.doc_id)
        validity = of_record(record, today).to_dict()
        if only_current and validity["status"] != "current":
            continue
        best = None
        for m in _SENTENCE.finditer(c.text):
            sentence = m.group(0).strip()
            if not sentence or not _GRANTS.search(sentence):
                continue
            form = _form(sentence)
            why = tuple(t for t in terms if t in form)
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

