"""Corpus stage, part: near-duplicate documents, found before chunking so that one text
republished several times is indexed, returned and cited once.

Policy libraries republish the same notice from several sites: in traditional characters, with
variant characters (馀额/余额), with different line breaks, spacing or punctuation, or with a
different header line. Texts are compared on a fingerprint (NFKC, traditional → simplified with
opencc, a variant table from `data/variants.tsv`, whitespace and punctuation dropped). Two
documents are near-duplicates when their fingerprints are equal or the Jaccard similarity of their
character 5-gram sets reaches THRESHOLD. Candidates come from prefix filtering (each set's rarest
shingles in an inverted index), which is exact for Jaccard, so no pair of documents is compared
unless it could reach the threshold; candidates are then verified with the exact Jaccard.
Pure functions over `Document`; opencc is imported here only, lazily.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant.schema import Document

SHINGLE = 5
# Checked on the outside library (../shared/extdata/ncp, 599 docs): its republished copies score
# 0.92–1.0 (the lowest: one copy adds an introductory paragraph, another a 文号 line); the most
# similar pairs that are not copies score 0.88 (two rewritten news reports of one press conference)
# and 0.83 (a press release, and a news article that adds an expert's comment), the rest ≤ 0.77.
# Short texts are the sensitive side: on a 170-character notice a 20-character header gives 0.89.
THRESHOLD = 0.9

_WHITESPACE = re.compile(r"\s+")
_ENTITY = re.compile(r"&(?:[a-zA-Z]{2,8}|#[0-9]{1,6}|#x[0-9a-fA-F]{1,6});?")  # scraper residue: &ensp; &nbsp;
_NOT_WORD = re.compile(r"[\W_]+")  # punctuation, symbols, marks, controls; keeps letters and digits
_lock = threading.Lock()
_converter = None


def _t2s(text: str) -> str:
    global _converter
    with _lock:
        if _converter is None:
            import opencc

            _converter = opencc.OpenCC("t2s")
    return _converter.convert(text)


@lru_cache(maxsize=1)
def _variants() -> dict[int, str]:
    from assistant.vocab import read_table

    return str.maketrans({k: v for k, v in read_table("variants.tsv").items() if len(k) == 1 and v})


def _normalise(text: str) -> tuple[str, bool]:
    """The fingerprint, and whether the text was already simplified (t2s and variants changed nothing)."""
    # Whitespace goes first: NFKC composes across neighbours, so noise inserted between a base and
    # a combining character would otherwise change the result.
    text = _ENTITY.sub("", unicodedata.normalize("NFKC", _WHITESPACE.sub("", text)))
    simplified = _t2s(text).translate(_variants())
    return _NOT_WORD.sub("", simplified.lower()), simplified == text


def fingerprint_text(text: str) -> str:
    """The form two texts are compared in: NFKC, simplified, variants unified, no whitespace or punctuation."""
    return _normalise(text)[0]


_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd, so multiplying mod 2**64 loses no bit of earlier characters


def _shingles(fp: str) -> np.ndarray:
    """The sorted distinct 64-bit hashes of the character 5-grams (one for a shorter text).

    A polynomial hash over code points, vectorised: deterministic across processes (unlike hash())."""
    codes = np.frombuffer(fp.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(codes) < SHINGLE:
        codes = np.concatenate([codes, np.zeros(SHINGLE - len(codes), dtype=np.uint64)])
    n = len(codes) - SHINGLE + 1
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(SHINGLE):
            h = h * _MULT + codes[j : j + n] + np.uint64(1)
    return np.unique(h)


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    # both sorted and distinct: a binary search of each of a in b counts the intersection
    at = np.minimum(np.searchsorted(b, a), len(b) - 1)
    inter = int(np.count_nonzero(b[at] == a))
    return inter / (len(a) + len(b) - inter)


def _similar_pairs(sets: list[np.ndarray], threshold: float) -> list[tuple[int, int, float]]:
    """Every pair (i < j) whose Jaccard reaches the threshold, with its similarity.

    Prefix filtering: order shingles rarest first (ties by value); two sets with Jaccard ≥ t
    share a shingle among the first |x| - ⌈t|x|⌉ + 1 of each, so only those are indexed."""
    if len(sets) < 2:
        return []
    every = np.concatenate(sets)
    values, counts = np.unique(every, return_counts=True)
    postings: dict[int, list[int]] = defaultdict(list)
    out = []
    for i, s in enumerate(sets):
        df = counts[np.searchsorted(values, s)]
        order = np.lexsort((s, df))  # rarest first, then by value: one global order
        prefix = len(s) - int(np.floor(threshold * len(s))) + 1  # ≥ the exact bound, so still exact
        tokens = s[order[:prefix]].tolist()
        candidates: set[int] = set()
        for token in tokens:
            candidates.update(postings[token])
        for j in sorted(candidates):
            small, large = sorted((len(sets[i]), len(sets[j])))
            if small >= threshold * large:  # length filter: Jaccard ≤ |small| / |large|
                sim = _jaccard(sets[j], s)
                if sim >= threshold:
                    out.append((j, i, sim))
        for token in tokens:
            postings[token].append(i)
    return sorted(out)


def _preference(doc: Document, simplified: bool, position: int) -> tuple:
    # A real title first: a copy whose title fell back to its file name cites badly. Region is not
    # counted: on the outside library the one copy with a region was a provincial bureau's
    # republication of a national guideline, and keeping it would hide the national text from
    # region-filtered questions about other places.
    real_title = bool(doc.title) and doc.title not in (doc.doc_id, Path(doc.source).stem)
    metadata = sum(1 for v in (doc.date, doc.doc_number, doc.issuer) if v)
    return (not real_title, -metadata, not simplified, position)


def similar_pairs(documents: Sequence[Document], threshold: float = THRESHOLD) -> list[tuple[int, int, float]]:
    """Every near-duplicate pair of documents as (index, index, Jaccard), equal fingerprints scoring 1."""
    fps = [fingerprint_text(d.text) for d in documents]
    return _pairs_of(fps, threshold)


def _pairs_of(fps: list[str], threshold: float) -> list[tuple[int, int, float]]:
    # Equal fingerprints are grouped first; one representative per fingerprint takes part in the
    # shingle comparison, and its matches hold for every copy.
    first: dict[str, int] = {}
    copies: dict[int, list[int]] = defaultdict(list)
    for i, fp in enumerate(fps):
        if fp:  # a text of punctuation only has nothing to compare
            copies[first.setdefault(fp, i)].append(i)
    reps = sorted(copies)
    pairs = [(a, b, 1.0) for r in reps for x, a in enumerate(copies[r]) for b in copies[r][x + 1 :]]
    for x, y, sim in _similar_pairs([_shingles(fps[r]) for r in reps], threshold):
        pairs.extend((min(a, b), max(a, b), sim) for a in copies[reps[x]] for b in copies[reps[y]])
    return sorted(pairs)


def duplicate_groups(documents: Sequence[Document], threshold: float = THRESHOLD) -> list[tuple[int, list[int]]]:
    """(kept index, indexes of its near-duplicates) for each group of two or more, by kept index.

    The kept copy is one with a real title (not its file name), then the most metadata (date, 文号,
    issuer), then one already in simplified characters, then the first in input order. Every dropped
    copy is a near-duplicate of its kept copy itself (no chaining through a third document)."""
    normalised = [_normalise(d.text) for d in documents]
    pairs = _pairs_of([fp for fp, _ in normalised], threshold)
    neighbours: dict[int, set[int]] = defaultdict(set)
    for i, j, _ in pairs:
        neighbours[i].add(j)
        neighbours[j].add(i)
    order = sorted(neighbours, key=lambda i: _preference(documents[i], normalised[i][1], i))
    assigned: set[int] = set()
    groups = []
    for i in order:
        if i in assigned:
            continue
        assigned.add(i)
        dups = sorted(j for j in neighbours[i] if j not in assigned)
        assigned.update(dups)
        if dups:
            groups.append((i, dups))
    return sorted(groups)


def find_duplicates(documents: Sequence[Document], threshold: float = THRESHOLD) -> dict[str, list[str]]:
    """Kept doc_id → the doc_ids of its near-duplicates (only documents that have some)."""
    return {
        documents[kept].doc_id: [documents[j].doc_id for j in dups]
        for kept, dups in duplicate_groups(documents, threshold)
    }
