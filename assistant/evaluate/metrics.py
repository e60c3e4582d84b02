"""Evaluation stage, metrics: pure functions, numbers in and numbers out, no I/O.

Ranking metrics over ranked ids (recall@k, MRR, nDCG), the quote and span rules that turn ranked passage
texts into hits, answer metrics (facts, citations, refusals) and the aggregates (percentile, mean, per tag).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import defaultdict
from typing import Hashable, Iterable, Sequence

from assistant.quotes import ngram_jaccard
from assistant.text import compact

KS = (1, 3, 5, 10)


# -- retrieval metrics --------------------------------------------------------------------------
def recall_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """Fraction of relevant items found in the top k."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[:k])) / len(relevant)


def mrr_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int = 10) -> float:
    """Reciprocal rank of the first relevant item within the top k (0 when none)."""
    relevant = set(relevant)
    for i, item in enumerate(ranked[:k], 1):
        if item in relevant:
            return 1.0 / i
    return 0.0


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int = 10) -> float:
    """nDCG with binary gains; a relevant item counts once, at its first rank."""
    relevant = set(relevant)
    if not relevant:
        return 0.0
    seen: set = set()
    dcg = 0.0
    for i, item in enumerate(ranked[:k], 1):
        if item in relevant and item not in seen:
            seen.add(item)
            dcg += 1.0 / math.log2(i + 1)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def quote_ranking(passages: Sequence[str], quotes: Sequence[str]) -> list[Hashable]:
    """Map ranked passage texts to the index of the first gold quote each newly contains, else a miss token.

    Comparing compacted text lets clause-based and fixed-window modes be scored on the same footing.
    """
    wanted = [compact(q) for q in quotes]
    found: set[int] = set()
    out: list[Hashable] = []
    for r, text in enumerate(passages):
        body = compact(text)
        label: Hashable = ("miss", r)
        for qi, q in enumerate(wanted):
            if q and q in body and qi not in found:
                found.add(qi)
                label = qi
                break
        else:
            # a passage repeating an already found quote still counts as a hit for MRR purposes
            for qi, q in enumerate(wanted):
                if q and q in body:
                    label = ("again", qi)
                    break
        out.append(label)
    return out


def quote_scores(ranked: Sequence[Hashable], n_quotes: int, ks: Sequence[int] = KS) -> dict[str, float]:
    """recall@k, MRR@10 and nDCG@10 of a quote ranking (see quote_ranking) against its `n_quotes` gold quotes;
    for MRR a passage repeating an already found quote is a hit too."""
    gold = set(range(n_quotes))
    hitlike = [r if isinstance(r, int) else (r[1] if r[0] == "again" else r) for r in ranked]
    m = {f"recall@{k}": recall_at_k(ranked, gold, k) for k in ks}
    m["mrr@10"] = mrr_at_k(hitlike, gold, 10)
    m["ndcg@10"] = ndcg_at_k(ranked, gold, 10)
    return m


# -- span scoring (the rule of ../shared/extdata/score_http.py, copied: that script lives outside) --------------
_SPACES = re.compile(r"\s+")
_DASHES = re.compile(r"[—–－~～‐‑‒―至到]+")


def span_norm(s: str | None) -> str:
    """NFKC, whitespace removed, dashes/至/到 as "-", curly double quotes and 〔〕 as ASCII: score_http's `norm`."""
    s = unicodedata.normalize("NFKC", s or "")
    s = _SPACES.sub("", s)
    s = _DASHES.sub("-", s)
    return s.replace("“", '"').replace("”", '"').replace("〔", "[").replace("〕", "]")


def span_found(gold: str, text: str) -> bool:
    """Whether normalised `text` holds normalised `gold`; a gold over 60 characters counts by any 30-char run (step 5)."""
    if len(gold) <= 60:
        return gold in text
    return any(gold[i : i + 30] in text for i in range(0, len(gold) - 29, 5))


def span_rank(passages: Sequence[str], gold: str) -> int | None:
    """0-based rank of the first passage containing the gold span (both normalised here), None when none does."""
    g = span_norm(gold)
    for i, p in enumerate(passages):
        if span_found(g, span_norm(p)):
            return i
    return None


def answer_contains(answer: str, gold: str, refused: bool) -> bool:
    """A non-refused answer whose text contains the gold span; a refusal never does."""
    return not refused and span_found(span_norm(gold), span_norm(answer))


def span_hits(ranks: Sequence[int | None], ks: Sequence[int] = KS) -> dict[str, float | None]:
    """hit@k (first gold passage within the top k) and MRR@10 over 0-based first ranks; None for no questions."""
    n = len(ranks)
    out: dict[str, float | None] = {f"hit@{k}": (sum(1 for r in ranks if r is not None and r < k) / n if n else None) for k in ks}
    out["mrr@10"] = sum(1 / (r + 1) for r in ranks if r is not None and r < 10) / n if n else None
    return out


