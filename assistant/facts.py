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


def extract(text: str) -> tuple[Fact, ...]:
    """All amounts, percentages, counts and ratios a clause states, in order of appearance."""
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
            found.append((m.start(), Fact(kind=kind, text=m.group(0).strip(), unit=unit, low=low, high=high, payer=payer)))
    return tuple(f for _, f in sorted(found, key=lambda x: x[0]))


def _looks_like_year(text: str, m: re.Match) -> bool:
    return len(m.group("low")) == 4 and text[m.end() - 1 : m.end()] != "家" and m.group("low").startswith(("19", "20"))


def attach_facts(clause: Clause) -> Clause:
    """The clause with its extracted facts."""
    return replace(clause, facts=extract(clause.text))
