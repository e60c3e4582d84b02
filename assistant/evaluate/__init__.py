"""Evaluation stage: retrieval quality per mode, answer accuracy, citations, refusals and latency on a test set.

Split by job, each module importing only those above it in this list:
- `metrics`: pure functions (recall@k, MRR, nDCG, the quote and span rules, facts, citations, refusals, percentiles);
- `items`: the question set (seed and span items, gold-quote labelling, the query of a conversation);
- `cache` and `baselines`: the embedding caches, and the common recipe (500/50 windows, `NaiveIndex`), which bench times too;
- `sources`: the documents and the index a run searches (the service's, a cached one, in-memory, a Milvus copy);
- `report`: summaries, tables, plots, report.json / report.md;
- `run`: `evaluate()`; `command`: the `eval` CLI.

This face re-exports the names callers use, so `from assistant import evaluate as ev; ev.recall_at_k(…)` and
`assistant.evaluate.cli` keep working.
"""

from assistant.evaluate.baselines import NaiveIndex, windows
from assistant.evaluate.cache import CachedEmbedder, cached_encode
from assistant.evaluate.command import cli
from assistant.evaluate.items import is_span_item, load_questions, query_of, relevant_clauses
from assistant.evaluate.metrics import (
    KS,
    answer_contains,
    by_tag,
    citation_precision,
    citation_recall,
    fact_accuracy,
    mean,
    mrr_at_k,
    ndcg_at_k,
    percentile,
    quote_ranking,
    quote_scores,
    recall_at_k,
    refusal_scores,
    span_found,
    span_hits,
    span_norm,
    span_rank,
    upper_median,
)
from assistant.evaluate.report import span_line, span_misses, span_table, summarize, summarize_span, table, write_report
from assistant.evaluate.run import MODES, evaluate
from assistant.evaluate.sources import (
    DEFAULT_CACHE,
    cache_dir_for,
    cached_index,
    copy_to_milvus,
    corpus_fingerprint,
    documents_from,
    throwaway_index,
)

__all__ = [
    "DEFAULT_CACHE", "KS", "MODES", "CachedEmbedder", "NaiveIndex", "answer_contains", "by_tag", "cache_dir_for",
    "cached_encode", "cached_index", "citation_precision", "citation_recall", "cli", "copy_to_milvus",
    "corpus_fingerprint", "documents_from", "evaluate", "fact_accuracy", "is_span_item", "load_questions", "mean",
    "mrr_at_k", "ndcg_at_k", "percentile", "query_of", "quote_ranking", "quote_scores", "recall_at_k",
    "refusal_scores", "relevant_clauses", "span_found", "span_hits", "span_line", "span_misses", "span_norm",
    "span_rank", "span_table", "summarize", "summarize_span", "table", "throwaway_index", "upper_median",
    "windows", "write_report",
]
