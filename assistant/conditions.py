"""Conditions (part of the chunk → index stage, beside facts): the rules a clause states, read at
build time and stored with the clause — who may claim (subject, industry, time words), the
thresholds a claimant must reach, and the benefit: a fixed amount, a range, a rate times a quantity
with a cap, an amount by percentage of a base, tiers by level or size, or support of no stated figure.

How comparators are read: 以上/及以上/以下/及以下/以内/不低于/不少于/不超过/不高于/达到/满 include
the number; 超过/大于/高于/多于/不足/低于/少于/小于/未满/不满 exclude it; a written （含） makes the
comparator inclusive and （不含） exclusive. A quantity with no comparator is no threshold.

The grammar is read in code; every word list (units, quantity names and their other wordings,
industries, time words) lives in `data/`. Amounts are the ones `facts.extract` reads (Arabic and
Chinese numerals, ranges, 元/人); other quantities are read here against `data/units.tsv`. Every
pattern is linear: a number starts where a digit run starts, alternations are literal word lists.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from functools import lru_cache

from assistant.facts import beneficiary_before, extract
from assistant.schema import Benefit, Clause, Condition, Rule, Tier
from assistant.vocab import Unit, canonical_quantity, condition_words, industries, units, words, wordings

_SENTENCE = re.compile(r"[^。；;！？!?\n]+")
_PHRASE_END = "，,：:"
# comparator words before a number, longest first within each reading
_BEFORE = (
    (">=", ("不低于", "不少于", "不小于", "达到", "达", "满")),
    (">", ("超过", "大于", "高于", "多于")),
    ("<=", ("不超过", "不高于", "不大于", "不多于", "最高", "最多")),
    ("<", ("未达到", "不足", "低于", "少于", "小于", "未满", "不满")),
)
_AFTER = re.compile(r"\s*(?P<incl>[（(](?:含|不含)(?:本数)?[)）])?\s*(?P<word>及以上|以上|及以下|以下|以内|之内)?"
                    r"(?P<incl2>[（(](?:含|不含)(?:本数)?[)）])?")
_NEUTRAL = ("在", "为", "是", "达")
_GRANT_NOUN = re.compile(r"奖励|补助|资助|补贴|奖补|贴息|扶持资金|资金支持|补偿|返还")
_UNSPECIFIED = re.compile(r"给予[^，,。；;]{0,12}?(?:奖励|补助|资助|补贴|奖补|贴息|支持)")
_CAP_WORDS = re.compile(r"最高|最多|上限|封顶|不超过|不高于")
_PERCENT_GRANT = re.compile(r"\s*的?(?:比例)?(?:给予)?(?:资金)?(?:奖励|补助|资助|补贴|奖补|贴息)")
_LIST_SEP = re.compile(r"\s*[、和及与]\s*")
_ADDITIVE = re.compile(r"\s*(?:的)?基础上")
_LEVEL = re.compile(r"国家级|省级|市级|区级|县级")
_EACH = ("count", "years", "months")  # 每个企业, 每家, 每年: each one, not a quantity multiplied
_LEAD = "并且和及或与其的对在于经被由"
_DATE = re.compile(r"\d{4}年(?:\d{1,2}月)?(?:\d{1,2}日)?(?:以后|以来|以前|之后|之前|后|前|起)?")


@lru_cache(maxsize=1)
def _quantity_pattern() -> re.Pattern:
    # money is read by facts; a bare 月 is a date ("3月底"), never a duration
    names = sorted((u for u, v in units().items() if v.dimension != "money"), key=len, reverse=True)
    alternation = "|".join(re.escape(n) for n in names)
    return re.compile(rf"(?<![\d.])(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>{alternation})")


# -- tokens ---------------------------------------------------------------------------------------
@dataclass
class _Token:
    start: int
    end: int
    dimension: str
    low: float  # base units
    high: float
    unit: str  # as written
    per: str = ""  # the unit after "/" (元/人)
    op: str = ""  # comparator when it is a threshold
    role: str = ""  # threshold | cap | amount | rate | percent | grant
    cond_start: int = 0  # where the threshold's words start
    cond_end: int = 0
    name: str = ""
    payer: str = ""


def _tokens(sentence: str) -> list[_Token]:
    toks: list[_Token] = []
    cursor = 0
    for f in extract(sentence):
        if f.kind != "amount":
            continue
        at = sentence.find(f.text, cursor)
        if at < 0:
            continue
        cursor = at + len(f.text)
        unit, _, per = f.unit.partition("/")
        end = cursor
        if per and per not in units():
            # facts' per may run on past the unit ("25万元/人以上" → 人以上): keep the unit only
            known = next((u for u in sorted(units(), key=len, reverse=True) if per.startswith(u)), "")
            end -= len(per) - len(known)
            per = known
        factor = units().get(unit, Unit(unit, "money", 1, unit)).factor
        toks.append(_Token(at, end, "money", f.low * factor, f.high * factor, unit, per, payer=f.payer))
    money, k = list(toks), 0  # both in text order: one walk finds the amounts a quantity overlaps
    for m in _quantity_pattern().finditer(sentence):
        while k < len(money) and money[k].end <= m.start():
            k += 1
        if k < len(money) and money[k].start < m.end():
            continue
        unit = units()[m.group("unit")]
        num = m.group("num")
        if unit.dimension == "years" and len(num) == 4:
            continue  # 2019年: a date
        value = float(num) * unit.factor
        toks.append(_Token(m.start(), m.end(), unit.dimension, value, value, m.group("unit")))
    return sorted(toks, key=lambda t: t.start)


def _comparator(sentence: str, tok: _Token) -> str:
    """The comparator a quantity is stated with ("" when none); sets where its words end."""
    before = sentence[max(0, tok.start - 4) : tok.start].rstrip()
    op = ""
    for reading, cues in _BEFORE:
        if any(before.endswith(w) for w in cues):
            op = reading
            break
    m = _AFTER.match(sentence, tok.end)
    tok.cond_end = m.end() if m.group("word") or m.group("incl") or m.group("incl2") else tok.end
    word, incl = m.group("word") or "", (m.group("incl") or "") + (m.group("incl2") or "")
    if word:
        op = ">=" if "上" in word else "<="
    if op and "不含" in incl:
        op = op[0]
    elif op and "含" in incl:
        op = op[0] + "="
    return op


_REACH = 160  # how far back a phrase is looked for: a clause is shorter, a run-on text is not rescanned


def _phrase_start(sentence: str, pos: int, floor: int = 0) -> int:
    lo = max(floor, pos - _REACH)
    return max(lo, max(sentence.rfind(p, lo, pos) for p in _PHRASE_END) + 1)


def _name(sentence: str, tok: _Token, floor: int) -> str:
    """The quantity a threshold is on: a known wording just before it, else the words as written."""
    lo = max(_phrase_start(sentence, tok.start, floor), tok.start - 30)
    near = sentence[lo : tok.start]
    for window in (near, sentence[max(floor, tok.start - 40) : tok.start]):
        best = None
        for w, q in wordings():
            if q.dimension != tok.dimension:
                continue
            at = window.rfind(w)
            if at >= 0 and (best is None or at + len(w) > best[0]):
                best = (at + len(w), q.name, at)
        if best:
            tok.cond_start = lo + best[2] if window is near else lo
            return best[1]
    written = near.rstrip()
    for _, cues in _BEFORE:
        for w in cues:
            written = written.removesuffix(w)
    for w in _NEUTRAL:
        written = written.removesuffix(w)
    run = re.search(r"[\u4e00-\u9fff“”]{1,12}$", written)
    name = re.split(r"[且并和及]", run.group(0))[-1].lstrip(_LEAD) if run else ""  # 正常经营 of 创办企业且正常经营
    tok.cond_start = lo + (run.start() if run else len(near))
    return name


def _per(sentence: str, tok: _Token) -> str:
    """The unit a money amount is per (每吨标准煤给予240元 → 吨标准煤; 每人每年1000元 → 人), or ""."""
    if tok.per:
        return tok.per
    lo = max(_phrase_start(sentence, tok.start), tok.start - 24)
    found = []
    at = sentence.find("每", lo, tok.start)
    while at >= 0:
        rest = sentence[at + 1 : tok.start]
        unit = next((n for n in sorted(units(), key=len, reverse=True) if rest.startswith(n)), "")
        if unit:
            found.append(unit)
        at = sentence.find("每", at + 1, tok.start)
    # 每人每年: what is counted is the person; a period (年, 月) is only how often
    counted = [u for u in found if units()[u].dimension not in ("years", "months")]
    return (counted or found or [""])[0]


def _depths(sentence: str, toks: list[_Token]) -> list[int]:
    """How many brackets are open at each token (tokens in text order; one walk over the text)."""
    out, depth, pos = [], 0, 0
    for tok in toks:
        part = sentence[pos : tok.start]
        depth += part.count("（") + part.count("(") - part.count("）") - part.count(")")
        out.append(depth)
        pos = max(pos, tok.start)
    return out


def _roles(sentence: str, toks: list[_Token]) -> None:
    floor = 0
    for tok, depth in zip(toks, _depths(sentence, toks)):
        op = _comparator(sentence, tok)
        if depth > 0:
            continue  # "（粤东粤西粤北地区为20人以上）": an exception for some places, not the rule's threshold
        phrase = sentence[_phrase_start(sentence, tok.start) : tok.start]
        granting = bool(_GRANT_NOUN.search(phrase) or "给予" in phrase or _CAP_WORDS.search(phrase))
        if tok.dimension == "money":
            if op in ("<=", "<") and granting:
                tok.role = "cap"  # 同一企业补贴金额不超过300万元, 给予不超过10万元的一次性奖补
            elif op and not granting:
                tok.role, tok.op, tok.name = "threshold", op, _name(sentence, tok, floor)
            elif op in ("<=", "<") or _CAP_WORDS.search(phrase):
                tok.role = "cap"
            elif _granted(sentence, tok):
                tok.role = "amount"
        elif tok.dimension == "percent" and _PERCENT_GRANT.match(sentence, tok.end):
            if _base_quantity(phrase):
                tok.role = "percent"
        elif op:
            tok.role, tok.op, tok.name = "threshold", op, _name(sentence, tok, floor)
        if tok.role == "threshold":
            floor = tok.cond_end


def _granted(sentence: str, tok: _Token) -> bool:
    # an amount is a grant only when its phrase says so (给予…, 奖励/补助…), not a target or a size
    lo, hi = _phrase_start(sentence, tok.start), _next_phrase(sentence, tok.end)
    phrase = sentence[lo:hi]
    return bool(_GRANT_NOUN.search(phrase) or "给予" in phrase)


# -- rules ----------------------------------------------------------------------------------------
@dataclass
class _Draft:
    start: int
    end: int
    conditions: list[Condition]
    benefit: Benefit
    additive: bool = False
    extra: list[tuple[int, int]] = field(default_factory=list)


def _groups(sentence: str, toks: list[_Token]) -> list[list[_Token]]:
    """Benefit tokens grouped: an amount list (75万元、50万元、5万元) is one group."""
    groups: list[list[_Token]] = []
    for tok in toks:
        if tok.role not in ("amount", "percent"):
            continue
        if groups and groups[-1][-1].role == "amount" == tok.role:
            gap = sentence[groups[-1][-1].end : tok.start]
            if _LIST_SEP.fullmatch(gap):
                groups[-1].append(tok)
                continue
        groups.append([tok])
    return groups


def rules_of(text: str) -> tuple[Rule, ...]:
    """Every rule a clause's text states, in order; consecutive rules that differ only in one
    threshold or one subject become one rule with tiers."""
    drafts: list[_Draft] = []
    last_names: dict[str, str] = {}
    for m in _SENTENCE.finditer(text):
        sentence = m.group(0)
        if not sentence.strip():
            continue
        for d in _sentence_rules(sentence, last_names):
            d.start += m.start()
            d.end += m.start()
            drafts.append(d)
    drafts = _additive(text, drafts)
    return tuple(_Draft_rule(text, d) for d in _tiers(text, drafts))


def _Draft_rule(text: str, d: _Draft) -> Rule:  # noqa: N802 (a constructor in all but name)
    return Rule(text[d.start : d.end].strip(), tuple(d.conditions), d.benefit)


def _sentence_rules(sentence: str, last_names: dict[str, str]) -> list[_Draft]:
    toks = _tokens(sentence)
    _roles(sentence, toks)
    for t in toks:
        if t.role == "threshold":
            if not t.name:
                t.name = last_names.get(t.dimension, "")
            t.name = canonical_quantity(t.name, t.dimension) if t.name else ""
            last_names[t.dimension] = t.name
    groups = _groups(sentence, toks)
    caps = [t for t in toks if t.role == "cap"]
    if not groups:
        grant = _UNSPECIFIED.search(sentence)
        around = sentence[_phrase_start(sentence, _phrase_start(sentence, caps[0].start) - 1) : _phrase_end(sentence, caps[0].end)] if caps else ""
        if caps and _GRANT_NOUN.search(around):
            cap = caps[0]
            per = _per(sentence, cap)
            # 按每人不超过1000元: a rate at most so much; 最高不超过50万元: an amount up to a cap
            role = "amount" if per and units()[per].dimension not in _EACH else "upto"
            at = grant.start() if grant and grant.start() < cap.start else _phrase_start(sentence, cap.start)
            groups = [[_Token(at, cap.end, "money", cap.low, cap.high, cap.unit, per, role=role)]]
            caps = caps[1:]
        elif grant and beneficiary_before(sentence, grant.start()):
            groups = [[_Token(grant.start(), grant.end(), "", 0, 0, "", role="grant")]]
            caps = []  # a ceiling here is of something else (a loan), not of this grant
        else:
            return []
    drafts = []
    lo = 0
    thresholds = [t for t in toks if t.role == "threshold"]
    cap_starts, thr_starts = [c.start for c in caps], [t.start for t in thresholds]
    for i, group in enumerate(groups):
        last = i == len(groups) - 1
        hi = len(sentence) if last else _next_phrase(sentence, group[-1].end)
        # a cap or threshold belongs to the group whose span holds it (the first and last take the rest)
        mine = _within(caps, cap_starts, 0 if i == 0 else lo, len(sentence) if last else hi)
        drafts.append(_draft(sentence, lo, hi, group, _within(thresholds, thr_starts, lo, hi), mine))
        lo = hi
    return drafts


def _within(toks: list[_Token], starts: list[int], lo: int, hi: int) -> list[_Token]:
    return toks[bisect.bisect_left(starts, lo) : bisect.bisect_left(starts, hi)]


def _phrase_end(sentence: str, pos: int) -> int:
    ends = [i for i in (sentence.find(p, pos, pos + _REACH) for p in _PHRASE_END) if i >= 0]
    return min(ends) if ends else min(len(sentence.rstrip()), pos + _REACH)


def _next_phrase(sentence: str, pos: int) -> int:
    ends = [i for i in (sentence.find(p, pos, pos + _REACH) for p in _PHRASE_END) if i >= 0]
    return min(ends) + 1 if ends else min(len(sentence), pos + _REACH)


def _draft(sentence: str, lo: int, hi: int, group: list[_Token], thresholds: list[_Token], caps: list[_Token]) -> _Draft:
    first = group[0]
    subject = beneficiary_before(sentence, first.start)
    conditions = [Condition("threshold", sentence[t.cond_start : t.cond_end].strip(), t.name, t.op, t.low, t.unit, t.dimension)
                  for t in thresholds]
    span = sentence[lo:hi]
    conditions += _time_conditions(span)
    benefit, subject_done = _benefit(sentence, lo, group, thresholds, caps, subject)
    if not subject_done:
        if not subject and first.role in ("amount", "upto"):
            subject = _leading_subject(sentence, lo, first.start)
        if not subject:  # a 对… phrase too long for facts' beneficiary: keep it whole, as a scope
            at = sentence.find("对", lo, first.start)
            subject = sentence[at + 1 : _phrase_end(sentence, at)].strip() if at >= 0 else ""
        for c in conditions:  # the thresholds are conditions already; what is left says who
            subject = subject.replace(c.text, "")
        subject = re.sub(r"[（(][^（()）]*[)）]", "", subject).strip("、，, ").lstrip(_LEAD)
        names = [t.name for t in thresholds] + [benefit.quantity]
        conditions += _subject_conditions(subject, names)
        conditions += _conditional_phrases(sentence, lo, first.start, conditions, names)
    additive = bool(_ADDITIVE.match(sentence, group[-1].end)) and first.role == "amount"
    start = min([lo, *(t.cond_start for t in thresholds)])
    end = max([_phrase_end(sentence, group[-1].end), *(c.end for c in caps)])
    return _Draft(start, end, _unique(conditions), benefit, additive)


def _unique(conditions: list[Condition]) -> list[Condition]:
    return list(dict.fromkeys(conditions))


def _benefit(sentence, lo, group, thresholds, caps, subject) -> tuple[Benefit, bool]:
    """The benefit a group of tokens states, and whether its subjects were taken as its tiers."""
    first = group[0]
    cap = min((c.high for c in caps), default=None)
    cap_text = "；".join(sentence[_phrase_start(sentence, c.start) : c.end].strip() for c in caps)
    text = sentence[first.start : group[-1].end]
    if first.role == "grant":
        return Benefit("unspecified", text, cap=cap, cap_text=cap_text), False
    if first.role == "upto":
        return Benefit("upto", text.strip(), low=0.0, high=first.high, cap=cap, cap_text=cap_text), False
    if first.role == "percent":
        base_lo = _phrase_start(sentence, first.start)
        base = _base_quantity(sentence[base_lo : first.start])
        if not base:
            return Benefit("unspecified", text, cap=cap, cap_text=cap_text), False
        return Benefit("percent", sentence[base_lo : first.end].strip(), rate=first.low, quantity=base, dimension="money",
                       cap=cap, cap_text=cap_text), False
    if len(group) > 1:
        return _list_benefit(sentence, lo, group, subject, cap, cap_text)
    per = _per(sentence, first)
    unit = units().get(per)
    if unit and unit.dimension not in _EACH:
        name = next((t.name for t in thresholds if t.dimension == unit.dimension and t.name), "")
        name = name or _named_in(sentence, unit.dimension) or f"{per}数"
        at = sentence.rfind("每", _phrase_start(sentence, first.start), first.start)
        written = sentence[at if at >= 0 else first.start : first.end].strip()
        return Benefit("rate", written, rate=first.low / unit.factor, per=per, quantity=name, dimension=unit.dimension,
                       cap=cap, cap_text=cap_text), False
    kind = "fixed" if first.low == first.high else "range"
    return Benefit(kind, text.strip(), low=first.low, high=first.high, cap=cap, cap_text=cap_text), False


def _list_benefit(sentence, lo, group, subject, cap, cap_text) -> tuple[Benefit, bool]:
    # "对A、B、C，分别奖励75万元、50万元、5万元": the n-th amount is the n-th subject's
    text = sentence[group[0].start : group[-1].end]
    items = [s for s in re.split(r"[、]|和(?=[^、]*$)", subject[:_REACH]) if s.strip()] if subject else []
    if "分别" in sentence[lo : group[0].start] and len(items) == len(group):
        tiers = tuple(Tier(_subject_condition(item) or Condition("scope", item.strip(), item.strip()), t.low, t.high)
                      for item, t in zip(items, group))
        return Benefit("tiers", text, low=min(t.low for t in group), high=max(t.high for t in group), tiers=tiers,
                       cap=cap, cap_text=cap_text), True
    return Benefit("range", text, low=min(t.low for t in group), high=max(t.high for t in group), cap=cap, cap_text=cap_text), False


def _named_in(sentence: str, dimension: str) -> str:
    for w, q in wordings():
        if q.dimension == dimension and w in sentence:
            return q.name
    return ""


def _base_quantity(phrase: str) -> str:
    # "按照减免租金的10%", "对其净化系统改造及设备投资给予30%": the money the share is of
    return _named_in(phrase, "money")


def _time_conditions(span: str) -> list[Condition]:
    words = condition_words()
    for w in words.get("ignore", ()):
        span = span.replace(w, "　" * len(w))
    for w in words.get("recent", ()):
        if w in span:
            return [Condition("time", w, w)]
    return []


def _leading_subject(sentence: str, lo: int, start: int) -> str:  # noqa: D103
    # "中国质量奖、地理标志保护产品…一次性奖励20万元": with no 对, the noun list leading the phrase
    head = sentence[_phrase_start(sentence, start, lo) : start]
    head = re.sub(r"^\s*(?:即|其中)?[：:]?", "", head)
    head = re.split(r"一次性|给予|奖励|补助|补贴|资助|可获得|可享受", head)[0]
    return head.strip() if "、" in head or head.endswith(("奖", "商标", "称号", "产品", "企业")) else ""


def _conditional_phrases(sentence: str, lo: int, hi: int, conditions: list[Condition], names: list[str]) -> list[Condition]:
    """"…的，" phrases before the grant state who may claim it (受疫情影响严重的企业采购…服务产品的，
    取得相关许可证和产品注册证的企业，对其…): each is a condition, less what the others already say."""
    out = []
    start = lo
    while start < hi:
        end = min(_phrase_end(sentence, start), hi)
        phrase = sentence[start:end].strip()
        start = end + 1
        if not phrase.endswith(("的", "的企业", "的单位", "的机构")) or phrase.lstrip().startswith("对"):
            continue
        rest = phrase
        for c in conditions:
            rest = rest.replace(c.text, "")
        rest = re.sub(r"[（(][^（()）]*[)）]", "", rest).strip("、，, ").lstrip(_LEAD).removesuffix("的")
        if len(rest) >= 4 and not _restates(rest, names):
            cond = _subject_condition(phrase)
            if cond is not None and all(cond.text != c.text for c in conditions):
                out.append(cond)
    return out


def _restates(text: str, names: list[str]) -> bool:
    # "实施的节能改造项目" beside a threshold on 节能量: the quantity already tests it
    return any(name and any(name[i : i + 2] in text for i in range(len(name) - 1)) for name in names)


def _subject_conditions(subject: str, names: list[str]) -> list[Condition]:
    """Industry and qualification conditions of a 对… phrase."""
    if not subject:
        return []
    out = []
    both = "非工业" in subject and "工业" in subject.replace("非工业", "")
    word = next((w for w, _, _ in industries() if w in subject), "")
    if word and not both:
        canon = next(c for w, c, _ in industries() if w == word)
        out.append(Condition("industry", word, canon))
    cond = _subject_condition(subject)
    # a named recognition (国家高新技术企业) is always a condition; other words are, unless they
    # restate what a quantity of the rule already tests (实施的节能改造项目 beside 节能量)
    named = cond is not None and any(w in cond.text for w in words("enterprise_types.txt"))
    if cond is not None and (named or not _restates(cond.name, names)):
        out.append(cond)
    return out


def _subject_condition(subject: str) -> Condition | None:
    """The qualification a 对… phrase names (国家高新技术企业, 通过清洁生产审核), a scope it limits the
    grant to (符合…申报条件的技术改造项目), or None when it limits nothing (企业, 中小企业)."""
    text = subject.strip()
    core = text
    for w in condition_words().get("recent", ()):
        core = core.replace(w, "")
    for word, _, _ in industries():
        core = core.replace(word, "")
    date = _DATE.match(core.strip().lstrip(_LEAD))
    if date:
        core = core.strip().lstrip(_LEAD)[date.end() :]
    core = re.sub(r"^每(?:个|家|户)?", "", core.strip().lstrip(_LEAD)).removesuffix("的")
    bare = re.sub(r"[“”\"']", "", core)
    generic = condition_words().get("generic", ())
    if not bare or bare in generic or len(bare) < 2:
        return None
    options = tuple(o.strip() for o in re.split(r"[、]", bare) if o.strip())
    if len(options) < 2 or not all(_names_enterprise(o) for o in options):
        options = ()
    if not _names_enterprise(bare) or any(bare.startswith(g) and len(bare) > len(g) + 2 for g in generic if g.endswith("企业")):
        return Condition("scope", text, bare)  # 企业组织实施重大创新项目…: what a company does, not what it is
    name = bare
    for g in generic:  # 完成股份制改造的中小企业 → 完成股份制改造; 国家高新技术企业 stays whole
        if name.endswith("的" + g) or name.endswith(g) and len(g) > 2 and len(name) > len(g):
            name = name[: -len(g)].removesuffix("的")
            break
    return Condition("subject", text, name or bare, options=options)


def _names_enterprise(text: str) -> bool:
    if any(w in text for w in words("enterprise_types.txt")):
        return True
    return text.endswith(("企业", "单位", "机构", "公司", "奖", "商标", "称号", "老字号", "产品")) and not text.endswith("项目")


def _additive(text: str, drafts: list[_Draft]) -> list[_Draft]:
    # "在市财政一次性补助20万元的基础上，区财政再一次性补助20万元": the two are paid together
    out: list[_Draft] = []
    for d in drafts:
        prev = out[-1] if out else None
        if prev is not None and prev.additive and prev.benefit.kind == d.benefit.kind == "fixed":
            total = prev.benefit.low + d.benefit.low
            written = text[text.find(prev.benefit.text, prev.start) : d.end].strip()
            benefit = Benefit("fixed", written, low=total, high=total, parts=(*(prev.benefit.parts or (prev.benefit.low,)), d.benefit.low))
            out[-1] = _Draft(prev.start, d.end, _unique(prev.conditions + d.conditions), benefit)
        else:
            out.append(d)
    return out


def _tiers(text: str, drafts: list[_Draft]) -> list[_Draft]:
    out: list[_Draft] = []
    for d in drafts:
        merged = _merge(out[-1], d) if out else None
        if merged is not None:
            out[-1] = merged
        else:
            out.append(d)
    return out


def _key(c: Condition) -> tuple:
    return (c.kind, c.name) if c.kind in ("threshold", "time", "industry") else (c.kind,)


def _merge(a: _Draft, b: _Draft) -> _Draft | None:
    """One rule with tiers when b differs from a in only its threshold on the same quantity, or only
    its subject (a list of fixed amounts by level or size); None otherwise."""
    if b.benefit.kind not in ("fixed", "range") or a.benefit.kind not in ("fixed", "range", "tiers") or a.benefit.parts or b.benefit.parts:
        return None
    a_tiers = a.benefit.tiers
    diff_kind = a_tiers[0].condition.kind if a_tiers else None
    a_rest = list(a.conditions)
    b_rest = list(b.conditions)
    for kind in (("threshold", "subject") if diff_kind is None else (diff_kind,)):
        a_own = [c for c in a_rest if c.kind == kind] if not a_tiers else [a_tiers[-1].condition]
        b_own = [c for c in b_rest if c.kind == kind]
        if len(b_own) != 1 or len(a_own) != 1 or a_own[0] == b_own[0]:
            continue
        if kind == "threshold" and (a_own[0].name != b_own[0].name or a_own[0].op != b_own[0].op):
            continue
        others_a = {_key(c): c for c in a_rest if c.kind != kind}
        others_b = {_key(c): c for c in b_rest if c.kind != kind}
        if not set(others_b) <= set(others_a) or any(others_a[k] != v for k, v in others_b.items()):
            continue
        tiers = a_tiers or (Tier(a_own[0], a.benefit.low, a.benefit.high),)
        tiers += (Tier(b_own[0], b.benefit.low, b.benefit.high),)
        benefit = Benefit("tiers", "；".join(t.condition.text for t in tiers), low=min(t.low for t in tiers),
                          high=max(t.high for t in tiers), tiers=tiers)
        common = [c for c in a_rest if c.kind != kind]
        return _Draft(a.start, b.end, common, benefit)
    return None


def attach_rules(clause: Clause) -> Clause:
    """The clause with the rules its text states."""
    return _replace(clause, rules=rules_of(clause.text))
