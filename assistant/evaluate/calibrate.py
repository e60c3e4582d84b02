"""Calibration run: choose the ranking weights and answer thresholds on the seed test set and the
outside dev set together, with cross-validation, and write what was chosen and why.

`python -m assistant calibrate` (assistant/evaluate/calibrate.py) runs two grids over both sets:
1. ranking (dense weight, clause and sentence re-rank weights): the objective is hit@1 (a gold clause
   or span ranked first), averaged over the two sets. The grid measures the coverage re-rank (the
   fallback when no learned re-ranker is trained for the model); the learned re-ranker, trained by
   `train-reranker` on the fusion chosen here, is measured beside it (its held-out figures are on
   eval/reranker.md) and is what the answer grid runs over;
2. answering (min coverage, weak coverage, min cosine, min quote coverage, and the focus weight of the
   words beside the question word in choosing the quoted sentence), over the ranking chosen in 1:
   the objective is the share of questions handled right, averaged over the two sets — a seed
   question answered with every fact, a seed question that should be refused refused, an outside
   question answered with the gold span — so a false refusal costs as much as a missed one.
Every item is searched once per ranking point and composed once per min-coverage and focus-weight value;
the other thresholds only decide refusal, which is read off the evidence each item's answer carries (answer.assess).
Items fall into folds by a hash of their id; each fold's figures come from the values chosen on the
other folds (held out), beside the in-sample figures of the values chosen on everything.
Ties go to the point nearest the documented defaults, so a value moves only when the data says so.
The table goes to eval/calibration.md and the values to assistant/data/calibration.json, under the
embedder's name; nothing in either depends on timing, so a rerun reproduces both.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from assistant.calibration import ANSWER_FIELDS, DEFAULT, FILE, RANKING_FIELDS, Thresholds

RANKING_GRID = {
    "dense_weight": (0.3, 0.5, 0.7, 1.0),
    "rerank_clause": (0.0, 0.02, 0.04, 0.08, 0.12, 0.16),
    "rerank_sentence": (0.0, 0.01, 0.02, 0.04),
}
ANSWER_GRID = {
    "min_coverage": (0.05, 0.1, 0.15, 0.2, 0.25),
    "weak_coverage": (0.4, 0.5, 0.6, 0.7, 0.8),
    "min_dense": (0.70, 0.72, 0.74, 0.76, 0.78, 0.80, 0.82),
    "min_quote_coverage": (0.0, 0.05, 0.1, 0.15, 0.2),
    "focus_weight": (1.0, 2.0, 3.0),
}
FOLDS = 5
LEARNED = ("learned",)  # the key of the learned re-ranker's ranks in Item.first
SEED = ("corpus", "eval/testset.jsonl")
OUTSIDE = ("../shared/extdata/ncp/corpus.jsonl", "../shared/extdata/ncp/dev.jsonl")


def fold_of(item_id: str, folds: int = FOLDS) -> int:
    """The fold an item belongs to: a stable hash of its id (the same on every machine and run)."""
    return int(hashlib.sha1(item_id.encode("utf-8")).hexdigest(), 16) % folds


@dataclass
class Item:
    """One question of either set, with what is measured of it at each grid point."""

    id: str
    kind: str  # "seed" (answerable), "refuse" (a seed question to refuse) or "span" (outside)
    query: str
    gold: object  # seed: the gold quotes; span: the gold span
    facts: tuple[str, ...] = ()
    fold: int = 0
    first: dict = field(default_factory=dict)  # ranking point → 0-based rank of the first gold passage (None: not in 10)
    answers: dict = field(default_factory=dict)  # (min_coverage, focus_weight) → (refused, right, evidence)


# -- loading -------------------------------------------------------------------------------------------
def load_set(corpus: Path | None, questions: Path, settings, embedder, cache_root: Path):
    """(index, items) of one set; the index is the evaluation's cached one."""
    from assistant.evaluate.items import is_span_item, load_questions, query_of
    from assistant.evaluate.sources import cached_index, documents_from
    from assistant.pipeline import regions_of

    docs = documents_from(corpus, settings)
    source = Path(corpus) if corpus is not None else Path(settings.corpus_dir)
    index, _ = cached_index(docs, source, embedder, settings, cache_root, progress=False)
    regions = regions_of(index)
    items = []
    for raw in load_questions(questions):
        if is_span_item(raw):
            items.append(Item(raw["id"], "span", query_of(raw), raw["answer"]))
        else:
            kind = "refuse" if raw.get("refuse") else "seed"
            items.append(Item(raw["id"], kind, query_of(raw, regions), tuple(raw.get("gold_quotes", ())), tuple(raw.get("facts", ()))))
    for it in items:
        it.fold = fold_of(it.id)
    return index, items


