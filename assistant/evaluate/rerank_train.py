"""Training the learned re-ranker (assistant/rerank.py): `python -m assistant train-reranker`.

Every answerable question of the seed test set and the outside dev set is searched once (hybrid, the
calibrated fusion weight, no re-rank); the head of its fused list gets the re-rank features, and each
clause there is labelled by whether it holds the item's gold quote or gold span (the rules of
`assistant eval`). The model is a pairwise logistic regression without intercept (a gold clause
against each other clause of the same head, each question weighing the same), L2-regularised,
solved by Newton's method in numpy: deterministic, no model library. The regularisation strength and
the depth of the head are chosen by 5-fold cross-validation over both sets together with the folds of `calibrate` (a hash of the
item id), and the page gives, for every fold, held-out hit@1 per set of the model trained on the
other folds beside the coverage re-rank it replaces. The model trained on every item goes to
data/reranker.json under the embedder's name, with the hash of the data it was trained on; the page
to eval/reranker.md.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from assistant.evaluate.calibrate import FOLDS, add_set_arguments, fold_of, load_set, sets_of, update_models_file

# L2 strengths tried (per question-weighted pair loss on standardised features), and how deep into the fused
# list the model reorders (a deeper head holds more gold clauses, and more clauses to mistake for them);
# both chosen by the cross-validated objective, ties to the shallower head, then the weaker penalty
LAMBDAS = (0.01, 0.1, 1.0, 10.0)
DEPTHS = (20, 30, 50, 70)
NEWTON_STEPS = 30  # the loss is convex and smooth: damped Newton converges in well under this many steps
# the ablation on the page: each group of features left out in turn (trained and held out the same way)
GROUPS = {
    "fusion (fused score and rank)": ("fused", "fused_rank"),
    "dense side": ("dense", "dense_gap", "dense_rank"),
    "lexical side": ("lexical", "lexical_rank"),
    "coverage of clause and sentence": ("cover_clause", "cover_sentence", "cover_text", "cover_clause_gap", "cover_sentence_gap"),
    "heading path and title": ("cover_section", "cover_title"),
    "phrases (token and character pairs)": ("bigrams", "chars"),
    "region evidence": ("place_match", "place_miss"),
    "document support": ("doc_share", "doc_best"),
    "answer type (intents)": ("answer_type", "answer_type_missing"),
    "clause kind, position, length": ("preamble", "table_row", "continuation", "position", "length"),
}


@dataclass
class Example:
    """One question's head: its features, which rows hold the gold, and the coverage re-rank's verdict."""

    id: str
    set_name: str
    fold: int
    x: np.ndarray
    gold: np.ndarray  # bool per head row
    base_hit: bool  # the coverage re-rank ranked a gold clause first


def _relevant(item, text: str) -> bool:
    from assistant.evaluate.metrics import span_found, span_norm
    from assistant.text import compact

    if item.kind == "span":
        return span_found(span_norm(item.gold), span_norm(text))
    body = compact(text)
    return any(compact(q) and compact(q) in body for q in item.gold)


def examples_of(index, items, embedder, settings, set_name: str, depth: int) -> list[Example]:
    """The training examples of one set (answerable items with gold only)."""
    from assistant.retrieve import Retriever

    retriever = Retriever.from_settings(index, embedder, settings, ranker=None)
    out = []
    for it in items:
        if it.kind == "refuse" or not it.gold:
            continue
        hits = retriever.search(it.query, k=1)
        base = bool(hits) and _relevant(it, hits[0].clause.text)
        fused, dense, lexical = retriever.fused_lists(it.query)
        rows, x = retriever.head_features(it.query, fused, dense, lexical, depth)
        gold = np.array([_relevant(it, index.clauses[r].text) for r in rows], dtype=bool)
        out.append(Example(it.id, set_name, it.fold, x, gold, base))
    return out


def standardise(examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of every feature over the candidates of `examples` (scale 1 for a constant one)."""
    x = np.vstack([e.x for e in examples if len(e.x)])
    scale = x.std(axis=0)
    return x.mean(axis=0), np.where(scale > 1e-9, scale, 1.0)


