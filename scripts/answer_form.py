"""The issue-22 answer-form table of one or more eval reports (report.json of `assistant eval`), side by side.

    python -m scripts.answer_form /tmp/before/report.json /tmp/after/report.json

Span items that were answered (not refused) are measured (a question asks for an amount when its gold
span states one); `answer_contains` and `refused` are over all span items.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from assistant.quotes import AMOUNT_UNIT
from assistant.text import normalize
from assistant.evaluate.metrics import answer_form

ROWS = [
    ("answer_contains", "gold span in the answer (all span items)"),
    ("refused", "refused (all span items)"),
    ("answers", "answered questions"),
    ("chars_p50", "median answer chars"),
    ("chars_p90", "90th percentile answer chars"),
    ("header_chars_in_median", "header chars in the median answer"),
    ("header_chars_mean", "header chars per answer (mean)"),
    ("repeat_header", "answers repeating one document's header"),
    ("near_identical", "answers quoting near-identical statements (5-gram Jaccard ≥ 0.5)"),
    ("unasked_no_amount", "non-amount answers carrying （未规定金额）"),
    ("scraps", "answers with whitespace runs ≥ 3 or a dangling 附件："),
    ("validity_line", "answers ending in a validity line"),
    ("validity_line_chars_mean", "chars of that validity line (mean)"),
]


def table_of(path: Path) -> dict:
    """The answer-form numbers of one report."""
    items = [i for i in json.loads(path.read_text(encoding="utf-8"))["items"] if i.get("kind") == "span"]
    answered = [i for i in items if not i["refused"]]
    # a question asks for an amount when its expected answer states one (a figure in 元, 万元, 亿元 or %)
    asks = [bool(AMOUNT_UNIT.search(normalize(i["gold"]))) for i in answered]
    out = answer_form([i["answer"] for i in answered], asks)
    out["answer_contains"] = sum(i["answer_contains"] for i in items) / len(items)
    out["refused"] = sum(i["refused"] for i in items) / len(items)
    return out


def main(paths: list[str]) -> None:
    tables = [table_of(Path(p)) for p in paths]
    print("| measure | " + " | ".join(Path(p).parent.name for p in paths) + " |")
    print("|---|" + "---|" * len(paths))
    for key, label in ROWS:
        cells = [t[key] for t in tables]
        print(f"| {label} | " + " | ".join(f"{c:.3f}" if isinstance(c, float) and c < 1 else (f"{c:.0f}" if isinstance(c, float) else str(c)) for c in cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
