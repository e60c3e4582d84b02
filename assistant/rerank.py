"""Retrieve stage, the learned re-rank: features of each clause at the head of the fused list, and the
linear model that orders them.

Rank fusion knows only two ranks. What else says a clause answers — how much of the question, weighted
by rarity, its text, its best sentence, its heading path and its document title hold; whether it
concerns the place the question names (a place inside an institution's name, 上海证券交易所, does not
count); where it sits in its document; whether it is a preamble, a table row or the tail of a split
clause; its length — is read here for the few clauses of the head, each clause's part computed once
and cached by the retriever. A linear model over these features, trained by
`python -m assistant train-reranker` (assistant/evaluate/rerank_train.py) with cross-validation over
the seed test set and the outside dev set, is stored per embedding model in data/reranker.json, like
the calibration. Scoring is one dot product per clause: numpy only, no model library at run time.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from assistant.intents import asked
from assistant.text import match_form, normalize, split_sentences, weighted_coverage
from assistant.vocab import blank_not_places, gazetteer, short_place

FILE = "reranker.json"

# the features, in the order of a model's coefficients; a model names the ones it was trained on
FEATURES = (
    "fused",  # fused score over the head's best (rank fusion, the lexical and dense ranks' mix)
    "fused_rank",  # 1 / fused rank
    "dense",  # cosine to the question (the dense list's last cosine when the clause is not in it)
    "dense_gap",  # cosine minus the head's best cosine
    "dense_rank",  # 1 / dense rank (0: not in the dense list)
    "lexical",  # BM25 over the head's best BM25 (0: not in the lexical list)
    "lexical_rank",  # 1 / lexical rank (0: not in the lexical list)
    "cover_clause",  # rarity-weighted question coverage of title, heading path and text together
    "cover_sentence",  # … of the clause's best sentence
    "cover_section",  # … of its heading path (二、税收优惠 answers a tax question)
    "cover_title",  # … of its document title
    "cover_text",  # … of its own text
    "cover_clause_gap",  # cover_clause minus the head's best
    "cover_sentence_gap",  # cover_sentence minus the head's best
    "place_match",  # the question names a place and the clause concerns it
    "place_miss",  # the question names a place and the clause concerns none of them
    "position",  # ordinal over the document's last ordinal (0: first clause)
    "preamble",  # the text before a document's first numbered heading (addressees, 现将…通知如下)
    "table_row",  # one row of a flattened table
    "continuation",  # the second or later piece of a clause split for length
    "length",  # log of the text length
    "bigrams",  # share of the question's adjacent token pairs found as one phrase in the clause
    "chars",  # share of the question's character pairs found in the clause (tokenizer-independent)
    "doc_share",  # share of the head that comes from the clause's document
    "doc_best",  # 1 / the best fused rank of any clause of its document in the head
    "answer_type",  # the question asks an amount, count or date and the clause states one
    "answer_type_missing",  # … and the clause states none
)

_SPLIT_PIECE = re.compile(r"~\d+$")
# what a clause states, for the question's intents (assistant/intents.py) that ask for a figure
_STATES = {
    "amount": re.compile(r"\d[\d.,]*\s*(?:万元|亿元|千元|元|%|％)|[一二三四五六七八九十百千万]+(?:万元|元)"),
    "count": re.compile(r"\d+\s*(?:家|个|项|人|所|次|批|户|名)"),
    "date": re.compile(r"\d{4}年|\d{1,2}月\d{1,2}日|\d{4}[-/.]\d{1,2}"),
}


@dataclass(frozen=True)
class ClauseForm:
    """A clause as the re-rank reads it: match forms of its parts and its fixed features."""

    whole: str  # title, heading path and text
    text: str
    section: str
    title: str
    sentences: tuple[str, ...]
    where: str  # region, title and text with institution names blanked: where a place is looked for
    doc: str
    states: frozenset  # the figures the clause states (keys of _STATES)
    position: float
    preamble: float
    table_row: float
    continuation: float
    length: float


def clause_form(clause, last_ordinal: int) -> ClauseForm:
    """The form of one clause (`last_ordinal`: the largest ordinal of its document)."""
    return ClauseForm(
        whole=match_form(clause.index_text()),
        text=match_form(clause.text),
        section=match_form(clause.section),
        title=match_form(clause.doc_title),
        sentences=tuple(match_form(s) for s in split_sentences(clause.text)),
        where=f"{clause.region} {blank_not_places(normalize(clause.doc_title))} {blank_not_places(normalize(clause.text))}",
        doc=clause.doc_id,
        states=frozenset(k for k, rx in _STATES.items() if rx.search(normalize(clause.text))),
        position=clause.ordinal / last_ordinal if last_ordinal > 0 else 0.0,
        preamble=float(clause.section == "前言" or "#前言" in clause.clause_id),
        table_row=float("#表" in clause.clause_id),
        continuation=float(bool(_SPLIT_PIECE.search(clause.clause_id))),
        length=math.log1p(len(clause.text)),
    )


@dataclass(frozen=True)
class Question:
    """What the features need of a question, read once per search."""

    weights: dict  # content token → rarity weight (text.token_weights)
    places: tuple  # the places it names, each as its forms
    bigrams: tuple[str, ...]  # adjacent content tokens joined (a phrase to find whole)
    chars: tuple[str, ...]  # its character pairs (CJK and digits)
    asks: frozenset  # the intents asking for a figure (amount, count, date)


def read_question(query: str, weights: dict[str, float]) -> Question:
    """The question as the features read it (`weights`: its token weights)."""
    from assistant.text import tokenize

    toks = [t for t in tokenize(query) if len(t) > 1 or t.isdigit()]
    bigrams = tuple(dict.fromkeys(a + b for a, b in zip(toks, toks[1:])))
    q = match_form(query)
    runs = re.findall(r"[\u4e00-\u9fff0-9a-z]+", q)
    chars = tuple(dict.fromkeys(r[i:i + 2] for r in runs for i in range(len(r) - 1)))
    asks = frozenset(asked(query) & _STATES.keys())
    return Question(weights, query_places(query), bigrams, chars, asks)


def query_places(query: str) -> tuple[tuple[str, ...], ...]:
    """The places a question names (gazetteer names outside institution names), each as its forms
    (江西省, 江西)."""
    found = gazetteer().find(normalize(query))
    return tuple(dict.fromkeys(tuple(dict.fromkeys((name, short_place(name)))) for _, _, name in found))


@dataclass(frozen=True)
class Candidate:
    """One clause of the fused head with what the searches said of it."""

    form: ClauseForm
    fused: float
    dense: float | None  # cosine, None when not in the dense list
    dense_rank: int | None
    lexical: float | None
    lexical_rank: int | None


def features(question: Question, head: list[Candidate], dense_floor: float) -> np.ndarray:
    """The feature matrix of a head (rows in head order, columns in FEATURES order);
    `dense_floor`: the last cosine of the dense list."""
    weights, places = question.weights, question.places
    n = len(head)
    x = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return x
    top_fused = max(c.fused for c in head) or 1.0
    cosines = [c.dense if c.dense is not None else dense_floor for c in head]
    top_dense = max(cosines)
    top_lexical = max((c.lexical or 0.0) for c in head) or 1.0
    docs = [c.form.doc for c in head]
    first_of_doc: dict[str, int] = {}
    for i, d in enumerate(docs):
        first_of_doc.setdefault(d, i + 1)
    for i, c in enumerate(head):
        f = c.form
        best = max((weighted_coverage(weights, s) for s in f.sentences), default=0.0)
        concerned = [any(form in f.where for form in forms) for forms in places]
        x[i, :12] = (
            c.fused / top_fused,
            1.0 / (i + 1),
            cosines[i],
            cosines[i] - top_dense,
            1.0 / c.dense_rank if c.dense_rank else 0.0,
            (c.lexical or 0.0) / top_lexical,
            1.0 / c.lexical_rank if c.lexical_rank else 0.0,
            weighted_coverage(weights, f.whole),
            best,
            weighted_coverage(weights, f.section),
            weighted_coverage(weights, f.title),
            weighted_coverage(weights, f.text),
        )
        x[i, 14:] = (
            float(bool(places) and any(concerned)),
            float(bool(places) and not any(concerned)),
            f.position,
            f.preamble,
            f.table_row,
            f.continuation,
            f.length,
            sum(b in f.whole for b in question.bigrams) / len(question.bigrams) if question.bigrams else 0.0,
            sum(b in f.whole for b in question.chars) / len(question.chars) if question.chars else 0.0,
            docs.count(f.doc) / n,
            1.0 / first_of_doc[f.doc],
            float(bool(question.asks & f.states)),
            float(bool(question.asks) and not question.asks & f.states),
        )
    x[:, 12] = x[:, 7] - x[:, 7].max()
    x[:, 13] = x[:, 8] - x[:, 8].max()
    return x


@dataclass(frozen=True)
class LinearRanker:
    """A linear scorer over standardised features: score = ((x - mean) / scale) · coef."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    depth: int  # how much of the fused list it orders (the depth it was trained at)

    def __post_init__(self):
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown or not (len(self.features) == len(self.mean) == len(self.scale) == len(self.coef)):
            raise ValueError(f"re-ranker record does not fit this code (unknown features {unknown} or lengths differ)")

    def score(self, x: np.ndarray) -> np.ndarray:
        """One score per row of a FEATURES matrix."""
        cols = [FEATURES.index(f) for f in self.features]
        z = (x[:, cols] - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.coef)

    @classmethod
    def from_record(cls, record: dict) -> "LinearRanker":
        return cls(tuple(record["features"]), tuple(record["mean"]), tuple(record["scale"]), tuple(record["coef"]),
                   int(record["depth"]))


@lru_cache(maxsize=1)
def table() -> dict[str, dict]:
    """Every model's re-ranker record from data/reranker.json ({} when the file is absent)."""
    from assistant.calibration import models_in

    return models_in(FILE)


def for_model(name: str) -> LinearRanker | None:
    """The re-ranker trained for an embedder name, or None (the retriever then re-ranks by coverage)."""
    record = table().get(name)
    return LinearRanker.from_record(record) if record else None
