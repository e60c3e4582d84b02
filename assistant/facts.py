"""Facts (part of the chunk → index stage): structured amounts, counts and ratios read from a
clause at build time and stored with it, so answers can quote and compare figures.

Policy text writes ranges with an em-dash ("30—50万元"), per-unit rates ("每吨标准煤给予240元"),
shares ("市和区财政各负担50%") and ratios ("2:2:4:2"); the text of a fact is kept exactly as written.
"""

from __future__ import annotations

import re
from dataclasses import replace

from assistant.schema import Clause, Fact

_NUM = r"\d+(?:\.\d+)?"
_AMOUNT = re.compile(rf"(?P<low>{_NUM})\s*(?:[—\-–~～至到]\s*(?P<high>{_NUM}))?\s*(?P<unit>亿元|万元|元)(?:\s*/\s*(?P<per>[\u4e00-\u9fa5]{{1,3}}))?")
_PERCENT = re.compile(rf"(?P<low>{_NUM})\s*(?:[—\-–~～至到]\s*(?P<high>{_NUM}))?\s*(?P<unit>%|％)")
_COUNT = re.compile(rf"(?P<low>{_NUM})\s*(?:[—\-–~～至到]\s*(?P<high>{_NUM}))?\s*(?P<unit>家|个|项|件|人|次|吨)")
_RATIO = re.compile(r"\d+(?:\s*[:：]\s*\d+){2,}")
_PAYER = re.compile(r"(市财政|区财政|省财政|县财政|中央财政|市和区财政)")
# "对首次获批的国家高新技术企业…给予30—50万元奖励": the beneficiary is the 对… phrase before the amount,
# within the same sentence (policy sentences end at 。 or ；, commas stay inside).
_BENEFICIARY = re.compile(r"对(?:于)?([^，,。；;对]{2,50}?)(?=[，,]|给予|按照|按|分别|一次性|在市财政|市财政|区财政|$)")
# Thresholds a beneficiary must reach: "节能量在1000吨标准煤以上的", "研发投入占销售收入比重达到5%以上".
_CONDITION = re.compile(r"[\u4e00-\u9fff]{1,12}(?:在|达到?|超过|不低于|小于|大于)\s*\d[\d.]*\s*[\u4e00-\u9fff%％]{0,6}(?:[（(]含[)）])?(?:以上|以下)?的?")


def extract(text: str) -> tuple[Fact, ...]:
    """All amounts (with payer and beneficiary), percentages, counts, ratios and threshold conditions a clause states."""
    found: list[tuple[int, Fact]] = []
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b in taken)

    for kind, pattern in (("ratio", _RATIO), ("amount", _AMOUNT), ("percent", _PERCENT), ("count", _COUNT)):
        for m in pattern.finditer(text):
            if not free(m.start(), m.end()):
                continue
            if kind == "count" and _looks_like_year(text, m):
                continue
            taken.append((m.start(), m.end()))
            if kind == "ratio":
                found.append((m.start(), Fact(kind="ratio", text=m.group(0))))
                continue
            low = float(m.group("low"))
            high = float(m.group("high")) if m.group("high") else low
            unit = m.group("unit") + (f"/{m.group('per')}" if kind == "amount" and m.group("per") else "")
            payer = ""
            if kind == "amount":
                window = text[max(0, m.start() - 20) : m.start()]
                payers = _PAYER.findall(window)
                payer = payers[-1] if payers else ""
            beneficiary = _beneficiary(text, m.start()) if kind == "amount" else ""
            found.append((m.start(), Fact(kind=kind, text=m.group(0).strip(), unit=unit, low=low, high=high, payer=payer, beneficiary=beneficiary)))
    for m in _CONDITION.finditer(text):
        found.append((m.start(), Fact(kind="condition", text=m.group(0).strip())))
    return tuple(f for _, f in sorted(found, key=lambda x: x[0]))


def _beneficiary(text: str, start: int) -> str:
    sentence_start = max(text.rfind(p, 0, start) for p in "。；;\n") + 1
    matches = list(_BENEFICIARY.finditer(text[sentence_start:start]))
    return matches[-1].group(1).strip() if matches else ""


def _looks_like_year(text: str, m: re.Match) -> bool:
    return len(m.group("low")) == 4 and text[m.end() - 1 : m.end()] != "家" and m.group("low").startswith(("19", "20"))


def attach_facts(clause: Clause) -> Clause:
    """The clause with its extracted facts."""
    return replace(clause, facts=extract(clause.text))
