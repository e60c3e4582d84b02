"""Evaluation stage: retrieval quality per mode, answer accuracy, citations, refusals and latency on a test set.

Metrics are pure functions over ranked ids; `evaluate()` runs every mode over one index (plus the naive
500/50-character baseline) and writes report.json, report.md and plots.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Hashable, Iterable, Sequence

from assistant.text import compact

KS = (1, 3, 5, 10)
MODES = ("bm25", "dense", "hybrid", "naive")


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


# -- labelling ----------------------------------------------------------------------------------------
def relevant_clauses(clauses: Sequence, quotes: Sequence[str]) -> list[str]:
    """Clause ids holding each gold quote; a quote spanning a clause split yields the clauses holding its parts."""
    out: list[str] = []
    by_doc: dict[str, list] = defaultdict(list)
    for c in clauses:
        by_doc[c.doc_id].append(c)
    for quote in quotes:
        q = compact(quote)
        if not q:
            continue
        hits = [c.clause_id for c in clauses if q in compact(c.text)]
        if not hits:
            hits = _spanning(by_doc, q)
        out.extend(h for h in hits if h not in out)
    return out


def _spanning(by_doc: dict, q: str) -> list[str]:
    for doc_clauses in by_doc.values():
        texts = [compact(c.text) for c in doc_clauses]
        joined = "".join(texts)
        pos = joined.find(q)
        if pos < 0:
            continue
        end, start, ids = pos + len(q), 0, []
        for c, t in zip(doc_clauses, texts):
            if start < end and start + len(t) > pos:
                ids.append(c.clause_id)
            start += len(t)
        return ids
    return []


def load_questions(path: Path) -> list[dict]:
    """Test items from a JSONL file (blank lines skipped)."""
    items = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            items.append(json.loads(line))
    return items


# -- naive baseline -------------------------------------------------------------------------------------
def windows(text: str, size: int = 500, overlap: int = 50) -> list[str]:
    """Fixed character windows: the common chunking recipe the clause chunker is compared against."""
    step = size - overlap
    return [text[i : i + size] for i in range(0, max(len(text) - overlap, 1), step)]


class NaiveIndex:
    """Dense-only flat index over fixed windows of the cleaned document texts."""

    def __init__(self, texts: Sequence[str], embedder, size: int = 500, overlap: int = 50):
        import faiss
        import numpy as np

        from assistant.text import normalize

        self.passages = [w for t in texts for w in windows(t, size, overlap)]
        self.embedder = embedder
        vecs = embedder.encode([normalize(p) for p in self.passages]) if self.passages else np.zeros((0, embedder.dim))
        self.dense = faiss.IndexFlatIP(embedder.dim)
        if len(self.passages):
            self.dense.add(np.asarray(vecs, dtype=np.float32))

    def search(self, query: str, k: int = 10) -> list[str]:
        """The k nearest windows' texts."""
        import numpy as np

        from assistant.text import expand_aliases, normalize

        if not self.passages:
            return []
        vec = np.asarray(self.embedder.encode([expand_aliases(normalize(query))]), dtype=np.float32)
        _, ids = self.dense.search(vec, min(k, len(self.passages)))
        return [self.passages[i] for i in ids[0] if i >= 0]