def upper_median(values: Sequence[float]) -> float | None:
    """sorted(values)[n // 2], the median score_http reports for answer length; None for no values."""
    return sorted(values)[len(values) // 2] if values else None


# -- answer metrics ---------------------------------------------------------------------------------
def fact_accuracy(answer: str, facts: Sequence[str]) -> float:
    """Fraction of facts the answer contains (NFKC, whitespace removed on both sides); 1.0 with no facts."""
    if not facts:
        return 1.0
    body = compact(answer)
    return sum(1 for f in facts if compact(f) in body) / len(facts)


def citation_precision(cited: Iterable[str], relevant: Iterable[str]) -> float | None:
    """Cited clauses that are relevant / cited clauses (None when nothing is cited)."""
    cited = set(cited)
    if not cited:
        return None
    return len(cited & set(relevant)) / len(cited)


def citation_recall(cited: Iterable[str], relevant: Iterable[str]) -> float | None:
    """Relevant clauses cited / relevant clauses (None when nothing is relevant)."""
    relevant = set(relevant)
    if not relevant:
        return None
    return len(relevant & set(cited)) / len(relevant)


def refusal_scores(predicted: Sequence[bool], gold: Sequence[bool]) -> dict:
    """Precision and recall of refusing, treating `refuse` as the positive class."""
    tp = sum(1 for p, g in zip(predicted, gold) if p and g)
    fp = sum(1 for p, g in zip(predicted, gold) if p and not g)
    fn = sum(1 for p, g in zip(predicted, gold) if g and not p)
    return {
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile (p in 0..100); None for no values."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def mean(values: Iterable[float | None]) -> float | None:
    """Mean over the values that are not None."""
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def by_tag(rows: Sequence[dict], field: str) -> dict[str, float | None]:
    """Mean of rows[field] grouped by each row's tags."""
    groups: dict[str, list] = defaultdict(list)
    for row in rows:
        for tag in row.get("tags", []):
            groups[tag].append(row.get(field))
    return {tag: mean(vals) for tag, vals in sorted(groups.items())}



# -- answer form (issue 22: an answer reads like an answer) ------------------------------------------
# A source header as answers write it: 《title》, the region in （）, the section marker, then "：".
_HEADER = re.compile(r"《[^》\n]{1,200}》(?:（[^）\n]{1,40}）)?(?:等\d+份文件)?[^：\n《》\[\]]{0,24}：")
_MARKERS = re.compile(r"(?:\s*\[\d+\])+")
_LABEL = re.compile(r"^\s*[\d一二三四五六七八九十百（）()、.．第章条节]{1,16}：")  # a further section of a document's line
_WHITESPACE_RUN = re.compile(r"\s{3,}")
# an attachment list's label with nothing after it, at the end of a quoted statement
_DANGLING_ATTACHMENT = re.compile(r"附件\s*\d*\s*[：:]?\s*$")
_VALIDITY_LINE = re.compile(r"^(?:提示：|⚠)")
NEAR_IDENTICAL_JACCARD = 0.5  # the measure: two statements sharing half their character 5-grams


def answer_headers(answer: str) -> list[str]:
    """The 《title》（region）section： headers an answer's lines carry, in order."""
    return [m.group(0) for line in answer.splitlines() for m in _HEADER.finditer(line)]


def answer_statements(answer: str) -> list[str]:
    """The quoted statements of an answer: each run of text that ends in [n] markers, its header removed."""
    out = []
    for line in answer.splitlines():
        if _VALIDITY_LINE.match(line):
            continue
        pos = 0
        for m in _MARKERS.finditer(line):
            text = _LABEL.sub("", _HEADER.sub("", line[pos : m.start()])).strip(" ；;，,")
            if text:
                out.append(text)
            pos = m.end()
    return out


def repeats_statement(answer: str, threshold: float = NEAR_IDENTICAL_JACCARD) -> bool:
    """Whether two of an answer's statements are near-identical (5-gram Jaccard ≥ threshold)."""
    st = answer_statements(answer)
    return any(ngram_jaccard(st[i], st[j]) >= threshold for i in range(len(st)) for j in range(i + 1, len(st)))


def repeats_header(answer: str) -> bool:
    """Whether one document's 《title》 heads more than one statement of an answer."""
    titles = [h[: h.index("》") + 1] for h in answer_headers(answer)]
    return len(titles) != len(set(titles))


def has_scraps(answer: str) -> bool:
    """Whether an answer carries scraped whitespace runs (3 or more) or a statement ending in a bare 附件：."""
    if _WHITESPACE_RUN.search(answer):
        return True
    return any(_DANGLING_ATTACHMENT.search(s) for s in answer_statements(answer))


def answer_form(answers: Sequence[str], asks_amount: Sequence[bool]) -> dict:
    """The issue-22 table over answered (not refused) answers: length (upper median, p90), header chars in the
    median answer, and how many repeat a header, quote near-identical statements, carry （未规定金额） without
    being asked an amount, carry scraps, or end in a validity line."""
    n = len(answers)
    lengths = sorted(range(n), key=lambda i: len(answers[i]))
    median = answers[lengths[n // 2]] if n else ""
    return {
        "answers": n,
        "chars_p50": upper_median([len(a) for a in answers]),
        "chars_p90": percentile([len(a) for a in answers], 90),
        "header_chars_in_median": sum(len(h) for h in answer_headers(median)),
        "header_chars_mean": mean([sum(len(h) for h in answer_headers(a)) for a in answers]),
        "repeat_header": sum(repeats_header(a) for a in answers),
        "near_identical": sum(repeats_statement(a) for a in answers),
        "unasked_no_amount": sum("（未规定金额）" in a and not amt for a, amt in zip(answers, asks_amount)),
        "scraps": sum(has_scraps(a) for a in answers),
        "validity_line": sum(bool(a.splitlines()) and bool(_VALIDITY_LINE.match(a.splitlines()[-1])) for a in answers),
        "validity_line_chars_mean": mean([len(a.splitlines()[-1]) for a in answers if a.splitlines() and _VALIDITY_LINE.match(a.splitlines()[-1])]),
    }
