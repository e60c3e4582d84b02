"""Facts (part of the chunk → index stage): structured amounts, counts and ratios read from a
clause at build time and stored with it, so answers can quote and compare figures.

Policy text writes ranges with an em-dash ("30—50万元"), per-unit rates ("每吨标准煤给予240元"),
shares ("市和区财政各负担50%") and ratios ("2:2:4:2"), and amounts in Chinese numerals as often as
in Arabic ones ("最高不超过五十万元"); the text of a fact is kept exactly as written.

Every pattern here is linear in the text: a number may only start where a run of digits starts
(else a long digit run is retried from each of its digits), and no two adjacent quantifiers can
take the same characters.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import replace

from assistant.schema import Clause, Fact

_NUM = r"(?<!\d)\d+(?:\.\d+)?"
_RANGE = r"[—\-–~～至到]"


def _figure(units: str) -> re.Pattern:
    # "\s*(?:—\s*high)?\s*unit" would let both \s* split one run of spaces (quadratic on long runs);
    # the space before the unit belongs to the optional range group instead.
    return re.compile(rf"(?P<low>{_NUM})\s*(?:{_RANGE}\s*(?P<high>{_NUM})\s*)?(?P<unit>{units})")


_PER = re.compile(r"\s*/\s*(?P<per>[\u4e00-\u9fa5]{1,3})")
_AMOUNT = _figure("亿元|万元|元")
_PERCENT = _figure("%|％")
_COUNT = _figure("家|个|项|件|人|次|吨")
_RATIO = re.compile(r"(?<!\d)\d+(?:\s*[:：]\s*\d+){2,}")
# 二十万元, 一百五十万元, 三亿五千万元, 二十至五十万元. A numeral starts at the start of its run and
# not after 数/几/上/近… ("数十万元" is no amount); the lazy numeral stops at the first unit.
_CN_CHARS = "零〇一二两三四五六七八九十百千万亿点"
_CN_NUM = rf"[一二两三四五六七八九十][{_CN_CHARS}]*?"
_CN_AMOUNT = re.compile(
    rf"(?<![{_CN_CHARS}数几上成近逾余多])(?P<low>{_CN_NUM})(?:{_RANGE}(?P<high>{_CN_NUM}))?(?P<unit>亿元|万元|元)"
)
_CN_SCALE = {"元": ("", 1), "万元": ("万", 10_000), "亿元": ("亿", 100_000_000)}
_PAYER = re.compile(r"(市财政|区财政|省财政|县财政|中央财政|市和区财政)")
# "对首次获批的国家高新技术企业…给予30—50万元奖励": the beneficiary is the 对… phrase before the amount,
# within the same sentence (policy sentences end at 。 or ；, commas stay inside).
_BENEFICIARY = re.compile(r"对(?:于)?([^，,。；;对]{2,50}?)(?=[，,]|给予|按照|按|分别|一次性|在市财政|市财政|区财政|$)")
# How far back a beneficiary is looked for: a clause is at most this long (chunk's max_chars), so
# the window changes nothing for clauses and keeps one long run-on text from being rescanned per amount.
_BENEFICIARY_WINDOW = 600
# Thresholds a beneficiary must reach: "节能量在1000吨标准煤以上的", "研发投入占销售收入比重达到5%以上".
_CONDITION = re.compile(r"[\u4e00-\u9fff]{1,12}(?:在|达到?|超过|不低于|小于|大于)\s*\d[\d.]*\s*[\u4e00-\u9fff%％]{0,6}(?:[（(]含[)）])?(?:以上|以下)?的?")


class _Spans:
    """Non-overlapping character spans already taken by a fact, sorted, with a log-time overlap test."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def free(self, s: int, e: int) -> bool:
        i = bisect.bisect_right(self.starts, s)
        if i > 0 and self.ends[i - 1] > s:
            return False
        return i >= len(self.starts) or self.starts[i] >= e

    def take(self, s: int, e: int) -> None:
        i = bisect.bisect_right(self.starts, s)
        self.starts.insert(i, s)
        self.ends.insert(i, e)