class CachedEmbedder:
    """Memoises single-text encodes so the retrieval modes share one query embedding (charged to the first mode)."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._cache: dict[str, object] = {}

    def encode(self, texts, batch_size: int = 32, progress: bool = False):
        if len(texts) != 1:
            return self.inner.encode(texts, batch_size=batch_size, progress=progress)
        if texts[0] not in self._cache:
            self._cache[texts[0]] = self.inner.encode(texts, batch_size=batch_size)
        return self._cache[texts[0]]


# -- the run ----------------------------------------------------------------------------------------------
def _documents_from(corpus: Path | None, settings):
    from assistant.corpus import build_document, load_corpus
    from assistant.schema import CorpusError

    if corpus is None:
        corpus = Path(settings.corpus_dir)
    corpus = Path(corpus)
    if corpus.is_dir():
        docs, errors = load_corpus(corpus)
        for e in errors:
            print(f"warning: skipped {e}", file=sys.stderr)
        return docs
    docs = []
    for n, line in enumerate(corpus.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        rec = json.loads(line)
        if "text" not in rec:
            raise CorpusError(f"{corpus.name}:{n}: document without text")
        doc_id = str(rec.get("doc_id") or f"doc-{n}")
        sidecar = {"title": rec["title"]} if rec.get("title") else {}
        docs.append(build_document(rec["text"], f"{doc_id}.txt", doc_id, sidecar))
    return docs


def _throwaway_index(docs, embedder):
    from assistant.index import PolicyIndex, clauses_of

    clauses, records = clauses_of(docs)
    index, _ = PolicyIndex.from_clauses(clauses, embedder, documents=records)
    return index


def _query_of(item: dict) -> str:
    from assistant.conversation import resolve

    if item.get("turns"):
        turns = list(item["turns"])
        history: list[str] = []
        for t in turns[:-1]:
            history.append(resolve(t, history))
        return resolve(turns[-1], history)
    return item["question"]


def evaluate(
    questions: Path,
    out_dir: Path,
    corpus: Path | None = None,
    modes: Sequence[str] = MODES,
    embedder_kind: str | None = None,
    answers: bool = True,
    settings=None,
    progress: bool = True,
) -> dict:
    """Run retrieval (every mode) and answer evaluation; write report.json, report.md and plots; return the report."""
    from tqdm import tqdm

    from assistant.config import Settings
    from assistant.embed import make_embedder
    from assistant.retrieve import Retriever

    settings = settings or Settings()
    if embedder_kind:
        settings = settings.model_copy(update={"embedder": embedder_kind})
    embedder = make_embedder(settings.embedder, settings.model, settings.hash_dim)
    docs = _documents_from(corpus, settings)
    if corpus is None and embedder_kind in (None, "sentence-transformers") and settings.embedder != "hash":
        from assistant.cli import ensure_index
        from assistant.index import PolicyIndex

        ensure_index(settings, quiet=True)
        index = PolicyIndex.load(Path(settings.index_dir))
    else:
        index = _throwaway_index(docs, embedder)
    cached = CachedEmbedder(embedder)
    retriever = Retriever.from_settings(index, cached, settings)
    naive = NaiveIndex([d.text for d in docs], cached) if "naive" in modes else None
    items = load_questions(questions)
    for item in items:
        item["relevant"] = relevant_clauses(index.clauses, item.get("gold_quotes", []))

    kmax = max(KS)
    rows: list[dict] = []
    search_ms: dict[str, list[float]] = defaultdict(list)
    bar = tqdm(items, desc="evaluating", unit="q", disable=not progress, file=sys.stderr)
    assistant = None
    tmp = tempfile.TemporaryDirectory(prefix="eval-")
    if answers:
        from assistant.pipeline import Assistant

        assistant = Assistant(settings.model_copy(update={"data_dir": Path(tmp.name)}), index=index, embedder=embedder)
    try:
        for item in bar:
            row = {"id": item["id"], "tags": item.get("tags", []), "refuse": bool(item.get("refuse"))}
            query = _query_of(item)
            row["question"] = " / ".join(item["turns"]) if item.get("turns") else item["question"]
            row["query"] = query
            quotes = item.get("gold_quotes", [])
            row["gold_quotes"] = quotes
            if not row["refuse"] and quotes:
                row["retrieval"] = {}
                for mode in modes:
                    t0 = time.perf_counter()
                    if mode == "naive":
                        passages = naive.search(query, kmax)
                        top = [p[:80] for p in passages[:3]]
                    else:
                        hits = retriever.search(query, k=kmax, mode=mode)
                        passages = [h.clause.text for h in hits]
                        top = [h.clause.clause_id for h in hits[:3]]
                    search_ms[mode].append((time.perf_counter() - t0) * 1000)
                    ranked = quote_ranking(passages, quotes)
                    gold = set(range(len(quotes)))
                    hitlike = [r if isinstance(r, int) else (r[1] if r[0] == "again" else r) for r in ranked]
                    m = {f"recall@{k}": recall_at_k(ranked, gold, k) for k in KS}
                    m["mrr@10"] = mrr_at_k(hitlike, gold, 10)
                    m["ndcg@10"] = ndcg_at_k(ranked, gold, 10)
                    m["top"] = top
                    row["retrieval"][mode] = m
            if assistant is not None:
                row.update(_answer_row(assistant, item))
            rows.append(row)
    finally:
        bar.close()
        tmp.cleanup()
    report = summarize(rows, modes, search_ms, answers, index_kind=index.manifest.get("dense_index"), model=embedder.name)
    write_report(report, rows, Path(out_dir))
    return report


def _answer_row(assistant, item: dict) -> dict:
    t0 = time.perf_counter()
    if item.get("turns"):
        sid = None
        for t in item["turns"]:
            ans = assistant.chat(t, sid)
            sid = ans.session_id
    else:
        ans = assistant.ask(item["question"])
    ms = (time.perf_counter() - t0) * 1000
    cited = [c.clause_id for c in ans.citations]
    answerable = not item.get("refuse")
    facts = item.get("facts", [])
    acc = fact_accuracy(ans.answer, facts) if answerable else None
    return {
        "answer": ans.answer,
        "refused": bool(ans.refused),
        "cited": cited,
        "relevant": item["relevant"],
        "facts": facts,
        "fact_accuracy": acc,
        "facts_all": (acc == 1.0) if acc is not None else None,
        "citation_precision": citation_precision(cited, item["relevant"]) if answerable else None,
        "citation_recall": citation_recall(cited, item["relevant"]) if answerable else None,
        "latency_ms": ms,
    }


def summarize(rows: Sequence[dict], modes: Sequence[str], search_ms: dict, answers: bool, **meta) -> dict:
    """Aggregate per-item rows into the report record."""
    ret_rows = [r for r in rows if "retrieval" in r]
    retrieval = {}
    for mode in modes:
        ms = [r["retrieval"][mode] for r in ret_rows]
        retrieval[mode] = {key: mean(m[key] for m in ms) for key in [f"recall@{k}" for k in KS] + ["mrr@10", "ndcg@10"]}
        retrieval[mode]["p50_ms"] = percentile(search_ms.get(mode, []), 50)
        retrieval[mode]["p95_ms"] = percentile(search_ms.get(mode, []), 95)
    report = {"meta": {**meta, "items": len(rows), "retrieval_items": len(ret_rows)}, "retrieval": retrieval}
    if "hybrid" in retrieval and "naive" in retrieval:
        report["hybrid_minus_naive_recall@3"] = retrieval["hybrid"]["recall@3"] - retrieval["naive"]["recall@3"]
    if answers:
        ans = [r for r in rows if not r["refuse"]]
        lat = [r["latency_ms"] for r in rows]
        report["answers"] = {
            "fact_accuracy": mean(r["fact_accuracy"] for r in ans),
            "all_facts": mean(float(r["facts_all"]) for r in ans),
            "citation_precision": mean(r["citation_precision"] for r in ans),
            "citation_recall": mean(r["citation_recall"] for r in ans),
            "refusal": refusal_scores([r["refused"] for r in rows], [r["refuse"] for r in rows]),
            "latency_p50_ms": percentile(lat, 50),
            "latency_p95_ms": percentile(lat, 95),
            "per_tag": {
                "all_facts": by_tag([{**r, "ok": float(r["facts_all"])} for r in ans], "ok"),
                "refusal_correct": by_tag([{**r, "ok": float(r["refused"] == r["refuse"])} for r in rows], "ok"),
            },
        }
    if ret_rows and "hybrid" in modes:
        report["retrieval_per_tag_hybrid_recall@3"] = by_tag(
            [{**r, "v": r["retrieval"]["hybrid"]["recall@3"]} for r in ret_rows], "v"
        )
    return report


def _fmt(v) -> str:
    return "—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def table(report: dict) -> str:
    """The retrieval table (and answer metrics) as plain text / markdown."""
    cols = [f"recall@{k}" for k in KS] + ["mrr@10", "ndcg@10", "p50_ms", "p95_ms"]
    lines = ["| mode | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for mode, m in report["retrieval"].items():
        lines.append(f"| {mode} | " + " | ".join(_fmt(m[c]) for c in cols) + " |")
    if "hybrid_minus_naive_recall@3" in report:
        lines.append(f"\nhybrid − naive Recall@3: {report['hybrid_minus_naive_recall@3']:+.3f}")
    if "answers" in report:
        a = report["answers"]
        lines.append("\n| answer metric | value |\n|---|---|")
        for key in ("fact_accuracy", "all_facts", "citation_precision", "citation_recall", "latency_p50_ms", "latency_p95_ms"):
            lines.append(f"| {key} | {_fmt(a[key])} |")
        lines.append(f"| refusal precision | {_fmt(a['refusal']['precision'])} |")
        lines.append(f"| refusal recall | {_fmt(a['refusal']['recall'])} |")
    return "\n".join(lines)


def _plots(report: dict, rows: Sequence[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, m in report["retrieval"].items():
        ax.plot(KS, [m[f"recall@{k}"] or 0 for k in KS], marker="o", label=mode)
    ax.set_xlabel("k")
    ax.set_ylabel("Recall@k")
    ax.set_ylim(0, 1.05)
    ax.legend()
    ax.set_title("Recall@k per retrieval mode")
    fig.tight_layout()
    fig.savefig(out / "recall_at_k.png", dpi=100)
    plt.close(fig)
    made.append("recall_at_k.png")
    lat = [r["latency_ms"] for r in rows if "latency_ms" in r]
    if lat:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.hist(lat, bins=30)
        ax.set_xlabel("answer latency (ms)")
        ax.set_ylabel("questions")
        ax.set_title("Answer latency distribution")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=100)
        plt.close(fig)
        made.append("latency.png")
    per_tag = report.get("answers", {}).get("per_tag", {}).get("all_facts") or report.get("retrieval_per_tag_hybrid_recall@3")
    if per_tag:
        tags = [t for t, v in per_tag.items() if v is not None]
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.bar(tags, [per_tag[t] for t in tags])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("all facts correct" if "answers" in report else "hybrid Recall@3")
        ax.set_title("Accuracy per tag")
        plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
        fig.tight_layout()
        fig.savefig(out / "accuracy_per_tag.png", dpi=100)
        plt.close(fig)
        made.append("accuracy_per_tag.png")
    return made


def write_report(report: dict, rows: Sequence[dict], out: Path) -> None:
    """report.json (summary + items), report.md (tables, plots, failures) and PNGs in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({**report, "items": list(rows)}, ensure_ascii=False, indent=1), encoding="utf-8")
    plots = _plots(report, rows, out)
    md = ["# Evaluation report", "", f"{report['meta']}", "", "## Retrieval (answerable items; hit = passage contains a gold quote, compacted)", ""]
    md.append(table(report))
    md += [
        "",
        "Notes: `naive` = fixed 500-character windows with 50 overlap over the cleaned document texts, dense only, same "
        "model. Multi-turn items are searched with the query the conversation stage resolves for the last turn. The query "
        "embedding is computed once per item and shared by the modes, so its cost shows in `dense` (run first among the "
        "dense modes) and not in `hybrid`/`naive`. Answer latency is end to end (`ask`, or every turn of a conversation).",
        "",
    ]
    per_tag = report.get("answers", {}).get("per_tag")
    if per_tag:
        md += ["", "## Per tag", "", "| tag | all facts correct | refusal decision correct | hybrid Recall@3 |", "|---|---|---|---|"]
        rec = report.get("retrieval_per_tag_hybrid_recall@3", {})
        for tag in sorted(set(per_tag["all_facts"]) | set(per_tag["refusal_correct"])):
            md.append(f"| {tag} | {_fmt(per_tag['all_facts'].get(tag))} | {_fmt(per_tag['refusal_correct'].get(tag))} | {_fmt(rec.get(tag))} |")
    md.append("")
    md.extend(f"![{p}]({p})" for p in plots)
    md += ["", "## Failures", ""]
    for r in rows:
        reasons = []
        hyb = r.get("retrieval", {}).get("hybrid")
        if hyb and hyb["recall@3"] < 1:
            reasons.append(f"hybrid recall@3={hyb['recall@3']:.2f}, top3={hyb['top']}")
        if "refused" in r and r["refused"] != r["refuse"]:
            reasons.append("refused wrongly" if r["refused"] else "should have refused")
        if r.get("facts_all") is False:
            missing = [f for f in r["facts"] if compact(f) not in compact(r["answer"])]
            reasons.append(f"missing facts {missing}")
        if reasons:
            md.append(f"- **{r['id']}** {r['question']}")
            md.append(f"  - expected: {r['gold_quotes'] or '(refusal)'}; relevant {r.get('relevant', [])}")
            md.append(f"  - {'; '.join(reasons)}")
            if "answer" in r:
                md.append(f"  - returned: {r['answer'][:200].replace(chr(10), ' ')} (cited {r['cited']})")
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")


def cli(name: str, argv: list[str]) -> int:
    """`eval [--corpus PATH] [--questions F] [--out DIR] [--modes …] [--embedder K] [--no-answers]`."""
    parser = argparse.ArgumentParser(prog=f"assistant {name}")
    parser.add_argument("--corpus", type=Path, help="corpus folder or JSONL of {doc_id,title,text}")
    parser.add_argument("--questions", type=Path, default=Path("eval/testset.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("eval"))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--embedder", choices=["hash", "sentence-transformers"])
    parser.add_argument("--no-answers", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = evaluate(args.questions, args.out, args.corpus, args.modes, args.embedder, not args.no_answers)
    print(table(report))
    print(f"\nwrote {args.out / 'report.json'}, {args.out / 'report.md'} ({time.perf_counter() - started:.1f} s)")
    return 0