# -- measuring -------------------------------------------------------------------------------------------
def _first_gold(item: Item, passages: list[str]) -> int | None:
    from assistant.evaluate.metrics import quote_ranking, span_rank

    if item.kind == "span":
        return span_rank(passages, item.gold)
    ranked = quote_ranking(passages, item.gold)
    return next((r for r, label in enumerate(ranked) if isinstance(label, int)), None)


def measure_ranking(index, items: list[Item], embedder, settings, points: list[dict], progress: bool = True) -> None:
    """Each item's first gold rank at every ranking point (items to refuse have none)."""
    from assistant.retrieve import Retriever

    from tqdm import tqdm

    for point in tqdm(points, desc="ranking grid", unit="point", file=sys.stderr, disable=not progress):
        key = _key(point)
        retriever = Retriever.from_settings(index, embedder, settings, replace(DEFAULT, **point), ranker=None)
        for it in items:
            if it.kind == "refuse" or not it.gold:
                continue
            hits = retriever.search(it.query, k=10)
            it.first[key] = _first_gold(it, [h.clause.text for h in hits])


def measure_learned(index, items: list[Item], embedder, settings, ranking: dict) -> bool:
    """Each item's first gold rank with the model's learned re-ranker over the chosen fusion, under
    the key LEARNED; False when the model has none."""
    from assistant.rerank import for_model
    from assistant.retrieve import Retriever

    ranker = for_model(embedder.name)
    if ranker is None:
        return False
    retriever = Retriever.from_settings(index, embedder, settings, replace(DEFAULT, **ranking), ranker=ranker)
    for it in items:
        if it.kind != "refuse" and it.gold:
            it.first[LEARNED] = _first_gold(it, [h.clause.text for h in retriever.search(it.query, k=10)])
    return True


def measure_answers(index, items: list[Item], embedder, settings, ranking: dict, progress: bool = True) -> None:
    """Each item's answer and refusal evidence at every min-coverage value, over the chosen ranking."""
    from assistant.answer import assess, compose
    from assistant.evaluate.metrics import answer_contains, fact_accuracy
    from assistant.pipeline import Assistant

    with tempfile.TemporaryDirectory(prefix="calibrate-") as tmp:
        s = settings.model_copy(update={"data_dir": Path(tmp), "database_url": "", **ranking})
        assistant = Assistant(s, index=index, embedder=embedder)
        from tqdm import tqdm

        for it in tqdm(items, desc="answers", unit="q", file=sys.stderr, disable=not progress):
            query, hits, pool = assistant.evidence(it.query)
            for m, fw in itertools.product(ANSWER_GRID["min_coverage"], ANSWER_GRID["focus_weight"]):
                # refusal by the other thresholds is decided from the evidence, so they are off here
                t = replace(assistant.thresholds, min_coverage=m, weak_coverage=0.0, min_dense=0.0, min_quote_coverage=0.0,
                            focus_weight=fw)
                a = compose(query, hits, regions=assistant.regions(), documents=index.documents, idf=index.idf(),
                            pool=pool, today=assistant.today(), thresholds=t)
                ev = assess(query, hits, regions=assistant.regions(), documents=index.documents, idf=index.idf(), min_coverage=m,
                            focus_weight=fw)
                if it.kind == "span":
                    good = answer_contains(a.answer, it.gold, False)
                elif it.kind == "seed":
                    good = not it.facts or fact_accuracy(a.answer, list(it.facts)) == 1.0
                else:
                    good = False
                it.answers[(m, fw)] = (bool(a.refused), good, ev)


# -- choosing ------------------------------------------------------------------------------------------------
def _key(point: dict) -> tuple:
    return tuple(sorted(point.items()))


def _grid(spec: dict) -> list[dict]:
    names = list(spec)
    return [dict(zip(names, values)) for values in itertools.product(*(spec[n] for n in names))]


def _distance(point: dict, spec: dict) -> float:
    """How far a point is from the defaults, in grid steps (the tie-break)."""
    total = 0.0
    for name, value in point.items():
        grid = spec[name]
        base = getattr(DEFAULT, name)
        nearest = min(range(len(grid)), key=lambda i: abs(grid[i] - base))
        total += abs(grid.index(value) - nearest)
    return total


