"""Question stage: what kind of answer a question asks for (amount, count, department, date …).

The words that ask are data (data/intents.tsv); the grammar around 多少 is here. Read by the answer
stage (which sentence to quote, which fact leads), the answer's layout and the learned re-ranker
(whether a clause states the kind of figure asked), so the three agree on what was asked.
"""

from __future__ import annotations

import re

from assistant.text import normalize
from assistant.vocab import read_table

# what a question asks for (amount, count, department …) and the words that ask it: data/intents.tsv
INTENT_WORDS: dict[str, tuple[str, ...]] = {k: tuple(v.split()) for k, v in read_table("intents.tsv").items()}

# "什么时候" or "哪个文件" ask about the document itself only with a word of issuing; "有效期至什么时候"
# or "根据什么文件" ask about the text and are answered from it.
_ISSUING = re.compile(r"印发|发布|出台|下发|发文|文号|转发|公布|颁布|《")

# what follows 多少: a classifier (a count), money (an amount), or another noun (a quantity)
_HOW_MANY = re.compile(r"多少\s*(?:([所条起幅份批名位户台辆张套家个项件人次吨])|(钱|万|元|资金|奖金|经费|费用)|([\u4e00-\u9fff]))")
# Spoken questions ask an amount with a one-character grant verb before 多少 ("能奖多少", "补多少",
# "返多少"), which the grant words (奖励, 补助 …) do not match.
_GRANT_HOW_MUCH = re.compile(r"[奖补贴返]\s*(?:能|可|可以|给|了)?\s*多少")


# a question asking region by region ("各区…", "哪些地区…", "分别…"): these words ask how to answer, not about what
ACROSS_REGIONS = re.compile(r"各区|各地|哪些区|哪些地区|各个区|分别|比较|对比|不同地区")


# what answers a contact question (咨询电话是多少, 打哪个热线): a number to dial, an address to visit online
CONTACT = re.compile(
    r"\d{3,4}\s*[-－—]\s*\d{7,8}"  # 0523-86391105
    r"|(?<!\d)1[3-9]\d{9}(?!\d)"  # a mobile number
    r"|(?<!\d)[48]00\s*[-－—]?\s*\d{3}\s*[-－—]?\s*\d{4}(?!\d)"  # 400-649-1366
    r"|(?:电话|热线|专线|拨打|联系方式)[^。；;\n]{0,12}?(?<!\d)\d{5,8}(?!\d)"  # 12366, 86512345 after its label
    r"|(?<!\d)\d{5,8}(?!\d)[^。；;，,\n\d]{0,8}?(?:热线|专线|电话)"  # … or before it (12366纳税服务热线)
    r"|https?://\S+|www\.\S+|[A-Za-z0-9_.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)


def asks_every_region(question: str) -> bool:
    """True for "各区…", "哪些地区…", "分别…": a question that wants one line per region."""
    return bool(ACROSS_REGIONS.search(normalize(question)))


def asked(question: str) -> set[str]:
    """Every kind of answer the question's words ask for, a date of the text included
    ("什么时候截止"): what a clause that answers it would state."""
    q = normalize(question)
    found = {name for name, words in INTENT_WORDS.items() if any(w in q for w in words)}
    if "多少" in q and not found & {"amount", "count"}:
        how = _HOW_MANY.search(q)
        if how and how.group(1):
            found.add("count")  # 多少家, 多少所: counted in that unit
        elif (how and how.group(2)) or "grant" in found or _GRANT_HOW_MUCH.search(q):
            found.add("amount")  # 多少资金, 奖励多少
        elif how and how.group(3):
            found.add("count")  # 调用了多少物资: a quantity; "热线是多少" asks for neither
    return found


def intents(question: str) -> set[str]:
    """What kind of answer a question asks for: amount (how much), grant (a benefit), count, department,
    place, condition, contact (a number or address), and doc_number or date of the document itself
    (only with a word of issuing)."""
    found = asked(question)
    if not _ISSUING.search(normalize(question)):
        found -= {"doc_number", "date"}
    return found


def asks_date(question: str) -> bool:
    """Whether the question's words ask a date or time, of the document or of its text."""
    return "date" in asked(question)
