"""Evaluation runs from the console: test sets, one background run at a time, and the runs kept for comparison.

Above evaluate (the run and its report), review (test-set checks, the export) and the store; below the
edges. A run evaluates the live index as it is served (never rebuilt) on a test set — the seed set,
the export of curated answers and reviewed feedback, or one uploaded — and writes the same report and
plots as `assistant eval` to <data_dir>/evalruns/<id>/. Runs and uploaded test sets live in the store's
database (component "evalrun"): date, actor, index version, progress and key metrics.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from assistant.schema import BusyError, QueryError, UnknownRecordError
from assistant.store import Migration, TableStore

REPORT_FILES = ("report.json", "report.md", "recall_at_k.png", "latency.png", "accuracy_per_tag.png", "misses.jsonl")
BUILT_IN = {"seed": "the seed test set", "export": "curated answers and reviewed feedback"}

_TABLES = (
    Migration(1, """
CREATE TABLE IF NOT EXISTS eval_testsets (
    id {id},
    name TEXT NOT NULL,
    content TEXT NOT NULL,
    items INTEGER NOT NULL,
    actor TEXT NOT NULL DEFAULT '',
    created_at {float} NOT NULL
);
CREATE TABLE IF NOT EXISTS eval_runs (
    id {id},
    testset TEXT NOT NULL,
    actor TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    started_at {float} NOT NULL,
    finished_at {float},
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    index_version TEXT NOT NULL DEFAULT '',
    metrics TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT ''
)
"""),
)

_RUN_COLUMNS = ("id", "testset", "actor", "state", "started_at", "finished_at", "done", "total", "index_version", "metrics", "error")


class EvalStore(TableStore):
    """Uploaded test sets and evaluation runs (tables eval_testsets, eval_runs)."""

    component, migrations = "evalrun", _TABLES

    def add_testset(self, name: str, items: list[dict], actor: str = "") -> int:
        content = "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items)
        with self.db.transaction() as tx:
            rows = tx.execute("INSERT INTO eval_testsets (name, content, items, actor, created_at) VALUES (?, ?, ?, ?, ?) "
                              "RETURNING id", (name, content, len(items), actor, time.time())).fetchall()
        return int(rows[0][0])

    def testsets(self) -> list[dict]:
        rows = self.db.query("SELECT id, name, items, actor, created_at FROM eval_testsets ORDER BY id DESC")
        return [dict(zip(("id", "name", "items", "actor", "created_at"), r)) for r in rows]

    def testset_content(self, id: int) -> tuple[str, str]:
        rows = self.db.query("SELECT name, content FROM eval_testsets WHERE id = ?", (id,))
        if not rows:
            raise UnknownRecordError(f"unknown test set: {id}")
        return rows[0][0], rows[0][1]

    def start_run(self, testset: str, actor: str, index_version: str, total: int) -> int | None:
        """A new running run, or None while another one runs (one at a time, across replicas too)."""
        with self.db.transaction() as tx:
            # a run left 'running' by a process that died is stale after a day; it no longer blocks
            busy = tx.execute("SELECT COUNT(*) FROM eval_runs WHERE state = 'running' AND started_at > ?",
                              (time.time() - 86400,)).fetchone()[0]
            if busy:
                return None
            rows = tx.execute("INSERT INTO eval_runs (testset, actor, state, started_at, total, index_version) "
                              "VALUES (?, ?, 'running', ?, ?, ?) RETURNING id",
                              (testset, actor, time.time(), total, index_version)).fetchall()
        return int(rows[0][0])

    def progress(self, id: int, done: int, total: int) -> None:
        with self.db.transaction() as tx:
            tx.execute("UPDATE eval_runs SET done = ?, total = ? WHERE id = ?", (done, total, id))

    def finish(self, id: int, metrics: dict | None = None, error: str = "") -> None:
        with self.db.transaction() as tx:
            tx.execute("UPDATE eval_runs SET state = ?, finished_at = ?, metrics = ?, error = ?, "
                       "done = CASE WHEN ? = '' THEN total ELSE done END WHERE id = ?",
                       ("failed" if error else "done", time.time(), json.dumps(metrics or {}, ensure_ascii=False), error,
                        error, id))

    def runs(self, limit: int = 50) -> list[dict]:
        rows = self.db.query(f"SELECT {', '.join(_RUN_COLUMNS)} FROM eval_runs ORDER BY id DESC LIMIT ?", (limit,))
        return [_run(r) for r in rows]

    def run(self, id: int) -> dict:
        rows = self.db.query(f"SELECT {', '.join(_RUN_COLUMNS)} FROM eval_runs WHERE id = ?", (id,))
        if not rows:
            raise UnknownRecordError(f"unknown evaluation run: {id}")
        return _run(rows[0])

    def close(self) -> None:
        self.db.close()


def _run(r: tuple) -> dict:
    d = dict(zip(_RUN_COLUMNS, r))
    d["metrics"] = json.loads(d["metrics"] or "{}")
    return d


def index_version(index) -> str:
    """When the index was built and from which corpus, as a short label."""
    m = index.manifest
    return f"{m.get('built_at', '?')} · {str(m.get('corpus_hash', ''))[:8]}"


def key_metrics(report: dict) -> dict:
    """The figures a run is compared by: hybrid recall and MRR, answer facts, citations, refusals, span hits, latency."""
    hybrid = report.get("retrieval", {}).get("hybrid", {})
    answers = report.get("answers", {})
    span = report.get("span", {})
    out = {"items": report.get("meta", {}).get("items"), "recall@3": hybrid.get("recall@3"), "mrr@10": hybrid.get("mrr@10"),
           "fact_accuracy": answers.get("fact_accuracy"), "all_facts": answers.get("all_facts"),
           "citation_precision": answers.get("citation_precision"),
           "refusal_precision": answers.get("refusal", {}).get("precision"),
           "refusal_recall": answers.get("refusal", {}).get("recall"), "latency_p50_ms": answers.get("latency_p50_ms")}
    if span:
        out.update({"span_hit@3": span.get("hit@3"), "span_answer_contains": span.get("answer_contains")})
    return out


class EvalRunner:
    """Runs one evaluation at a time in a background thread over the assistant's live index."""

    def __init__(self, settings, assistant, store: EvalStore, testset_items):
        self.settings = settings
        self.assistant = assistant
        self.store = store
        self.testset_items = testset_items  # callable: the built-in "export" set (curated + reviewed feedback)
        self.root = Path(settings.data_dir) / "evalruns"
        self._thread: threading.Thread | None = None

    def items_of(self, testset: str) -> tuple[str, list[dict]]:
        """(label, items) of a test set: "seed", "export" or the id of an uploaded one."""
        from assistant.evaluate.items import load_questions

        if testset == "seed":
            path = Path(getattr(self.settings, "eval_questions", "eval/testset.jsonl"))
            if not path.is_file():
                raise QueryError(f"testset: the seed test set {path} is not on this server")
            return "seed", load_questions(path)
        if testset == "export":
            items = self.testset_items()
            if not items:
                raise QueryError("testset: there are no curated answers or reviewed feedback to export yet")
            return "export", items
        if not str(testset).isdigit():
            raise QueryError(f"testset: {testset!r} is not seed, export or a test set id")
        from assistant.review import parse_testset

        name, content = self.store.testset_content(int(testset))
        return name, parse_testset(content.encode("utf-8"))

    def start(self, testset: str, actor: str, limit: int | None = None) -> dict:
        """Start a run on a test set; BusyError while one runs."""
        label, items = self.items_of(testset)
        if limit:
            items = items[:limit]
        with self.assistant._lock:
            index = self.assistant.index
        run_id = self.store.start_run(label, actor, index_version(index), len(items))
        if run_id is None:
            raise BusyError("an evaluation is already running")
        self._thread = threading.Thread(target=self._run, args=(run_id, items, index), name=f"eval-{run_id}", daemon=True)
        self._thread.start()
        return self.store.run(run_id)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, run_id: int, items: list[dict], index) -> None:
        from assistant.evaluate.run import evaluate

        out = self.folder(run_id)
        try:
            out.mkdir(parents=True, exist_ok=True)
            questions = out / "testset.jsonl"
            questions.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), encoding="utf-8")
            naive = self.root / f"naive-{self.assistant.embedder.name}-{index.manifest.get('corpus_hash', '')}.npz"
            report = evaluate(questions, out, settings=self.settings, progress=False,
                              served=(index, self.assistant.embedder, naive),
                              on_item=lambda done, total: self.store.progress(run_id, done, total))
            self.store.finish(run_id, key_metrics(report))
        except Exception as exc:  # the run is marked failed with the reason; the service goes on
            self.store.finish(run_id, error=f"{exc.__class__.__name__}: {exc}")

    def folder(self, run_id: int) -> Path:
        return self.root / str(int(run_id))

    def report_file(self, run_id: int, name: str) -> Path:
        """One file of a run's report (UnknownRecordError for another name or a run without it)."""
        self.store.run(run_id)
        path = self.folder(run_id) / name
        if name not in REPORT_FILES or not path.is_file():
            raise UnknownRecordError(f"run {run_id} has no report file {name!r}")
        return path