def ranking_scores(sets: list[list[Item]], point, keep) -> dict:
    """hit@1 per set over the items `keep` accepts, each item ranked at `point` (a ranking point, or
    a function of the item giving one: its fold's choice); their mean is the objective."""
    point_of = point if callable(point) else (lambda it: point)

    def key(it):
        p = point_of(it)
        return p if p == LEARNED else _key(p)

    out = []
    for items in sets:
        ranked = [it for it in items if keep(it) and key(it) in it.first]
        out.append(sum(1 for it in ranked if it.first[key(it)] == 0) / len(ranked) if ranked else 0.0)
    return {"hit@1": out, "objective": sum(out) / len(out)}


def composed(it: Item, t: Thresholds) -> tuple:
    """(refused by compose, answered right, evidence) of an item composed under t's min coverage and focus weight."""
    return it.answers[(t.min_coverage, t.focus_weight)]


def refused(it: Item, t: Thresholds) -> bool:
    """Whether the answer stage refuses an item under thresholds t (see answer.compose)."""
    was_refused, _, ev = composed(it, t)
    return was_refused or ev.refuses(t)


def answer_scores(sets: list[list[Item]], t, keep) -> dict:
    """The answer objective over the items `keep` accepts, each judged under `t` (thresholds, or a
    function of the item giving its fold's), and the figures reported beside it."""
    t_of = t if callable(t) else (lambda it: t)
    seed = [it for items in sets for it in items if it.kind == "seed" and keep(it)]
    refuse = [it for items in sets for it in items if it.kind == "refuse" and keep(it)]
    span = [it for items in sets for it in items if it.kind == "span" and keep(it)]

    def rate(group, ok) -> float:
        return sum(1 for it in group if ok(it)) / len(group) if group else 0.0

    def right(it) -> bool:
        return not refused(it, t_of(it)) and composed(it, t_of(it))[1]

    answered_ok = rate(seed, right)
    refused_ok = rate(refuse, lambda it: refused(it, t_of(it)))
    contains = rate(span, right)
    refusals = [it for it in seed + refuse if refused(it, t_of(it))]
    precision = sum(1 for it in refusals if it.kind == "refuse") / len(refusals) if refusals else 1.0
    seed_ok = (answered_ok * len(seed) + refused_ok * len(refuse)) / (len(seed) + len(refuse)) if seed or refuse else 0.0
    return {
        "objective": (seed_ok + contains) / 2,
        "seed_all_facts": answered_ok,
        "refusal_recall": refused_ok,
        "refusal_precision": precision,
        "outside_contains": contains,
        "outside_refused": rate(span, lambda it: refused(it, t_of(it))),
    }


def choose(points: list[dict], score, spec: dict) -> dict:
    """The point with the best objective; ties to the one nearest the defaults, then the first."""
    return max(points, key=lambda p: (round(score(p)["objective"], 9), -_distance(p, spec)))


