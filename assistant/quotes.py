"""Quote stage: which sentence of a clause answers a question, and the figure it grants.

A clause often lists several measures; the answer quotes the sentence (or the adjacent sentences)
that names what is asked and carries the kind of figure asked for, always as a substring of the
clause. Policy text writes amounts as ranges ("30—50万元") or rates ("每吨标准煤给予240元"), so a
figure is read as written, never rewritten.
"""

from __future__ import annotations

import re
from functools import lru_cache

from assistant.text import expand_aliases, match_form, normalize, split_sentences, token_weights

TITLE_WORD_WEIGHT = 0.5  # weight of a question word the document title contains, in choosing a sentence

# How much is quoted: a quote shorter than QUOTE_MIN_CHARS runs on into the sentences after it
# (SECONDARY_MIN_CHARS for the second and later clauses), while it stays within QUOTE_MAX_CHARS.
QUOTE_MIN_CHARS = 80
SECONDARY_MIN_CHARS = 40
QUOTE_MAX_CHARS = 260

AMOUNT_UNIT = re.compile(r"\d(?:[\d.]*)\s*(?:[—\-–~～至到]\s*\d[\d.]*)?\s*(?:亿元|万元|元|%|％)")
_COUNT_UNIT = re.compile(r"\d[\d.]*\s*(?:[—\-–~～至到]\s*\d[\d.]*)?\s*(?:家|个|项|件|人|次|吨)")

# Policy clauses list rewards for several enterprise types side by side; a sentence about another
# type than the one asked ("小巨人…10万元" for a 高新技术企业 question) must not win on its amount.
@lru_cache(maxsize=1)
def _types() -> tuple[str, ...]:
    from assistant.vocab import words

    return tuple(dict.fromkeys(expand_aliases(t).strip("“”\"") for t in words("enterprise_types.txt")))


def _type_mismatch(question: str, sentence: str) -> bool:
    types = _types()
    asked = {t for t in types if t in question}
    named = {t for t in types if t in sentence}
    return bool(asked and named and not asked & named)


# How a sentence is scored for a question (not calibrated by `assistant calibrate`: these order kinds
# of evidence, on the scale of the question's token weights, where a rare word weighs about 1-3):
# a sentence about another enterprise type loses more than any cue can give back; carrying the kind
# of figure asked for outweighs a couple more shared common words; a department or place cue less
# so (such sentences also share the asked words); a condition cue least, since 以上/应当 are common.
TYPE_MISMATCH_PENALTY = 3.0
FIGURE_BONUS = 2.5
DEPARTMENT_BONUS = 2.0
PLACE_BONUS = 2.0
CONDITION_BONUS = 1.5
SHORT_SENTENCE_PENALTY = 1.0  # a scrap under 8 characters (a heading number, "具体如下：") says nothing
_DEPARTMENT_CUE = re.compile(r"负责|责任单位|责任部门|牵头")
_CONDITION_CUE = re.compile(r"条件|要求|标准|须|应当|对象|符合|以上|达到")
_PLACE_CUE = re.compile(r"设在|位于|地址|地点")


def _sentence_score(sentence: str, q_weights: dict[str, float], wanted: set[str], clause, question: str = "") -> float:
    s = expand_aliases(normalize(sentence)).lower()
    score = sum(w for t, w in q_weights.items() if t in s)
    if question and _type_mismatch(expand_aliases(normalize(question)), s):
        score -= TYPE_MISMATCH_PENALTY
    if "amount" in wanted and AMOUNT_UNIT.search(normalize(sentence)):
        score += FIGURE_BONUS
    if "count" in wanted and _COUNT_UNIT.search(normalize(sentence)):
        score += FIGURE_BONUS
    if "department" in wanted and (_DEPARTMENT_CUE.search(s) or (clause.department and clause.department in s)):
        score += DEPARTMENT_BONUS
    if "condition" in wanted and _CONDITION_CUE.search(s):
        score += CONDITION_BONUS
    if "place" in wanted and _PLACE_CUE.search(s):
        score += PLACE_BONUS
    if len(normalize(sentence)) < 8:
        score -= SHORT_SENTENCE_PENALTY
    return score


def best_quote(clause, question: str, wanted: set[str], idf: dict[str, float] | None = None,
               min_chars: int | None = None) -> tuple[str, float]:
    """The sentence (or adjacent sentences) of a clause that best answers the question; always a substring."""
    min_chars = QUOTE_MIN_CHARS if min_chars is None else min_chars
    text = clause.text
    q_tokens = token_weights(question, idf)
    # What the document's title already says (the news headline a lead sentence repeats) does not
    # tell which of its sentences answers: those words count less in choosing the sentence.
    # The clause's score stays the full one: it ranks the clause against the others.
    title = match_form(clause.doc_title)
    choosing = {t: w * (TITLE_WORD_WEIGHT if t in title else 1.0) for t, w in q_tokens.items()}
    sentences = [s for s in split_sentences(text) if s.strip()]
    if not sentences:
        return text.strip(), 0.0
    scored = [(_sentence_score(s, choosing, wanted, clause, question), i) for i, s in enumerate(sentences)]
    _, i = max(scored, key=lambda x: (x[0], -x[1]))
    score = _sentence_score(sentences[i], q_tokens, wanted, clause, question)
    quote = sentences[i].strip()
    # A heading line ("（五）支持企业股改上市。"), a lead-in ("具体标准如下："), or a sentence that only
    # restates the question (news and Q&A texts: "问：外地人可否进上海看病就医？") says nothing by
    # itself: the answer follows, so the quote runs on until it has said something.
    j = i
    while j + 1 < len(sentences) and (len(normalize(quote)) < min_chars or quote.endswith(("：", ":", "？", "?"))):
        joined = "".join(sentences[i : j + 2]).strip()
        if joined not in text or len(joined) > QUOTE_MAX_CHARS:
            break
        j += 1
        quote = joined
        score = max(score, _sentence_score(joined, q_tokens, wanted, clause, question))
    # Amount asked but the best sentence has none: a following sentence may carry it.
    if "amount" in wanted and not AMOUNT_UNIT.search(normalize(quote)) and i + 1 < len(sentences):
        nxt = sentences[i + 1]
        joined = (sentences[i] + nxt).strip()
        if AMOUNT_UNIT.search(normalize(nxt)) and joined in text and len(joined) < QUOTE_MAX_CHARS:
            quote = joined
    assert quote in text
    return quote, score


GRANT = re.compile(r"奖励|补助|资助|补贴|奖补|贴息")


def key_figure(clause, quote: str) -> str:
    """The figures a clause grants, as written (30—50万元; up to three, in the quote's order), preferring
    those the quote states; "给予奖励（未定金额）" when it grants without a figure."""
    from assistant.facts import extract

    in_quote = extract(quote)  # the clause's facts as the quote states them, in order
    for kind in ("amount", "percent"):
        stated = list(dict.fromkeys(f.text for f in in_quote if f.kind == kind))
        if stated:
            return "、".join(stated[:3])
    for kind in ("amount", "percent"):
        facts = [f for f in clause.facts if f.kind == kind]
        if facts:
            return facts[0].text
    m = GRANT.search(quote)
    return f"给予{m.group(0)}（未定金额）" if m else "（未定金额）"


def has_amount(clause, quote: str) -> bool:
    return any(f.kind in ("amount", "percent") for f in clause.facts) or bool(AMOUNT_UNIT.search(normalize(quote)))
