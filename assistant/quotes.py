"""Quote stage: which sentence of a clause answers a question, and the figure it grants.

A clause often lists several measures; the answer quotes the sentence (or the adjacent sentences)
that names what is asked and carries the kind of figure asked for, always as a substring of the
clause. Policy text writes amounts as ranges ("30—50万元") or rates ("每吨标准煤给予240元"), so a
figure is read as written, never rewritten.
"""

from __future__ import annotations

import re
from functools import lru_cache

from assistant.intents import ACROSS_REGIONS, CONTACT
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
# A sentence of the document's form (addressees, preamble, closing, headline: see is_filler) loses as
# much as one about another enterprise type, yet still wins when it alone holds the question's rarer
# words ("…由哪个部门拟定": the preamble names who drafted the text).
FILLER_PENALTY = TYPE_MISMATCH_PENALTY
SHORT_SENTENCE_PENALTY = 1.0  # a scrap under 8 characters (a heading number, "具体如下：") says nothing
_DEPARTMENT_CUE = re.compile(r"负责|责任单位|责任部门|牵头")
_CONDITION_CUE = re.compile(r"条件|要求|标准|须|应当|对象|符合|以上|达到")
_PLACE_CUE = re.compile(r"设在|位于|地址|地点")


def _sentence_score(sentence: str, q_weights: dict[str, float], wanted: set[str], clause, question: str = "") -> float:
    plain = normalize(sentence)
    s = expand_aliases(plain).lower()
    score = sum(w for t, w in q_weights.items() if t in s)
    if question and _type_mismatch(expand_aliases(normalize(question)), s):
        score -= TYPE_MISMATCH_PENALTY
    if wanted & {"amount", "grant"} and AMOUNT_UNIT.search(plain):
        score += FIGURE_BONUS
    if "count" in wanted and _COUNT_UNIT.search(plain):
        score += FIGURE_BONUS
    if "department" in wanted and (_DEPARTMENT_CUE.search(s) or (clause.department and clause.department in s)):
        score += DEPARTMENT_BONUS
    if "condition" in wanted and _CONDITION_CUE.search(s):
        score += CONDITION_BONUS
    if "place" in wanted and _PLACE_CUE.search(s):
        score += PLACE_BONUS
    if "contact" in wanted and CONTACT.search(plain):
        score += FIGURE_BONUS  # the number or address asked for is a figure too
    if len(plain) < 8:
        score -= SHORT_SENTENCE_PENALTY
    return score


# -- what carries no content: the form of Chinese official documents and news pages ----------------
# A 公文 opens with its addressees ("各县市区人民政府，市政府各部门：") and a preamble that says why and
# announces the text ("为…，现将有关事项通知如下：", "…特制定本措施。"), and closes with "特此通知。"
# and a list of attachments; a news page opens by repeating its headline and "记者从…获悉：". None of
# these answers a question, yet they share the topic's words with it: a sentence that is nothing but
# these is quoted only when nothing else says as much (FILLER_PENALTY), and the parts are cut from a quote's edges.
# (_ADDRESSEE and _NEWS_LEAD are used with .match(text, pos): they hold at pos, so no ^.)
_BODY = r"(?:政府|部门|单位|机构|委员会|管委会|指挥部|企业|公司|兵团|厅|局|委|办|银行|机关|学校|高校|医院|街道|乡镇|团体|组织|协会|商会|市民|居民|群众|同志|纳税人|缴费人)"
_ADDRESSEE = re.compile(rf"[^。；;！？!?：:\n]{{0,150}}?{_BODY}[：:]")
_NOT_ADDRESSEE = re.compile(r"要|应|须|做好|加强|落实|开展|实施|推进|予以|给予|对|按")
# a news lead: "2月1日，记者从财政部获悉：", the dateline "新华社北京2月1日电（记者 申铖）" / "天山网讯（记者马蓓报道）"
_NEWS_LEAD = re.compile(
    r"(?:\d{1,2}月\d{1,2}日[，,、]?\s*)?[^，,。；;：:]{0,30}?(?:记者|笔者)[^，,。：:]{0,30}(?:获悉|了解到|得知)[：:，,]"
    r"|(?:[^，,。；;：:\s]{0,24}(?:电|讯))?\s*[（(]\s*(?:记者|通讯员)[^）)]{0,30}[)）]"
)
_PREAMBLE = re.compile(
    r"(?:如下(?:意见|措施|规定|若干措施|政策措施|工作措施)?|本(?:措施|办法|方案|意见|细则|规定|通知|若干措施|实施方案|实施细则|实施意见))[：:。]?$"
    r"|印发给你们|请[^。；]{0,8}(?:认真)?(?:贯彻执行|贯彻落实|遵照执行|抓好落实)"
)
_PREAMBLE_VERB = re.compile(r"现将|现就|特|制定|提出|通知|印发|出台|研究")
_CLOSING = re.compile(r"^(?:特此(?:通知|公告|通告|函告|批复)|此复)[。.]?$")
_ATTACHMENTS = re.compile(r"^附件\s*\d*\s*[：:.．、]")
# the signature: the issuing body alone, its date alone, or both
_SIGNATURE = re.compile(r"^(?:[^\s，,。；;：:]{2,40}(?:政府|办公室|办公厅|委员会|小组|局|厅|部|委|中心))?\s*(?:\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日)?$")
# scraps a scraped page leaves at the end of a text: a bare 附件 label, the source and editor lines, link labels
_TRAILING_SCRAP = re.compile(r"(?:附件\s*\d*\s*[：:]?|来源\s*[：:]\s*\S{0,40}|[（(]?责任编辑\s*[：:]\s*\S{0,20}?[）)]?|【[^】\n]{0,8}】)\s*$")
# what opens a clause's text without being its content: its own number (一、 （九） 4、 1．: the answer's
# header shows the section), and the responsibility note of the item before it ("（责任单位：区金融办）
# 8.对…": scraped text puts an item's trailing note at the start of the next)
_NUMBER = re.compile(r"(?:第[一二三四五六七八九十百零〇\d]{1,6}[章条节]|[一二三四五六七八九十]{1,3}、|[（(][一二三四五六七八九十\d]{1,3}[)）]|\d{1,3}(?:[.．、](?!\d)))\s*")
_PREVIOUS_NOTE = re.compile(r"[（(]\s*(?:责任单位|牵头单位|责任部门|牵头部门)[^（）()]{0,80}[)）]\s*")
HEADLINE_CONTAINMENT = 0.5  # a sentence whose character 5-grams lie this much in the title restates the headline
NGRAM = 5