# -- the run -------------------------------------------------------------------------------------------------
def run(settings, sets: list[tuple[Path | None, Path]], folds: int = FOLDS, cache_root: Path | None = None,
        progress: bool = True) -> dict:
    """Both grids over the sets, with per-fold held-out figures; returns the report record."""
    from assistant.embed import embedder_for
    from assistant.evaluate.cache import CachedEmbedder
    from assistant.evaluate.sources import DEFAULT_CACHE

    embedder = CachedEmbedder(embedder_for(settings))
    loaded = [load_set(c, q, settings, embedder, Path(cache_root or DEFAULT_CACHE)) for c, q in sets]
    items = [its for _, its in loaded]
    for it in (it for its in items for it in its):
        it.fold = fold_of(it.id, folds)
    rank_points = _grid(RANKING_GRID)
    for (index, its) in loaded:
        measure_ranking(index, its, embedder, settings, rank_points, progress)

    def rank_score(keep):
        return lambda p: ranking_scores(items, p, keep)

    ranking = choose(rank_points, rank_score(lambda it: True), RANKING_GRID)
    learned = all([measure_learned(index, its, embedder, settings, ranking) for index, its in loaded])
    for index, its in loaded:
        measure_answers(index, its, embedder, settings, ranking, progress)
    answer_points = [replace(DEFAULT, **ranking, **p) for p in _grid(ANSWER_GRID)]

    def ans_score(keep):
        return lambda t: answer_scores(items, t, keep)

    def pick_answer(keep) -> Thresholds:
        return max(answer_points, key=lambda t: (round(ans_score(keep)(t)["objective"], 9),
                                                 -_distance({f: getattr(t, f) for f in ANSWER_FIELDS}, ANSWER_GRID)))

    chosen = pick_answer(lambda it: True)
    folds_out = []
    for f in range(folds):
        train, test = (lambda it, f=f: it.fold != f), (lambda it, f=f: it.fold == f)
        r = choose(rank_points, rank_score(train), RANKING_GRID)
        t = pick_answer(train)
        folds_out.append({
            "fold": f,
            "ranking": r,
            "answer": {k: getattr(t, k) for k in ANSWER_FIELDS},
            "held_out": {**{f"hit@1 {name}": v for name, v in zip(_set_names(sets), ranking_scores(items, r, test)["hit@1"])},
                         **answer_scores(items, t, test)},
            "in_sample": {**{f"hit@1 {name}": v for name, v in zip(_set_names(sets), ranking_scores(items, r, train)["hit@1"])},
                          **answer_scores(items, t, train)},
            "items": sum(1 for its in items for it in its if test(it)),
        })
    everything = lambda it: True  # noqa: E731
    by_fold = {f["fold"]: f for f in folds_out}
    rank_of = lambda it: by_fold[it.fold]["ranking"]  # noqa: E731
    answer_of = lambda it: replace(DEFAULT, **by_fold[it.fold]["ranking"], **by_fold[it.fold]["answer"])  # noqa: E731
    return {
        # every item judged by the values chosen without its fold
        "held_out": {**{f"hit@1 {name}": v for name, v in zip(_set_names(sets), ranking_scores(items, rank_of, everything)["hit@1"])},
                     **answer_scores(items, answer_of, everything)},
        "model": embedder.name,
        # the last two parts of each path, so the page is the same from any checkout
        "sets": [{"corpus": _short(c), "questions": _short(q), "items": len(its)} for (c, q), its in zip(sets, items)],
        "grids": {"ranking": RANKING_GRID, "answer": ANSWER_GRID},
        "folds": folds_out,
        "chosen": chosen.to_dict(),
        "defaults": DEFAULT.to_dict(),
        # hit@1 of the learned re-ranker over the chosen fusion (in-sample: it was trained on these items)
        "learned": ({f"hit@1 {name}": v for name, v in zip(_set_names(sets), ranking_scores(items, LEARNED, everything)["hit@1"])}
                    if learned else None),
        "in_sample": {**{f"hit@1 {name}": v for name, v in zip(_set_names(sets), ranking_scores(items, ranking, everything)["hit@1"])},
                      **answer_scores(items, chosen, everything)},
        "at_defaults": {**{f"hit@1 {name}": v for name, v in zip(_set_names(sets), ranking_scores(items, {k: getattr(DEFAULT, k) for k in RANKING_FIELDS}, everything)["hit@1"])},
                        **answer_scores(items, _at_defaults(answer_points, ranking), everything)},
    }


def _at_defaults(points: list[Thresholds], ranking: dict) -> Thresholds:
    """The defaults' answer thresholds (the grid holds them) under the chosen ranking."""
    want = replace(DEFAULT, **ranking)
    return next(p for p in points if p == want)


def _short(path) -> str:
    return "/".join(Path(path).parts[-2:]) if path else "corpus"


def _set_names(sets) -> list[str]:
    return ["seed" if (c is None or Path(c).name == "corpus") else Path(q).parent.name or Path(q).stem for c, q in sets]