def pairs(examples: list[Example], mean, scale) -> tuple[np.ndarray, np.ndarray]:
    """(gold − other differences of standardised features, their weights: 1 per question)."""
    diffs, weights = [], []
    for e in examples:
        pos, neg = np.flatnonzero(e.gold), np.flatnonzero(~e.gold)
        if not len(pos) or not len(neg):
            continue  # a head with no gold, or nothing but gold, says nothing about order
        z = (e.x - mean) / scale
        d = (z[pos][:, None, :] - z[neg][None, :, :]).reshape(-1, z.shape[1])
        diffs.append(d)
        weights.append(np.full(len(d), 1.0 / len(d)))
    if not diffs:
        return np.zeros((0, len(mean))), np.zeros(0)
    return np.vstack(diffs), np.concatenate(weights)


def fit(d: np.ndarray, w: np.ndarray, lam: float) -> np.ndarray:
    """Coefficients minimising Σ w·log(1 + exp(−d·β)) + λ/2·|β|² (Newton's method)."""
    beta = np.zeros(d.shape[1])
    for _ in range(NEWTON_STEPS):
        m = d @ beta
        p = 1.0 / (1.0 + np.exp(np.clip(m, -50, 50)))  # σ(−m)
        grad = -(d * (w * p)[:, None]).sum(axis=0) + lam * beta
        hess = (d * (w * p * (1 - p))[:, None]).T @ d + lam * np.eye(d.shape[1])
        step = np.linalg.solve(hess, grad)
        t = 1.0  # halve the step until the loss falls: plain Newton can overshoot on separable heads
        while t > 1e-4 and _loss(d, w, lam, beta - t * step) > _loss(d, w, lam, beta):
            t /= 2
        beta -= t * step
        if np.abs(t * step).max() < 1e-9:
            break
    return beta


def _loss(d: np.ndarray, w: np.ndarray, lam: float, beta: np.ndarray) -> float:
    return float((w * np.logaddexp(0.0, -(d @ beta))).sum() + lam / 2 * beta @ beta)


def without(examples: list[Example], names: tuple[str, ...]) -> list[Example]:
    """The examples with the features `names` left out (for the ablation)."""
    from assistant.rerank import FEATURES

    keep = [i for i, f in enumerate(FEATURES) if f not in names]
    return [replace(e, x=e.x[:, keep]) for e in examples]