def ngrams(text: str, n: int = NGRAM) -> set[str]:
    """The character n-grams of a text, whitespace removed (the measure of near-identical statements)."""
    s = re.sub(r"\s+", "", text)
    return {s[i : i + n] for i in range(len(s) - n + 1)}


def ngram_jaccard(a: str, b: str, n: int = NGRAM) -> float:
    """Jaccard similarity of two texts' character n-grams; 0 when either is shorter than n."""
    ga, gb = ngrams(a, n), ngrams(b, n)
    return len(ga & gb) / len(ga | gb) if ga and gb else 0.0


def _lead_end(text: str, start: int, end: int, title: str) -> int:
    """Where a sentence's content starts: after a repeated headline, an addressee line, a news lead."""
    pos = start
    while pos < end and text[pos].isspace():
        pos += 1
    if title and text.startswith(title, pos):
        pos += len(title)
    for _ in range(2):  # the headline, then the addressees or the reporter's lead (either order once)
        while pos < end and text[pos].isspace():
            pos += 1
        m = _ADDRESSEE.match(text, pos, end)
        if m and "各" in m.group(0) and not _NOT_ADDRESSEE.search(m.group(0)):
            pos = m.end()
            continue
        m = _NEWS_LEAD.match(text, pos, end)
        if m:
            pos = m.end()
    for pattern in (_PREVIOUS_NOTE, _NUMBER):
        m = pattern.match(text, pos, end)
        if m and m.end() < end:
            pos = m.end()
    return pos


def _content_end(text: str, start: int, end: int) -> int:
    """Where a sentence's content ends: before trailing whitespace and page scraps (附件：, 来源：…)."""
    while end > start:
        part = text[start:end].rstrip()
        m = _TRAILING_SCRAP.search(part)
        if m and m.start() < len(part):
            end = start + m.start()
            continue
        return start + len(part)
    return start


def is_filler(sentence: str, title: str = "") -> bool:
    """True for a sentence that carries no content: a preamble announcing the text, a closing formula,
    a list of attachments, or a repetition of the headline."""
    s = normalize(sentence)
    if not s or _CLOSING.match(s) or _ATTACHMENTS.match(s) or _SIGNATURE.match(s):
        return True
    if _PREAMBLE.search(s) and _PREAMBLE_VERB.search(s):
        return True
    grams = ngrams(s)
    return bool(title and grams and len(grams & ngrams(normalize(title))) / len(grams) >= HEADLINE_CONTAINMENT)


