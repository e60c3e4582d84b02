"""Calibration: the answer thresholds and ranking weights chosen for each embedding model.

The values are not typed in by hand: `python -m assistant calibrate` chooses them by a grid with
cross-validation over the seed test set and the outside dev set together, writes the table to
eval/calibration.md and the chosen values to data/calibration.json, keyed by the embedder's name
(a cosine threshold of m3e-small means nothing for another model). A model with no entry gets
DEFAULT, the documented fallback below, and the service logs that it runs uncalibrated.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from functools import lru_cache

log = logging.getLogger(__name__)

FILE = "calibration.json"


@dataclass(frozen=True)
class Thresholds:
    """When a question is answered (answer.compose) and how the fused ranking is re-weighted (retrieve)."""

    # a question is answered only when its best clause covers at least min_coverage of its content
    # words (idf-weighted), and, below weak_coverage, only when the nearest clause's cosine is at
    # least min_dense; the quoted sentence itself must cover min_quote_coverage of the asked subject
    min_coverage: float = 0.15
    weak_coverage: float = 0.6
    min_dense: float = 0.76
    min_quote_coverage: float = 0.1
    # which sentence of a clause is quoted: the question's words beside its question word (注重哪些方面,
    # 如何处置) name what is asked, and weigh this many times the others (1: no different)
    focus_weight: float = 1.0
    # fusion: weight of the dense ranking against the lexical one (1), and the re-rank of the fused
    # head by rarity-weighted question coverage of the clause and of its best sentence
    dense_weight: float = 0.5
    rerank_clause: float = 0.02
    rerank_sentence: float = 0.02

    def to_dict(self) -> dict:
        return asdict(self)


# The fallback for a model with no calibration: the values chosen for m3e-small before this command
# existed (a grid over both sets whose script was not kept); also what tests over the hash embedder use.
DEFAULT = Thresholds()

ANSWER_FIELDS = ("min_coverage", "weak_coverage", "min_dense", "min_quote_coverage", "focus_weight")
RANKING_FIELDS = ("dense_weight", "rerank_clause", "rerank_sentence")


def models_in(name: str) -> dict[str, dict]:
    """The per-model records of a JSON data file ({"models": {embedder name: record}}), {} when absent:
    the calibration here and the learned re-ranker (rerank.py) are both kept per embedding model."""
    from importlib import resources

    path = resources.files("assistant.data").joinpath(name)
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("models", {})


@lru_cache(maxsize=1)
def table() -> dict[str, dict]:
    """Every model's calibration record from data/calibration.json ({} when the file is absent)."""
    return models_in(FILE)


def for_model(name: str) -> tuple[Thresholds, bool]:
    """(the thresholds for an embedder name, whether they were calibrated for it)."""
    record = table().get(name)
    if record is None:
        return DEFAULT, False
    known = {f.name for f in fields(Thresholds)}
    return Thresholds(**{k: v for k, v in record.get("values", {}).items() if k in known}), True


@lru_cache(maxsize=None)
def _warn_once(name: str) -> None:
    log.warning("no calibration for embedding model %r in assistant/data/%s: using the documented defaults "
                "(run `python -m assistant calibrate` with this model)", name, FILE)


def thresholds_for(name: str, settings=None) -> Thresholds:
    """The thresholds for an embedder, with any ranking weight set explicitly in `settings`
    (ASSISTANT_DENSE_WEIGHT …, None when not set) winning over the calibrated one; an uncalibrated model is logged once."""
    values, calibrated = for_model(name)
    if not calibrated and not name.startswith("hash"):
        _warn_once(name)
    overrides = {f: getattr(settings, f) for f in RANKING_FIELDS if getattr(settings, f, None) is not None}
    return Thresholds(**{**values.to_dict(), **overrides}) if overrides else values
