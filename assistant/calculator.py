"""Calculator (part of the match stage, 政策计算器): a company's structured profile checked against the
rules a clause states — each condition met, unmet or unknown, the benefit worked out with its formula.

The profile is what calculators ask for: qualifications, industry, headcount, revenue, R&D ratio,
founding year, and free quantities ("节能量": "2000吨标准煤"). Quantities are matched to thresholds
by canonical name (data/quantities.tsv keeps the other wordings) and compared in base units
(data/units.tsv), so 2万吨 meets 1000吨标准煤以上 and 1500万元 meets 0.1亿元以上. A condition the
profile says nothing about is unknown, never unmet, and comes with the question that settles it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

from assistant.schema import Benefit, Condition, FactsError, Rule
from assistant.text import expand_aliases, match_form
from assistant.vocab import canonical_quantity, condition_words, industries, quantities, units, words

_ACTIONS = ("上市", "挂牌", "股份制改造", "股改")
_LEVEL = re.compile(r"国家级|省级|市级|区级|县级")
_FIELDS = ("qualifications", "industry", "employees", "revenue_10k", "rd_ratio", "founded", "quantities")
# Beyond these a figure is a typing slip, not a company (10 million staff, 10万亿元 revenue).
_MAX = {"employees": 10_000_000, "revenue_10k": 1e9, "rd_ratio": 100.0}
_MAX_QUANTITY = 1e13  # in base units of any dimension
_NUMBER = re.compile(r"\s*(?P<num>\d+(?:,\d{3})*(?:\.\d+)?)\s*(?P<unit>\S*)\s*")


# -- vocabulary terms (shared with the free-text match) --------------------------------------------
@lru_cache(maxsize=1)
def vocabulary() -> tuple[tuple[str, float], ...]:
    """(canonical term, weight) of what a company is (types weigh most), lists on, or plans."""
    terms: dict[str, float] = {}
    for name, weight in (("enterprise_types.txt", 3.0), ("listing_venues.txt", 2.0), ("topics.txt", 2.0)):
        for w in words(name):
            term = unquoted(expand_aliases(w))
            if len(term) >= 2:
                terms.setdefault(term, weight)
    for action in _ACTIONS:
        terms.setdefault(expand_aliases(action), 1.0)
    return tuple(sorted(terms.items(), key=lambda t: -len(t[0])))


def unquoted(text: str) -> str:
    """专精特新“小巨人”企业 and 专精特新小巨人企业 are the same recognition."""
    return re.sub(r"[“”\"'‘’「」]", "", text)


def form(text: str) -> str:
    """The form in which vocabulary terms are looked up."""
    return unquoted(match_form(text))


def profile_terms(profile: str) -> dict[str, float]:
    """The vocabulary terms a text names (canonical form → weight), longest first, no term twice."""
    text = form(profile or "")
    found: dict[str, float] = {}
    for term, weight in vocabulary():
        t = term.lower()
        if t in text and not any(t in f for f in found):
            found[t] = weight
    return found


# -- the profile ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Amount:
    """A quantity of the profile: its value in base units of its dimension, and as given."""

    value: float
    dimension: str
    text: str


@dataclass(frozen=True)
class Profile:
    """A company as a calculator asks about it; None means "not said" (conditions on it are unknown)."""

    qualifications: tuple[str, ...] | None = None
    industry: str | None = None
    employees: int | None = None
    revenue_10k: float | None = None
    rd_ratio: float | None = None
    founded: int | None = None
    quantities: tuple[tuple[str, Amount], ...] = ()  # (canonical name, amount)
    text: str = ""  # the free-text profile, read for qualifications and time words too

    def amounts(self, today: dt.date) -> dict[str, Amount]:
        """Every quantity the profile states, the fields included, by canonical name."""
        out = dict(self.quantities)
        fields = {q.field: q for q in quantities().values() if q.field}
        values = {"employees": (self.employees, "人"), "revenue_10k": (self.revenue_10k, "万元"), "rd_ratio": (self.rd_ratio, "%")}
        for name, (value, unit) in values.items():
            if value is not None and name in fields:
                out.setdefault(fields[name].name, Amount(value * units()[unit].factor, fields[name].dimension, f"{value:g}{unit}"))
        if self.founded is not None and "founded" in fields:
            years = today.year - self.founded
            out.setdefault(fields["founded"].name, Amount(years, "years", f"{years}年（{self.founded}年成立）"))
        return out

    def evidence(self) -> str:
        """Everything the profile says in words: qualifications and free text."""
        return "；".join([*(self.qualifications or ()), self.text])


def parse_facts(facts: dict | None, text: str = "", today: dt.date | None = None) -> Profile | None:
    """The profile a JSON object of facts states (None for none); FactsError names a bad field."""
    if facts is None:
        return None
    if not isinstance(facts, dict):
        raise FactsError("(root)", "facts must be a JSON object")
    today = today or dt.date.today()
    unknown = [k for k in facts if k not in _FIELDS]
    if unknown:
        raise FactsError(unknown[0], f"unknown field; the known fields are {', '.join(_FIELDS)}")
    quals = facts.get("qualifications")
    if quals is not None:
        if isinstance(quals, str):
            quals = [quals]
        if not isinstance(quals, list) or not all(isinstance(q, str) for q in quals):
            raise FactsError("qualifications", "a list of names, e.g. [\"国家高新技术企业\"]")
        quals = tuple(q.strip() for q in quals if q.strip())
    industry = facts.get("industry")
    if industry is not None and (not isinstance(industry, str) or not industry.strip()):
        raise FactsError("industry", "a word such as 工业 or 商贸")
    founded = _number(facts, "founded", integer=True)
    if founded is not None and not 1800 <= founded <= today.year:
        raise FactsError("founded", f"a year between 1800 and {today.year}, not {founded}")
    raw = facts.get("quantities") or {}
    if not isinstance(raw, dict):
        raise FactsError("quantities", "an object of name → quantity, e.g. {\"节能量\": \"2000吨标准煤\"}")
    parsed = tuple((canonical_quantity(name), parse_quantity(f"quantities.{name}", name, value)) for name, value in raw.items())
    return Profile(quals, industry.strip() if industry else None, _number(facts, "employees", integer=True),
                   _number(facts, "revenue_10k"), _number(facts, "rd_ratio"), founded, parsed, (text or "").strip())


def _number(facts: dict, name: str, integer: bool = False):
    value = facts.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.replace(",", "").strip())
        except ValueError:
            raise FactsError(name, f"not a number: {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise FactsError(name, f"not a number: {value!r}")
    if value < 0:
        raise FactsError(name, f"must not be negative ({value:g})")
    if name in _MAX and value > _MAX[name]:
        raise FactsError(name, f"{value:g} is beyond any company (at most {_MAX[name]:g})")
    if integer:
        if value != int(value):
            raise FactsError(name, f"a whole number, not {value:g}")
        return int(value)
    return float(value)


def parse_quantity(field: str, name: str, value) -> Amount:
    """'2000吨标准煤', '1,500万元', '4.5%' → an Amount in base units; FactsError naming `field`."""
    if not isinstance(value, str):
        raise FactsError(field, f"a number with its unit, e.g. \"2000吨标准煤\", not {value!r}")
    text = value.strip()
    if text.startswith("-"):
        raise FactsError(field, f"must not be negative ({text})")
    m = _NUMBER.fullmatch(text)
    if not m:
        raise FactsError(field, f"cannot read {text!r} as a number with a unit")
    unit = units().get(m.group("unit"))
    if not m.group("unit"):
        raise FactsError(field, f"{text!r} has no unit (吨标准煤, 万元, 人, % …)")
    if unit is None:
        raise FactsError(field, f"unknown unit {m.group('unit')!r}; known units: {'、'.join(units())}")
    known = quantities().get(canonical_quantity(name))
    if known and known.dimension != unit.dimension:
        raise FactsError(field, f"{name} is not measured in {unit.name}")
    amount = float(m.group("num").replace(",", "")) * unit.factor
    if amount > _MAX_QUANTITY:
        raise FactsError(field, f"{text} is beyond any company")
    return Amount(amount, unit.dimension, text)


# -- checking conditions --------------------------------------------------------------------------
@dataclass(frozen=True)
class Checked:
    """One condition as it stands for the profile."""

    text: str
    status: str  # met | unmet | unknown
    why: str
    kind: str = ""
    question: str = ""  # for an unknown condition: what would settle it
    # for an unknown condition: the fact an answer to the question sets (see `answer_for`)
    answer: dict | None = None

    def to_dict(self) -> dict:
        d = {"text": self.text, "status": self.status, "why": self.why, "kind": self.kind}
        if self.question:
            d["question"] = self.question
        if self.answer:
            d["answer"] = dict(self.answer)
        return d


# the profile field stating a quantity, and the unit a form asks it in (founded: the year itself)
_FIELD_UNITS = {"employees": "人", "revenue_10k": "万元", "rd_ratio": "%", "founded": "年份"}


def answer_for(cond: Condition) -> dict:
    """How an answer to an unknown condition's question becomes a fact, so a form can ask it in place:
    {"fact": "quantities.节能量", "unit": "吨标准煤"} or {"fact": "employees", "unit": "人"} (a number
    in that unit); {"fact": "industry", "yes": "工业", "no": "非工业"}; {"fact": "profile", "yes": …}
    or {"fact": "profile", "choices": […]}: a phrase for the free text, where qualifications and time
    words are read too — so answering one question never makes the list of qualifications complete."""
    if cond.kind == "threshold":
        field = quantities()[cond.name].field if cond.name in quantities() else ""
        if field in _FIELD_UNITS:
            return {"fact": field, "unit": _FIELD_UNITS[field]}
        return {"fact": f"quantities.{cond.name}", "unit": cond.unit}
    if cond.kind == "industry":
        return {"fact": "industry", "yes": cond.name, "no": cond.name[1:] if cond.name.startswith("非") else f"非{cond.name}"}
    if cond.kind == "time":
        return {"fact": "profile", "yes": f"资质为{cond.text}"}
    if cond.options:
        return {"fact": "profile", "choices": list(cond.options)}
    return {"fact": "profile", "yes": cond.text if form(cond.name) in form(cond.text) else cond.name}


_OPS = {">=": (lambda a, b: a >= b, "以上"), ">": (lambda a, b: a > b, "超过"),
        "<=": (lambda a, b: a <= b, "以下"), "<": (lambda a, b: a < b, "不足")}


def fmt_yuan(v: float) -> str:
    """48万元, 3000元, 1.2亿元."""
    if v >= 1e8 and v % 1e6 == 0:
        return f"{v / 1e8:g}亿元"
    if v >= 1e4:
        return f"{round(v / 1e4, 4):g}万元"
    return f"{round(v, 2):g}元"


def _fmt(value: float, unit: str) -> str:
    u = units().get(unit)
    shown = value / u.factor if u else value
    return f"{round(shown, 4):g}{u.short if u else unit}"


def check(cond: Condition, profile: Profile, today: dt.date) -> Checked:
    """Whether the profile meets one condition, and why."""
    if cond.kind == "threshold":
        return _check_threshold(cond, profile, today)
    if cond.kind == "industry":
        return _check_industry(cond, profile)
    if cond.kind == "time":
        return _check_time(cond, profile)
    return _check_subject(cond, profile)


def _held(profile: Profile, cond: Condition, today: dt.date) -> Amount | None:
    amounts = profile.amounts(today)
    if cond.name in amounts and amounts[cond.name].dimension == cond.dimension:
        return amounts[cond.name]
    for name, a in amounts.items():  # a wording no data file knows: by containment
        if a.dimension == cond.dimension and len(name) >= 2 and (name in cond.name or cond.name in name):
            return a
    return None


def _check_threshold(cond: Condition, profile: Profile, today: dt.date) -> Checked:
    held = _held(profile, cond, today)
    need = f"{cond.name}{'需' if cond.op[0] == '>' else '应'}{_OPS[cond.op][1] if cond.op in ('>', '<') else ''}" \
           f"{_fmt(cond.value, cond.unit)}{_OPS[cond.op][1] if cond.op in ('>=', '<=') else ''}"
    if held is None:
        u = units().get(cond.unit)
        return Checked(cond.text, "unknown", f"未提供{cond.name}", "threshold",
                       f"贵企业{cond.name}是多少{u.name if u and u.dimension != 'percent' else ('%' if u else cond.unit)}？",
                       answer_for(cond))
    ok = _OPS[cond.op][0](held.value, cond.value)
    now = _fmt(held.value, cond.unit)
    why = f"{cond.name}{now}，{'满足' if ok else '不满足'}：{need}"
    return Checked(cond.text, "met" if ok else "unmet", why, "threshold")


def _family(word: str) -> set[str]:
    word = word.strip()
    for w, canon, wider in industries():
        if w == word or w in word:
            return {canon, wider} - {""}
    return {word}


def _check_industry(cond: Condition, profile: Profile) -> Checked:
    if not profile.industry:
        return Checked(cond.text, "unknown", "未提供行业", "industry", f"贵企业是否为{cond.text}？", answer_for(cond))
    family = _family(profile.industry)
    if cond.name.startswith("非"):  # 非工业: any industry outside 工业
        ok = cond.name[1:] not in family
    else:
        ok = cond.name in family
    why = f"贵企业属{profile.industry}，{'符合' if ok else '不符合'}“{cond.text}”"
    return Checked(cond.text, "met" if ok else "unmet", why, "industry")


def _check_time(cond: Condition, profile: Profile) -> Checked:
    evidence = profile.evidence()
    said = next((w for w in condition_words().get("recent", ()) if w in evidence), "")
    if said:
        return Checked(cond.text, "met", f"贵企业所述“{said}”", "time")
    return Checked(cond.text, "unknown", f"条款限{cond.text}，未说明资质是否为{cond.text}", "time",
                   f"贵企业的资质是否为{cond.text}（当年新获得）？", answer_for(cond))


def _levels(text: str) -> set[str]:
    return set(_LEVEL.findall(text))


@lru_cache(maxsize=1)
def _recognitions() -> frozenset[str]:
    # what a company can be (types, recognitions, listings), not what a policy is about (topics: 商标, 专利)
    names = [unquoted(expand_aliases(w)).lower() for f in ("enterprise_types.txt", "listing_venues.txt") for w in words(f)]
    return frozenset([*names, *(expand_aliases(a) for a in _ACTIONS)])


def _recognised(text: str) -> set[str]:
    return {t for t in profile_terms(text) if t in _recognitions()}


def subject_met(cond: Condition, qualification: str) -> bool:
    """Whether one qualification of the profile is what a subject condition names."""
    options = cond.options or (cond.name,)
    for option in options:
        want = _recognised(option) if cond.kind == "subject" else set()
        have = _recognised(qualification)
        levels, held = _levels(option), _levels(qualification)
        if levels and held and not levels & held:
            continue
        if want and set(want) & set(have):
            return True
        a, b = form(option), form(qualification)
        whole = a if cond.options else form(cond.text)  # the words as written, industry words included
        core = re.sub(r"^(?:通过|获得|获评|被评为|认定为|成为)|(?:的)?(?:企业|单位)$", "", b)
        if len(core) >= 2 and (core in a or core in whole or len(a) >= 2 and a in b):
            return True
    return False


def _check_subject(cond: Condition, profile: Profile) -> Checked:
    evidence = [*(profile.qualifications or ()), *([profile.text] if profile.text else [])]
    hit = next((q for q in evidence if subject_met(cond, q)), None)
    label = "、".join(cond.options) if cond.options else cond.name
    if hit is not None:
        return Checked(cond.text, "met", f"贵企业：{hit}", cond.kind)
    if cond.kind == "subject" and profile.qualifications is not None:
        return Checked(cond.text, "unmet", f"须为{label}，所列资质中没有", cond.kind)
    text = cond.text
    for w in condition_words().get("recent", ()):
        text = text.replace(w, "").lstrip("的")
    question = f"贵企业是否为{text}？" if cond.kind == "subject" and text.endswith("企业") else f"贵企业是否符合“{text}”？"
    return Checked(cond.text, "unknown", "未说明" if cond.kind == "subject" else "条款所限范围，资料无法判断", cond.kind, question,
                   answer_for(cond))


# -- the benefit ----------------------------------------------------------------------------------
def estimate(rule: Rule, profile: Profile, today: dt.date, eligible: bool | None) -> dict | None:
    """The amount the rule grants to the profile, with its formula and the quote; None when the
    text sets no figure."""
    b = rule.benefit
    quote = b.text
    if b.kind == "fixed":
        if b.parts:
            formula = " + ".join(fmt_yuan(p) for p in b.parts) + f" = {fmt_yuan(b.low)}"
        else:
            formula = f"一次性{fmt_yuan(b.low)}"
        return {"amount_yuan": b.low, "formula": formula, "quote": quote}
    if b.kind in ("range", "upto"):
        formula = f"{fmt_yuan(b.low)}—{fmt_yuan(b.high)}（按条款所定标准）" if b.kind == "range" and b.low else f"最高{fmt_yuan(b.high)}"
        return {"min_yuan": b.low, "max_yuan": b.high, "formula": formula, "quote": quote}
    if b.kind == "tiers":
        return _tier_estimate(b, profile, today)
    if b.kind in ("rate", "percent"):
        return _rate_estimate(b, profile, today, eligible)
    return None


def _tier_estimate(b: Benefit, profile: Profile, today: dt.date) -> dict:
    checked = [(t, check(t.condition, profile, today)) for t in b.tiers]
    met = [(t, c) for t, c in checked if c.status == "met"]
    if met:
        t, c = max(met, key=lambda tc: tc[0].high)
        label = "、".join(t.condition.options) if t.condition.options else t.condition.text
        if t.low == t.high:
            return {"amount_yuan": t.low, "formula": f"{label}：{fmt_yuan(t.low)}", "quote": b.text}
        return {"min_yuan": t.low, "max_yuan": t.high, "formula": f"{label}：{fmt_yuan(t.low)}—{fmt_yuan(t.high)}", "quote": b.text}
    steps = "；".join(f"{t.condition.text}：{fmt_yuan(t.high)}" for t in b.tiers)
    return {"min_yuan": b.low, "max_yuan": b.high, "formula": f"按档次：{steps}", "quote": b.text}


def _rate_estimate(b: Benefit, profile: Profile, today: dt.date, eligible: bool | None) -> dict:
    cond = Condition("threshold", b.quantity, b.quantity, ">=", 0.0, b.per if b.kind == "rate" else "万元", b.dimension)
    held = _held(profile, cond, today)
    cap = f"，最高{fmt_yuan(b.cap)}" if b.cap is not None else ""
    if b.kind == "rate":
        u = units().get(b.per)
        short = u.short if u else b.per
        per_unit = b.rate * (u.factor if u else 1)
        rate_text = f"{round(per_unit, 4):g}元/{short}"
    else:
        rate_text = f"{b.rate:g}%"
    if held is None or eligible is False:
        low = 0.0
        return {"min_yuan": low, "max_yuan": b.cap, "formula": f"{b.quantity} × {rate_text}{cap}", "quote": b.text}
    raw = held.value * (b.rate if b.kind == "rate" else b.rate / 100)
    amount = min(raw, b.cap) if b.cap is not None else raw
    shown = _fmt(held.value, b.per) if b.kind == "rate" else fmt_yuan(held.value)
    formula = f"{shown} × {rate_text} = {fmt_yuan(raw)}"
    if b.cap is not None:
        formula += f"（未达上限{fmt_yuan(b.cap)}）" if raw <= b.cap else f"，超过上限，按{fmt_yuan(b.cap)}计"
    return {"amount_yuan": round(amount, 2), "formula": formula, "quote": b.text + (f"；{b.cap_text}" if b.cap_text else "")}


# -- one rule -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    """A rule checked against a profile."""

    rule: Rule
    conditions: tuple[Checked, ...]
    eligible: bool | None
    estimate: dict | None
    question: str  # the first unknown condition's question
    missing: str  # for a near miss: what the one unmet condition asks

    @property
    def unmet(self) -> list[Checked]:
        return [c for c in self.conditions if c.status == "unmet"]

    @property
    def group(self) -> str:
        """eligible | unknown | near_miss | no."""
        if self.eligible:
            return "eligible"
        unmet = self.unmet
        if not unmet:
            return "unknown"
        if len(unmet) == 1 and unmet[0].kind != "industry":
            met_other = any(c.status == "met" and c.kind != "time" for c in self.conditions)
            by_size = unmet[0].kind == "tiers" and self.rule.benefit.tiers[0].condition.kind == "threshold"
            if unmet[0].kind in ("threshold", "time") or by_size or met_other:
                return "near_miss"
        return "no"

    def value(self) -> float:
        e = self.estimate or {}
        return float(e.get("amount_yuan") or e.get("max_yuan") or 0.0)


def evaluate(rule: Rule, profile: Profile, today: dt.date | None = None) -> Evaluation:
    """Every condition of a rule checked, eligibility (None while any is unknown), the estimate."""
    today = today or dt.date.today()
    checked = [check(c, profile, today) for c in rule.conditions]
    if rule.benefit.kind == "tiers" and rule.benefit.tiers:
        checked.append(_tier_condition(rule, profile, today))
    statuses = {c.status for c in checked}
    eligible = False if "unmet" in statuses else (None if "unknown" in statuses else True)
    question = next((c.question for c in checked if c.status == "unknown" and c.question), "")
    unmet = [c for c in checked if c.status == "unmet"]
    missing = unmet[0].why if len(unmet) == 1 else ""
    return Evaluation(rule, tuple(checked), eligible, estimate(rule, profile, today, eligible), question, missing)


def _tier_condition(rule: Rule, profile: Profile, today: dt.date) -> Checked:
    # the tiers together are one condition: the profile must fall in one of them
    checked = [check(t.condition, profile, today) for t in rule.benefit.tiers]
    text = "；".join(t.condition.text for t in rule.benefit.tiers)
    met = [c for c in checked if c.status == "met"]
    if met:
        return Checked(text, "met", met[0].why, "tiers")
    if any(c.status == "unknown" for c in checked):
        q = next((c.question for c in checked if c.question), "")
        answer = next((c.answer for c in checked if c.answer), None)
        if rule.benefit.tiers[0].condition.kind == "subject":
            q = f"贵企业属于以下哪一档：{text}？"
            choices = [o for t in rule.benefit.tiers for o in (t.condition.options or (t.condition.text,))]
            answer = {"fact": "profile", "choices": choices}
        return Checked(text, "unknown", "未说明属于哪一档", "tiers", q, answer)
    return Checked(text, "unmet", "不属于任何一档：" + "；".join(c.why for c in checked), "tiers")


def used_by(rules, profile: Profile, today: dt.date) -> set[str]:
    """The profile's facts some rule conditions on ("quantities.节能量", "qualifications.国家高新技术企业")."""
    used: set[str] = set()
    amounts = profile.amounts(today)
    stated = dict(profile.quantities)
    fields = {q.name: q.field for q in quantities().values() if q.field}
    for rule in rules:
        conds = list(rule.conditions) + [t.condition for t in rule.benefit.tiers]
        if rule.benefit.kind in ("rate", "percent"):
            conds.append(Condition("threshold", rule.benefit.quantity, rule.benefit.quantity, ">=", 0.0, "", rule.benefit.dimension))
        for c in conds:
            if c.kind == "industry":
                used.add("industry")
            elif c.kind == "threshold":
                for name, a in amounts.items():
                    if a.dimension == c.dimension and (name == c.name or len(name) >= 2 and (name in c.name or c.name in name)):
                        used.add(f"quantities.{name}" if name in stated else fields[name])
            elif c.kind in ("subject", "scope"):
                used.update(f"qualifications.{q}" for q in profile.qualifications or () if subject_met(c, q))
    return used


def given(profile: Profile) -> list[str]:
    """The facts a profile states, named as `used_by` names them."""
    out = [f"qualifications.{q}" for q in profile.qualifications or ()]
    out += [f for f in ("industry", "employees", "revenue_10k", "rd_ratio", "founded") if getattr(profile, f) is not None]
    return out + [f"quantities.{name}" for name, _ in profile.quantities]
