"""Evaluation stage, the report: per-item rows summarised into the report record, its tables, plots, and
report.json / report.md / misses.jsonl written to the output folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from assistant.evaluate.metrics import KS, by_tag, mean, percentile, refusal_scores, span_hits, upper_median
from assistant.text import compact


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


def summarize_span(rows: Sequence[dict], modes: Sequence[str], span_ms: dict, answers: bool) -> dict:
    """The span section: hit@k and MRR@10 per mode (the headline from hybrid), answer containment, refusals, length."""
    by_mode = {}
    for mode in modes:
        ranks = [None if r["span_retrieval"][mode]["rank"] is None else r["span_retrieval"][mode]["rank"] - 1 for r in rows]
        by_mode[mode] = {**span_hits(ranks), "p50_ms": percentile(span_ms.get(mode, []), 50), "p95_ms": percentile(span_ms.get(mode, []), 95)}
    head = "hybrid" if "hybrid" in by_mode else (next(iter(by_mode)) if by_mode else None)
    out: dict = {"questions": len(rows), "mode": head}
    out.update({key: (by_mode[head][key] if head else None) for key in [f"hit@{k}" for k in KS] + ["mrr@10"]})
    n = len(rows)
    if answers and n:
        lat = [r["latency_ms"] for r in rows]
        out.update(
            answer_contains=sum(r["answer_contains"] for r in rows) / n,
            refused=sum(r["refused"] for r in rows) / n,
            answer_chars_p50=upper_median([r["answer_chars"] for r in rows]),
            latency_p50_ms=percentile(lat, 50),
            latency_p95_ms=percentile(lat, 95),
        )
    else:
        out.update(answer_contains=None, refused=None, answer_chars_p50=None, latency_p50_ms=None, latency_p95_ms=None)
    out["by_mode"] = by_mode
    return out


def build_report(rows: Sequence[dict], modes: Sequence[str], search_ms: dict, span_ms: dict, answers: bool,
                 meta: dict, index_info: dict | None = None) -> dict:
    """The report record of a run: the seed summary (an empty one when every item is a span item), the span
    section when there are span items, and where the cached index lives."""
    seed_rows = [r for r in rows if r.get("kind") != "span"]
    span_rows = [r for r in rows if r.get("kind") == "span"]
    if seed_rows or not span_rows:
        report = summarize(seed_rows, modes, search_ms, answers, **meta)
    else:
        report = {"meta": {**meta, "items": 0, "retrieval_items": 0}, "retrieval": {}}
    if span_rows:
        report["meta"]["items"] = len(rows)
        report["meta"]["span_items"] = len(span_rows)
        report["span"] = summarize_span(span_rows, modes, span_ms, answers)
    if index_info:
        report["meta"]["index"] = index_info
    return report


def span_line(span: dict) -> str:
    """The span headline as one JSON line with score_http.py's keys and rounding, for side-by-side comparison."""
    keys = ["questions"] + [f"hit@{k}" for k in KS] + ["mrr@10", "refused", "answer_contains", "answer_chars_p50"]
    return json.dumps({k: (round(span[k], 3) if isinstance(span[k], float) else span[k]) for k in keys}, ensure_ascii=False)