def _sentence_spans(text: str, title: str) -> list[tuple[int, int, bool]]:
    """(start, end, filler) of each sentence of a text, split as split_sentences does (at 。；！？ and line
    breaks), its edges trimmed of what carries no content."""
    spans, pos = [], 0
    for s in split_sentences(text):
        if not s.strip():
            continue
        start = text.index(s, pos)
        pos = end = start + len(s)
        cs = _lead_end(text, start, end, title)
        ce = _content_end(text, cs, end)
        spans.append((cs, ce, ce <= cs or is_filler(text[cs:ce], title)))
    return spans


def tidy_quote(quote: str) -> str:
    """A quote as an answer shows it: scraped whitespace runs (and line breaks) as one space."""
    return re.sub(r"\s{2,}|\n", " ", quote).strip()


# The words beside the question word say what is asked ("…行动注重哪些方面", "如何处置哄抬物价"): the
# rest of a question names the subject, which a news lead or a preamble restates without answering.
# FOCUS_CHARS on each side: two words of Chinese on each side of 哪些/如何/多少 …
_QUESTION_WORD = re.compile(r"哪些|哪个|哪家|哪里|什么|如何|怎么|怎样|多少|几|何")
FOCUS_CHARS = 4


@lru_cache(maxsize=1024)  # read once per question, though every retrieved clause is quoted for it
def focus_words(question: str) -> str:
    """The text around a question's first question word (in match form), or "" without one."""
    q = ACROSS_REGIONS.sub(" ", normalize(question))  # 分别, 各区: how to answer, not what is asked
    m = _QUESTION_WORD.search(q)
    return match_form(q[max(0, m.start() - FOCUS_CHARS) : m.end() + FOCUS_CHARS]) if m else ""


def best_quote(clause, question: str, wanted: set[str], idf: dict[str, float] | None = None,
               min_chars: int | None = None, focus_weight: float = 1.0) -> tuple[str, float]:
    """The sentence (or adjacent sentences) of a clause that best answers the question; always a substring.
    `focus_weight` (calibrated: calibration.Thresholds) weighs the words beside the question word."""
    min_chars = QUOTE_MIN_CHARS if min_chars is None else min_chars
    text = clause.text
    q_tokens = token_weights(question, idf)
    # What the document's title already says (the news headline a lead sentence repeats) does not
    # tell which of its sentences answers: those words count less in choosing the sentence.
    # The clause's score stays the full one: it ranks the clause against the others.
    title = match_form(clause.doc_title)
    focus = focus_words(question) if focus_weight != 1.0 else ""
    choosing = {t: w * (TITLE_WORD_WEIGHT if t in title else 1.0) * (focus_weight if t in focus else 1.0)
                for t, w in q_tokens.items()}
    spans = _sentence_spans(text, clause.doc_title)
    if not spans:
        return text.strip(), 0.0
    said = [text[cs:ce] for cs, ce, _ in spans]
    scored = [(_sentence_score(said[k], choosing, wanted, clause, question) - (FILLER_PENALTY if spans[k][2] else 0.0), k)
              for k in range(len(spans))]
    _, i = max(scored, key=lambda x: (x[0], -x[1]))
    score = _sentence_score(said[i], q_tokens, wanted, clause, question)
    start, end = spans[i][0], spans[i][1]

    def joins(j: int) -> bool:
        # the next sentence continues the quote when it follows on the same line and says something
        return j < len(spans) and not spans[j][2] and "\n" not in text[end : spans[j][0]]

    # A heading line ("（五）支持企业股改上市。"), a lead-in ("具体标准如下："), or a sentence that only
    # restates the question (news and Q&A texts: "问：外地人可否进上海看病就医？") says nothing by
    # itself: the answer follows, so the quote runs on until it has said something.
    j = i
    while joins(j + 1) and (len(normalize(text[start:end])) < min_chars or text[start:end].endswith(("：", ":", "？", "?"))):
        if spans[j + 1][1] - start > QUOTE_MAX_CHARS:
            break
        j += 1
        end = spans[j][1]
        score = max(score, _sentence_score(text[start:end], q_tokens, wanted, clause, question))
    # Amount asked but the best sentence has none: a following sentence may carry it.
    if wanted & {"amount", "grant"} and j == i and not AMOUNT_UNIT.search(normalize(text[start:end])) and joins(i + 1):
        nxt = spans[i + 1]
        if AMOUNT_UNIT.search(normalize(text[nxt[0] : nxt[1]])) and nxt[1] - start < QUOTE_MAX_CHARS:
            end = nxt[1]
    quote = text[start:end]
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