def train(examples: list[Example], lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scale, coef) trained on `examples`."""
    mean, scale = standardise(examples)
    d, w = pairs(examples, mean, scale)
    return mean, scale, fit(d, w, lam)


def top_is_gold(e: Example, mean, scale, coef) -> bool:
    """Whether the model ranks a gold clause first in this head."""
    if not len(e.x):
        return False
    return bool(e.gold[int(np.argmax(((e.x - mean) / scale) @ coef))])


def cross_validate(examples: list[Example], lam: float, folds: int) -> list[dict]:
    """Per fold: held-out hit@1 per set of the model trained on the other folds, and of the coverage re-rank."""
    out = []
    names = list(dict.fromkeys(e.set_name for e in examples))
    for f in range(folds):
        train_on = [e for e in examples if e.fold != f]
        mean, scale, coef = train(train_on, lam)
        row = {"fold": f}
        for name in names:
            test = [e for e in examples if e.fold == f and e.set_name == name]
            row[name] = {
                "items": len(test),
                "learned": sum(top_is_gold(e, mean, scale, coef) for e in test) / len(test) if test else 0.0,
                "coverage": sum(e.base_hit for e in test) / len(test) if test else 0.0,
            }
        out.append(row)
    return out


def held_out_mean(rows: list[dict], names: list[str]) -> float:
    """The objective: held-out hit@1 of every item (its fold's model), averaged over the sets."""
    per_set = []
    for name in names:
        n = sum(r[name]["items"] for r in rows)
        per_set.append(sum(r[name]["learned"] * r[name]["items"] for r in rows) / n if n else 0.0)
    return sum(per_set) / len(per_set)


def data_hash(paths: list[Path]) -> str:
    """sha256 (16 hex) of the question files and corpora the model was trained on."""
    from assistant.evaluate.sources import corpus_fingerprint

    h = hashlib.sha256()
    for p in paths:
        h.update(str(Path(p).name).encode())
        h.update(corpus_fingerprint(Path(p)).encode() if Path(p).is_dir() else Path(p).read_bytes())
    return h.hexdigest()[:16]


def run(settings, sets, folds: int = FOLDS, depths: tuple[int, ...] = DEPTHS, cache_root: Path | None = None,
        progress: bool = True) -> dict:
    """Examples of both sets at every depth, the CV over depths and LAMBDAS, the ablation at the chosen
    point, the model on every item; returns the record and the page's data."""
    from tqdm import tqdm

    from assistant.embed import embedder_for
    from assistant.evaluate.cache import CachedEmbedder
    from assistant.evaluate.sources import DEFAULT_CACHE
    from assistant.rerank import FEATURES

    embedder = CachedEmbedder(embedder_for(settings))
    by_depth: dict[int, list[Example]] = {d: [] for d in depths}
    names = []
    for corpus, questions in tqdm(sets, desc="sets", disable=not progress, file=sys.stderr):
        index, items = load_set(corpus, questions, settings, embedder, Path(cache_root or DEFAULT_CACHE))
        for it in items:
            it.fold = fold_of(it.id, folds)
        name = "seed" if corpus is None or Path(corpus).name == "corpus" else Path(questions).parent.name
        names.append(name)
        for d in depths:
            by_depth[d] += examples_of(index, items, embedder, settings, name, d)
    cv = {(d, lam): cross_validate(by_depth[d], lam, folds) for d in depths for lam in LAMBDAS}
    depth, lam = max(cv, key=lambda k: (round(held_out_mean(cv[k], names), 9), -depths.index(k[0]), -LAMBDAS.index(k[1])))
    examples = by_depth[depth]
    ablation = {group: _total(cross_validate(without(examples, fs), lam, folds), names) for group, fs in GROUPS.items()}
    mean, scale, coef = train(examples, lam)
    record = {
        "features": list(FEATURES),
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "coef": [round(float(v), 6) for v in coef],
        "depth": depth,
        "lambda": lam,
        "data": {"sets": [f"{_short(q)} over {_short(c)}" for c, q in sets],
                 "hash": data_hash([p for c, q in sets for p in (q, c) if p is not None]),
                 "questions": len(examples)},
        "basis": "eval/reranker.md",
    }
    return {"model": embedder.name, "record": record, "cv": cv, "names": names, "ablation": ablation}


def _short(path) -> str:
    return "/".join(Path(path).parts[-2:]) if path else "corpus"


def markdown(report: dict) -> str:
    """eval/reranker.md: the cross-validated gain per fold and per set, every λ, the coefficients."""
    names, rec = report["names"], report["record"]
    lines = ["# Learned re-ranker", "",
             f"Written by `python -m assistant train-reranker` for embedding model `{report['model']}`; rerun it to "
             "reproduce this page and the model's entry in `assistant/data/reranker.json`. Method: the module docstring "
             "of `assistant/evaluate/rerank_train.py`.", "",
             f"Data: {'; '.join(rec['data']['sets'])} ({rec['data']['questions']} questions with gold; "
             f"hash {rec['data']['hash']}). Head depth {rec['depth']}; chosen λ {rec['lambda']}.", "",
             "## Held-out hit@1 per fold (model trained on the other folds) vs the coverage re-rank", "",
             "| fold | " + " | ".join(f"{n} items | {n} coverage | {n} learned | {n} gain" for n in names) + " |",
             "|---|" + "---|" * (4 * len(names))]
    rows = report["cv"][(rec["depth"], rec["lambda"])]
    for r in rows + [_total(rows, names)]:
        cells = []
        for n in names:
            s = r[n]
            cells += [str(s["items"]), f"{s['coverage']:.3f}", f"{s['learned']:.3f}", f"{s['learned'] - s['coverage']:+.3f}"]
        lines.append(f"| {r['fold']} | " + " | ".join(cells) + " |")
    lines += ["", "## Every depth and λ (held-out hit@1 over all folds)", "",
              "| depth | λ | " + " | ".join(names) + " | objective |", "|---|---|" + "---|" * (len(names) + 1)]
    for (depth, lam), rows in report["cv"].items():
        t = _total(rows, names)
        lines.append(f"| {depth} | {lam} | " + " | ".join(f"{t[n]['learned']:.3f}" for n in names)
                     + f" | {held_out_mean(rows, names):.3f} |")
    full = _total(report["cv"][(rec["depth"], rec["lambda"])], names)
    lines += ["", "## Ablation: each group of features left out (held-out hit@1 over all folds, change against all features)", "",
              "| left out | " + " | ".join(names) + " |", "|---|" + "---|" * len(names),
              "| nothing (all features) | " + " | ".join(f"{full[n]['learned']:.3f}" for n in names) + " |"]
    for group, t in report["ablation"].items():
        lines.append(f"| {group} | " + " | ".join(f"{t[n]['learned']:.3f} ({t[n]['learned'] - full[n]['learned']:+.3f})"
                                                   for n in names) + " |")
    lines += ["", "## Coefficients (on standardised features)", "", "| feature | coef |", "|---|---|"]
    for f, c in sorted(zip(rec["features"], rec["coef"]), key=lambda fc: -abs(fc[1])):
        lines.append(f"| `{f}` | {c:+.3f} |")
    return "\n".join(lines) + "\n"


def _total(rows: list[dict], names: list[str]) -> dict:
    out = {"fold": "all (each fold held out)"}
    for n in names:
        items = sum(r[n]["items"] for r in rows)
        out[n] = {"items": items, **{k: sum(r[n][k] * r[n]["items"] for r in rows) / items if items else 0.0
                                     for k in ("coverage", "learned")}}
    return out


def write(report: dict, md_path: Path, json_path: Path) -> None:
    """The page and the model's entry in the re-ranker file (other models' entries kept)."""
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(markdown(report), encoding="utf-8")
    update_models_file(json_path, report["model"], report["record"],
                       "Trained by `python -m assistant train-reranker` (assistant/evaluate/rerank_train.py); see eval/reranker.md.",
                       indent=1)


def cli(name: str, argv: list[str]) -> int:
    """`train-reranker [--seed-corpus --seed-questions --outside-corpus --outside-questions --folds --depths --out --table]`."""
    from assistant.config import Settings
    from assistant.rerank import FILE

    parser = argparse.ArgumentParser(prog=f"python -m assistant {name}", description=__doc__.split("\n\n")[0])
    add_set_arguments(parser)
    parser.add_argument("--depths", type=int, nargs="+", default=list(DEPTHS), help="head depths tried (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("eval/reranker.md"))
    parser.add_argument("--table", type=Path, default=Path(__file__).parent.parent / "data" / FILE,
                        help="the re-ranker file the model is written to (default: the package's)")
    args = parser.parse_args(argv)
    report = run(Settings(), sets_of(args), args.folds, tuple(args.depths), args.index_cache)
    write(report, args.out, args.table)
    print(markdown(report))
    print(f"wrote {args.out} and {args.table}", file=sys.stderr)
    return 0