def cn_number(numeral: str, unit: str) -> float | None:
    """The value of a Chinese numeral in `unit` (元/万元/亿元): 二十 万元 → 20, 三亿五千 万元 → 35000,
    一点五 万元 → 1.5; None when it is no number cn2an can read."""
    import cn2an  # lazily: only documents with Chinese-numeral amounts need it

    suffix, scale = _CN_SCALE[unit]
    try:
        if suffix and not numeral.endswith(suffix):
            try:
                return cn2an.cn2an(numeral + suffix, "normal") / scale  # 三亿五千 + 万 read as one number
            except ValueError:
                return float(cn2an.cn2an(numeral, "normal"))  # 一点五 (万元)
        return cn2an.cn2an(numeral, "normal") / scale
    except ValueError:
        return None


def extract(text: str) -> tuple[Fact, ...]:
    """All amounts (with payer and beneficiary), percentages, counts, ratios and threshold conditions a clause states."""
    found: list[tuple[int, Fact]] = []
    taken = _Spans()

    for kind, pattern in (("ratio", _RATIO), ("amount", _AMOUNT), ("cn_amount", _CN_AMOUNT), ("percent", _PERCENT), ("count", _COUNT)):
        for m in pattern.finditer(text):
            if not taken.free(m.start(), m.end()):
                continue
            if kind == "count" and _looks_like_year(text, m):
                continue
            if kind == "ratio":
                taken.take(m.start(), m.end())
                found.append((m.start(), Fact(kind="ratio", text=m.group(0))))
                continue
            end, per = m.end(), ""
            if kind in ("amount", "cn_amount"):
                p = _PER.match(text, end)
                if p:
                    end, per = p.end(), p.group("per")
            if kind == "cn_amount":
                unit = m.group("unit")
                if unit == "元" and not any(ch in "十百千万亿" for ch in m.group("low")):
                    continue  # 一元, 统一元…: a bare digit before 元 is rarely an amount
                low = cn_number(m.group("low"), unit)
                high = cn_number(m.group("high"), unit) if m.group("high") else low
                if low is None or high is None:
                    continue
            else:
                low = float(m.group("low"))
                high = float(m.group("high")) if m.group("high") else low
            taken.take(m.start(), end)
            fact_kind = "amount" if kind == "cn_amount" else kind
            unit = m.group("unit") + (f"/{per}" if per else "")
            payer = beneficiary = ""
            if fact_kind == "amount":
                payers = _PAYER.findall(text[max(0, m.start() - 20) : m.start()])
                payer = payers[-1] if payers else ""
                beneficiary = beneficiary_before(text, m.start())
            found.append((m.start(), Fact(kind=fact_kind, text=text[m.start():end].strip(), unit=unit, low=low, high=high, payer=payer, beneficiary=beneficiary)))
    for m in _CONDITION.finditer(text):
        found.append((m.start(), Fact(kind="condition", text=m.group(0).strip())))
    return tuple(f for _, f in sorted(found, key=lambda x: x[0]))


def beneficiary_before(text: str, start: int) -> str:
    """The 对… phrase naming who receives what is stated at `start`, in the same sentence ("" when none)."""
    window_start = max(0, start - _BENEFICIARY_WINDOW)
    sentence_start = max(text.rfind(p, window_start, start) for p in "。；;\n") + 1
    sentence_start = max(sentence_start, window_start)
    matches = list(_BENEFICIARY.finditer(text, sentence_start, start))
    return matches[-1].group(1).strip() if matches else ""


def _looks_like_year(text: str, m: re.Match) -> bool:
    return len(m.group("low")) == 4 and text[m.end() - 1 : m.end()] != "家" and m.group("low").startswith(("19", "20"))


def attach_facts(clause: Clause) -> Clause:
    """The clause with its extracted facts."""
    return replace(clause, facts=extract(clause.text))
