"""Curated answers, the match: is a user's question a staff-written question, or a close paraphrase of it?

Below curated.py (which serves the answer) and above text/answer/vocab. Two signals and two guards:
- dense: the cosine of the assistant's own embeddings of the two questions;
- lexical: the mean of the Dice overlap of their character bigrams and of their content tokens
  (one tokenize(), aliases mapped: 高企 and 高新技术企业 are one token);
- guards: the places they name must agree (one's places contain the other's: 海淀区 vs 北京市海淀区),
  and so must their numbers (2018年 vs 2019年) and the enterprise types, levels, listing venues and
  topics they name (data/: 省级专精特新 vs 国家级小巨人). A question that breaks a guard is never served,
  whatever its score: the seed set asks the same thing of another region or year on purpose.

The score is weight * dense + (1 - weight) * lexical; a question is served when score >= threshold.
Weight and threshold are calibrated per embedding model (a cosine of m3e-small means nothing for
another model) by scripts/calibrate_curated.py, which writes data/curated.json; see eval/curated.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from assistant.text import match_form, normalize, tokenize

FILE = "curated.json"
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DROP = re.compile(r"[\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Rule:
    """When a paraphrase is close enough: score = weight*dense + (1-weight)*lexical >= threshold."""

    weight: float = 0.5
    threshold: float = 0.85  # uncalibrated fallback: strict (only near-verbatim questions pass)
    calibrated: bool = False


@lru_cache(maxsize=1)
def _table() -> dict:
    from assistant.calibration import models_in  # the per-model record reader calibration and the re-ranker use

    return models_in(FILE)


def rule_for(model: str) -> Rule:
    """The calibrated rule of an embedder (by name), else the strict fallback."""
    record = _table().get(model)
    if not record:
        return Rule()
    return Rule(float(record["weight"]), float(record["threshold"]), True)


@dataclass(frozen=True)
class Form:
    """What the signals compare of one question (computed once per question)."""

    bigrams: frozenset
    tokens: frozenset
    places: frozenset
    numbers: frozenset
    terms: frozenset
    text: str = ""  # aliased, lower case, punctuation dropped


def form_of(question: str, regions: Sequence[str] = ()) -> Form:
    """The comparable form of a question: bigrams and tokens of its aliased text, its places and numbers."""
    from assistant.answer import places_named
    from assistant.vocab import short_place

    text = _DROP.sub("", match_form(question))
    bigrams = frozenset(text[i:i + 2] for i in range(len(text) - 1)) or frozenset([text])
    places = frozenset(short_place(p) for p in places_named(question, list(regions)))
    numbers = frozenset(_NUMBER.findall(normalize(question)))
    terms = frozenset(t for t in _terms() if t in text)
    return Form(bigrams, frozenset(tokenize(question)), places, numbers, terms, text)


_LEVELS = ("国家级", "省级", "市级", "区级")


@lru_cache(maxsize=1)
def _terms() -> tuple[str, ...]:
    # the words whose change makes another question of an otherwise identical sentence
    from assistant.text import expand_aliases
    from assistant.vocab import words

    from assistant.vocab import read_table

    found = [expand_aliases(t).lower() for name in ("enterprise_types.txt", "listing_venues.txt", "topics.txt")
             for t in words(name)]
    found += [wording.lower() for wording in read_table("industries.tsv")]
    return tuple(dict.fromkeys(_DROP.sub("", t) for t in (*found, *_LEVELS) if _DROP.sub("", t)))


def _dice(a: frozenset, b: frozenset) -> float:
    return 2 * len(a & b) / (len(a) + len(b)) if a or b else 0.0


def lexical(a: Form, b: Form) -> float:
    """Character-bigram and token overlap (Dice), averaged."""
    return (_dice(a.bigrams, b.bigrams) + _dice(a.tokens, b.tokens)) / 2


def compatible(a: Form, b: Form) -> bool:
    """The guards: the same numbers and terms, and places one of which contains the other (none with none)."""
    if a.numbers != b.numbers or a.terms != b.terms:
        return False
    if bool(a.places) != bool(b.places):
        return False
    return a.places <= b.places or b.places <= a.places


def score(dense: float, lex: float, rule: Rule) -> float:
    """The combined score the threshold applies to."""
    return rule.weight * dense + (1 - rule.weight) * lex


def cosines(query_vec: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine of one (normalised) query vector against rows of normalised vectors."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.float32)
    q = query_vec / (np.linalg.norm(query_vec) or 1.0)
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    return (vectors @ q) / norms


@dataclass(frozen=True)
class Candidate:
    """One curated question's match against a user's question."""

    key: object
    score: float
    dense: float
    lexical: float
    compatible: bool


def best_match(question: str, keys: Sequence, questions: Sequence[str], vectors: np.ndarray, query_vec: np.ndarray,
               rule: Rule, regions: Sequence[str] = ()) -> Candidate | None:
    """The best-scoring compatible curated question at or over the threshold (None: serve retrieval)."""
    if not questions:
        return None
    q = form_of(question, regions)
    dense = cosines(query_vec, vectors)
    best = None
    for key, text, d in zip(keys, questions, dense):
        f = form_of(text, regions)
        lex = lexical(q, f)
        c = Candidate(key, score(float(d), lex, rule), float(d), lex, compatible(q, f))
        if c.compatible and c.score >= rule.threshold and (best is None or c.score > best.score):
            best = c
    return best
