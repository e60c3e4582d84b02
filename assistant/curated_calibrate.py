"""Curated answers, calibration: the paraphrase rule's weight and threshold, chosen on both question sets.

`python -m assistant.curated_calibrate [--embedder hash|sentence-transformers]` makes every question of
the seed test set (single-turn, answerable) and of the outside dev set a curated question in turn and
asks every other question of both sets against it (a multi-turn item with the query its last turn
resolves to), plus the paraphrases written in eval/curated_paraphrases.jsonl:

- unrelated: a pair asking different things (seed: other gold quotes; dev: another gold answer; the
  two sets never ask the same) — a curated answer must never be served to it;
- paraphrase: a written paraphrase of the curated question — it must always be served;
- the seed set's own colloquial variants (another item with the same gold quotes: "刚评上高企…")
  are reported, not targeted: many are rewordings far beyond a close paraphrase; so are overlapping
  pairs (some gold quotes shared: a follow-up asking one of the curated question's two things), which
  are neither unrelated nor the same question.

For each weight of the grid the threshold is the middle of the gap between the highest unrelated score
and the lowest paraphrase score (guards applied first); the weight with the widest gap wins. Without a
gap, the lowest threshold that serves no unrelated pair. The table goes to eval/curated.md and the rule to
assistant/data/curated.json under the embedder's name.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.paraphrase import FILE, Form, Rule, compatible, form_of, lexical

WEIGHTS = tuple(round(w * 0.05, 2) for w in range(21))
SEED = Path("eval/testset.jsonl")
PARAPHRASES = Path("eval/curated_paraphrases.jsonl")
OUTSIDE = (Path("../shared/extdata/ncp/dev.jsonl"), Path("../../shared/extdata/ncp/dev.jsonl"))


@dataclass
class Pairs:
    """Dense and lexical signals of every pair of one kind, compatible pairs only (the guards come first)."""

    dense: list[float] = field(default_factory=list)
    lexical: list[float] = field(default_factory=list)
    blocked: int = 0  # pairs the guards refuse whatever their score
    total: int = 0
    labels: list[str] = field(default_factory=list)

    def add(self, dense: float, lex: float, ok: bool, label: str = "") -> None:
        self.total += 1
        if ok:
            self.dense.append(dense)
            self.lexical.append(lex)
            self.labels.append(label)
        else:
            self.blocked += 1

    def scores(self, weight: float) -> np.ndarray:
        return weight * np.array(self.dense) + (1 - weight) * np.array(self.lexical)

    def served(self, rule: Rule) -> int:
        return int((self.scores(rule.weight) >= rule.threshold).sum()) if self.dense else 0


@dataclass(frozen=True)
class Question:
    key: str  # what decides "the same question": the seed's gold quotes, the dev item's answer
    text: str
    set: str
    quotes: frozenset = frozenset()


def _seed_questions(path: Path) -> tuple[list[Question], list[Question], dict[str, str]]:
    from assistant.evaluate.items import load_questions

    curated, asked, by_id = [], [], {}
    for item in load_questions(path):
        if item.get("turns"):
            continue
        key = "seed:" + ("refuse:" + item["id"] if item.get("refuse") else "|".join(sorted(item.get("gold_quotes", []))))
        quotes = frozenset(item.get("gold_quotes", []))
        asked.append(Question(key, item["question"], "seed", quotes))
        if not item.get("refuse") and item.get("gold_quotes"):
            curated.append(Question(key, item["question"], "seed", quotes))
            by_id[item["id"]] = item["question"]
    return curated, asked, by_id


def _dev_questions(path: Path) -> tuple[list[Question], dict[str, str]]:
    from assistant.evaluate.items import load_questions

    items = load_questions(path)
    return [Question("dev:" + i["answer"], i["question"], "dev") for i in items], {i["id"]: i["question"] for i in items}


def measure(embedder, seed: Path, dev: Path, paraphrases: Path, regions) -> dict[str, Pairs]:
    """The signals of every unrelated pair (per set asked), paraphrase pair and seed variant pair."""
    seed_curated, seed_asked, seed_ids = _seed_questions(seed)
    dev_all, dev_ids = _dev_questions(dev)
    curated = seed_curated + dev_all
    asked = seed_asked + dev_all
    written = [json.loads(line) for line in paraphrases.read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = {**seed_ids, **dev_ids}
    texts = sorted({q.text for q in curated + asked} | {w["paraphrase"] for w in written})
    vectors = dict(zip(texts, embedder.encode(texts)))
    forms: dict[str, Form] = {t: form_of(t, regions) for t in texts}
    unit = {t: v / (np.linalg.norm(v) or 1.0) for t, v in vectors.items()}

    def pair(a: str, b: str) -> tuple[float, float, bool]:
        return float(unit[a] @ unit[b]), lexical(forms[a], forms[b]), compatible(forms[a], forms[b])

    out = {"unrelated seed": Pairs(), "unrelated dev": Pairs(), "paraphrase": Pairs(), "seed variant": Pairs(),
           "seed overlapping": Pairs()}
    for c in curated:
        for q in asked:
            if q.text == c.text:
                continue
            kind = _kind(c, q)
            if kind:
                out[kind].add(*pair(c.text, q.text), label=f"{c.text} ~ {q.text}")
    for w in written:
        out["paraphrase"].add(*pair(ids[w["id"]], w["paraphrase"]), label=f"{ids[w['id']]} ~ {w['paraphrase']}")
    return out


def _kind(c: Question, q: Question) -> str | None:
    if q.key == c.key:
        return "seed variant" if q.set == "seed" else None
    if c.quotes & q.quotes:
        return "seed overlapping"
    return f"unrelated {q.set}"


def choose(pairs: dict[str, Pairs]) -> tuple[Rule, float]:
    """The weight serving the most paraphrases at a threshold serving no unrelated pair, then the widest gap
    between the two; the threshold is mid-gap when there is one. Returns (rule, gap)."""
    best: tuple[tuple, Rule, float] | None = None
    for w in WEIGHTS:
        worst_unrelated = max((float(p.scores(w).max()) for k, p in pairs.items() if k.startswith("unrelated") and p.dense),
                              default=0.0)
        para = pairs["paraphrase"].scores(w)
        lowest = float(para.min()) if len(para) else 1.0
        gap = lowest - worst_unrelated
        threshold = (lowest + worst_unrelated) / 2 if gap > 0 else worst_unrelated + 1e-3
        served = int((para >= threshold).sum())
        if best is None or (served, gap) > best[0]:
            best = ((served, gap), Rule(w, round(threshold, 4), True), gap)
    return best[1], best[2]


def rates(pairs: dict[str, Pairs], rule: Rule) -> dict[str, dict]:
    """How many pairs of each kind the rule serves."""
    return {k: {"served": p.served(rule), "pairs": p.total, "blocked_by_guards": p.blocked} for k, p in pairs.items()}


def _report(model: str, rule: Rule, gap: float, table: dict, pairs: dict[str, Pairs]) -> str:
    lines = [f"# Curated answers: paraphrase-match calibration ({model})", "",
             f"Rule: score = {rule.weight} × dense cosine + {round(1 - rule.weight, 2)} × lexical (bigram & token Dice); "
             f"served when the guards pass (same numbers and terms, nested places) and score ≥ **{rule.threshold}**.",
             f"Gap between the lowest paraphrase score and the highest unrelated score: {gap:+.4f}.", "",
             "| pairs | served | of | refused by the guards |", "|---|---|---|---|"]
    for k, r in table.items():
        lines.append(f"| {k} | {r['served']} | {r['pairs']} | {r['blocked_by_guards']} |")
    closest = sorted(zip(pairs["unrelated seed"].scores(rule.weight), pairs["unrelated seed"].labels), reverse=True)[:5]
    lines += ["", "Closest unrelated seed pairs:", ""] + [f"- {s:.3f} {label}" for s, label in closest]
    weakest = sorted(zip(pairs["paraphrase"].scores(rule.weight), pairs["paraphrase"].labels))[:5]
    lines += ["", "Weakest paraphrases:", ""] + [f"- {s:.3f} {label}" for s, label in weakest]
    missed = [label for s, label in zip(pairs["seed variant"].scores(rule.weight), pairs["seed variant"].labels)
              if s < rule.threshold]
    lines += ["", f"Seed variants not served ({len(missed)}; colloquial rewordings, reported only):", ""]
    lines += [f"- {label}" for label in missed[:40]]
    return "\n".join(lines) + "\n"


def _write_rule(model: str, rule: Rule, gap: float, table: dict) -> Path:
    path = Path(__file__).parent / "data" / FILE
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"models": {}}
    data["models"][model] = {"weight": rule.weight, "threshold": rule.threshold, "gap": round(gap, 4), "rates": table}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Measure, choose, and write the rule and its report."""
    from assistant.config import Settings
    from assistant.corpus import load_corpus
    from assistant.embed import embedder_for

    parser = argparse.ArgumentParser(prog="python -m assistant.curated_calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", choices=["hash", "sentence-transformers"])
    parser.add_argument("--seed", type=Path, default=SEED)
    parser.add_argument("--dev", type=Path, default=next((p for p in OUTSIDE if p.exists()), OUTSIDE[0]))
    parser.add_argument("--paraphrases", type=Path, default=PARAPHRASES)
    parser.add_argument("--out", type=Path, default=Path("eval/curated.md"))
    args = parser.parse_args(argv)
    settings = Settings(**({"embedder": args.embedder} if args.embedder else {}))
    embedder = embedder_for(settings)
    docs, _ = load_corpus(Path(settings.corpus_dir))
    regions = sorted({d.region for d in docs if d.region})
    pairs = measure(embedder, args.seed, args.dev, args.paraphrases, regions)
    rule, gap = choose(pairs)
    table = rates(pairs, rule)
    report = _report(embedder.name, rule, gap, table, pairs)
    out = args.out if embedder.name.startswith("m3e") else args.out.with_name(f"curated-{embedder.name}.md")
    out.write_text(report, encoding="utf-8")
    print(report)
    print(f"wrote {_write_rule(embedder.name, rule, gap, table)} and {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