def _fmt(v) -> str:
    return "—" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def table(report: dict, span: bool = True) -> str:
    """The retrieval table (and answer metrics, and with `span` the span section) as plain text / markdown."""
    cols = [f"recall@{k}" for k in KS] + ["mrr@10", "ndcg@10", "p50_ms", "p95_ms"]
    lines = []
    if report["retrieval"]:
        lines += ["| mode | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
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
    if span and "span" in report:
        if lines:
            lines.append("")
        lines.append(span_table(report["span"]))
    return "\n".join(lines)


def span_table(span: dict) -> str:
    """The span section: hit@k / MRR@10 per mode, then the answer metrics, as markdown."""
    cols = [f"hit@{k}" for k in KS] + ["mrr@10", "p50_ms", "p95_ms"]
    lines = [f"| span mode ({span['questions']} q) | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for mode, m in span["by_mode"].items():
        lines.append(f"| {mode} | " + " | ".join(_fmt(m[c]) for c in cols) + " |")
    lines.append("\n| span answer metric | value |\n|---|---|")
    for key in ("answer_contains", "refused", "answer_chars_p50", "latency_p50_ms", "latency_p95_ms"):
        lines.append(f"| {key} | {_fmt(span[key])} |")
    return "\n".join(lines)


def _plots(report: dict, rows: Sequence[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, m in report["retrieval"].items():
        ax.plot(KS, [m[f"recall@{k}"] or 0 for k in KS], marker="o", label=mode)
    span_modes = report.get("span", {}).get("by_mode", {})
    for mode, m in span_modes.items():
        ax.plot(KS, [m[f"hit@{k}"] or 0 for k in KS], marker="s", linestyle="--", label=f"{mode} (span hit@k)")
    ax.set_xlabel("k")
    ax.set_ylabel("Recall@k" if not span_modes else ("Hit@k (span)" if not report["retrieval"] else "Recall@k; dashed: span Hit@k"))
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


SHOW_MISSES = 30


def span_misses(rows: Sequence[dict]) -> list[dict]:
    """Span items whose answer lacks the gold (or, without answers, whose search missed it), as score_http writes them."""
    out = []
    for r in rows:
        mode = "hybrid" if "hybrid" in r["span_retrieval"] else next(iter(r["span_retrieval"]), None)
        rank = r["span_retrieval"][mode]["rank"] if mode else None
        ok = r["answer_contains"] if "answer_contains" in r else rank is not None
        if not ok:
            out.append({"id": r["id"], "question": r["question"], "gold": r["gold"], "refused": r.get("refused", False),
                        "answer": r.get("answer"), "search_rank": rank, "mode": mode})
    return out


def write_report(report: dict, rows: Sequence[dict], out: Path) -> None:
    """report.json (summary + items), report.md (tables, plots, failures), misses.jsonl (span items) and PNGs in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({**report, "items": list(rows)}, ensure_ascii=False, indent=1), encoding="utf-8")
    plots = _plots(report, rows, out)
    seed_rows = [r for r in rows if r.get("kind") != "span"]
    span_rows = [r for r in rows if r.get("kind") == "span"]
    md = _summary_lines(report)
    md.append("")
    md.extend(f"![{p}]({p})" for p in plots)
    if seed_rows or not span_rows:
        md += ["", "## Failures", ""]
    md += _failure_lines(seed_rows)
    if span_rows:
        misses = span_misses(span_rows)
        with open(out / "misses.jsonl", "w", encoding="utf-8") as f:
            for m in misses:
                f.write(json.dumps(m, ensure_ascii=False) + "\n")
        md += _miss_lines(misses, len(span_rows))
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")


def _summary_lines(report: dict) -> list[str]:
    """report.md's head: the meta line, the retrieval and answer tables, the span section and the per-tag table."""
    md = ["# Evaluation report", "", f"{report['meta']}", ""]
    if report["retrieval"]:
        md += ["## Retrieval (answerable items; hit = passage contains a gold quote, compacted)", ""]
        md.append(table(report, span=False))
        md += [
            "",
            "Notes: `naive` = fixed 500-character windows with 50 overlap over the cleaned document texts, dense only, same "
            "model. Multi-turn items are searched with the query the conversation stage resolves for the last turn. The query "
            "embedding is computed once per item and shared by the modes, so its cost shows in `dense` (run first among the "
            "dense modes) and not in `hybrid`/`naive`. Answer latency is end to end (`ask`, or every turn of a conversation).",
            "",
        ]
    if "span" in report:
        md += ["## Span questions (outside set; the rule of score_http.py)", "", span_table(report["span"]), ""]
        md += [
            "Scoring: both sides NFKC, whitespace removed, dashes/至/到 as `-`, curly quotes and 〔〕 as ASCII; a passage or "
            "answer contains the gold span when the span is a substring of it, or, for a span over 60 characters, when any "
            "30-character run of it (step 5) is. hit@k/MRR@10 use the clause texts (windows for `naive`) of a k=10 search; "
            "the answer is that of a fresh `chat` session (as `POST /api/chat`), a refusal never contains the gold; "
            "`answer_chars_p50` is sorted lengths[n // 2]. Span misses are listed in misses.jsonl.",
            "",
        ]
    per_tag = report.get("answers", {}).get("per_tag")
    if per_tag:
        md += ["", "## Per tag", "", "| tag | all facts correct | refusal decision correct | hybrid Recall@3 |", "|---|---|---|---|"]
        rec = report.get("retrieval_per_tag_hybrid_recall@3", {})
        for tag in sorted(set(per_tag["all_facts"]) | set(per_tag["refusal_correct"])):
            md.append(f"| {tag} | {_fmt(per_tag['all_facts'].get(tag))} | {_fmt(per_tag['refusal_correct'].get(tag))} | {_fmt(rec.get(tag))} |")
    return md


def _failure_lines(seed_rows: Sequence[dict]) -> list[str]:
    """Each seed item that missed: hybrid recall@3 below 1, a wrong refusal decision, or missing facts."""
    md = []
    for r in seed_rows:
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
    return md


def _miss_lines(misses: Sequence[dict], total: int) -> list[str]:
    """The first SHOW_MISSES span misses of `total` span items."""
    shown = misses[:SHOW_MISSES]
    md = ["", f"## Span misses ({len(misses)} of {total}; first {len(shown)} shown, all in misses.jsonl)", ""]
    for m in shown:
        md.append(f"- **{m['id']}** {m['question']}")
        md.append(f"  - gold: {m['gold'][:200]}")
        how = "refused" if m["refused"] else ("answer lacks the span" if m["answer"] is not None else "not found")
        md.append(f"  - {how}; rank of the first clause with the span (search mode {m['mode']}): {m['search_rank']}")
        if m["answer"]:
            md.append(f"  - returned: {m['answer'][:200].replace(chr(10), ' ')}")
    return md