# -- writing -------------------------------------------------------------------------------------------------
def _f(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def markdown(report: dict) -> str:
    """eval/calibration.md: the sets, the grids, the chosen values, and each fold held out beside in-sample."""
    lines = [
        "# Calibration",
        "",
        f"Written by `python -m assistant calibrate` for embedding model `{report['model']}`; rerun it to reproduce this page",
        "and `assistant/data/calibration.json`. See the module docstring of `assistant/evaluate/calibrate.py` for the method.",
        "",
        "Sets: " + "; ".join(f"{s['questions']} over {s['corpus']} ({s['items']} items)" for s in report["sets"]),
        "",
        "## Grids",
        "",
    ]
    for stage, grid in report["grids"].items():
        for name, values in grid.items():
            lines.append(f"- {stage} `{name}`: {', '.join(_f(v) for v in values)}")
    lines += ["", "## Chosen (on every item)", "", "| value | chosen | default before |", "|---|---|---|"]
    for name, value in report["chosen"].items():
        lines.append(f"| `{name}` | {_f(value)} | {_f(report['defaults'][name])} |")
    keys = list(report["in_sample"])
    lines += ["", "## Figures", "", "In-sample: the values chosen on every item, measured on every item. At defaults: the",
              "values before this command. Each fold: the values chosen on the other folds, measured on the fold (held out),",
              "and on the folds they were chosen on (in-sample).", "",
              "| run | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    lines.append("| at defaults | " + " | ".join(_f(report["at_defaults"][k]) for k in keys) + " |")
    lines.append("| chosen, in-sample | " + " | ".join(_f(report["in_sample"][k]) for k in keys) + " |")
    for fold in report["folds"]:
        lines.append(f"| fold {fold['fold']} held out ({fold['items']} items) | " + " | ".join(_f(fold["held_out"][k]) for k in keys) + " |")
        lines.append(f"| fold {fold['fold']} in-sample | " + " | ".join(_f(fold["in_sample"][k]) for k in keys) + " |")
    lines.append("| every item held out (its fold's values) | " + " | ".join(_f(report["held_out"][k]) for k in keys) + " |")
    if report.get("learned"):
        lines += ["", "The rows above rank with the coverage re-rank (the fallback). With the learned re-ranker over the chosen",
                  "fusion (what the answer figures run over; trained on these items, so in-sample; held out: eval/reranker.md): "
                  + ", ".join(f"{k} {_f(v)}" for k, v in report["learned"].items()) + "."]
    lines += ["", "Values chosen per fold:", ""]
    for fold in report["folds"]:
        vals = {**fold["ranking"], **fold["answer"]}
        lines.append(f"- fold {fold['fold']}: " + ", ".join(f"{k} {_f(v)}" for k, v in vals.items()))
    return "\n".join(lines) + "\n"


def write(report: dict, md_path: Path, json_path: Path) -> None:
    """The page and the model's entry in the calibration file (other models' entries kept)."""
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(markdown(report), encoding="utf-8")
    record = {"values": report["chosen"], "basis": f"eval/{md_path.name}", "sets": [s["questions"] for s in report["sets"]]}
    update_models_file(json_path, report["model"], record,
                       "Chosen by `python -m assistant calibrate` (assistant/evaluate/calibrate.py); see eval/calibration.md.")


def update_models_file(json_path: Path, model: str, record: dict, about: str, indent: int = 2) -> None:
    """Write one model's record into a per-model data file, the other models' records kept."""
    data = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {}
    models = {**data.get("models", {}), model: record}
    data = {"about": about, "models": dict(sorted(models.items()))}
    json_path.write_text(json.dumps(data, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")


def add_set_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments naming both sets, the folds and the index cache (calibrate and train-reranker)."""
    parser.add_argument("--seed-corpus", type=Path, default=Path(SEED[0]))
    parser.add_argument("--seed-questions", type=Path, default=Path(SEED[1]))
    parser.add_argument("--outside-corpus", type=Path, default=Path(OUTSIDE[0]))
    parser.add_argument("--outside-questions", type=Path, default=Path(OUTSIDE[1]))
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--index-cache", type=Path, default=None)


def sets_of(args) -> list[tuple[Path, Path]]:
    """The two sets the arguments name; AssistantError when a file is missing (both sets are needed)."""
    from assistant.schema import AssistantError

    for path in (args.seed_questions, args.outside_corpus, args.outside_questions):
        if not path.exists():
            raise AssistantError(f"{path} does not exist (both sets are needed)")
    return [(args.seed_corpus, args.seed_questions), (args.outside_corpus, args.outside_questions)]


def cli(name: str, argv: list[str]) -> int:
    """`calibrate [--seed-corpus --seed-questions --outside-corpus --outside-questions --folds --out --table]`."""
    from assistant.config import Settings

    parser = argparse.ArgumentParser(prog=f"python -m assistant {name}", description=__doc__.split("\n\n")[0])
    add_set_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("eval/calibration.md"))
    parser.add_argument("--table", type=Path, default=Path(__file__).parent.parent / "data" / FILE,
                        help="the calibration file the values are written to (default: the package's)")
    args = parser.parse_args(argv)
    report = run(Settings(), sets_of(args), args.folds, args.index_cache)
    write(report, args.out, args.table)
    print(markdown(report))
    print(f"wrote {args.out} and {args.table}", file=sys.stderr)
    return 0
