"""Experiment (issue 17): adapt m3e-small to policy text from a library's own structure, on CPU.

    python -m scripts.adapt_embedder OUT_DIR [--corpus ../shared/extdata/ncp/corpus.jsonl] [--epochs 1]

Each clause of the seed corpus and the given library becomes a pair (its document title and last
heading → its text), and m3e-small is fine-tuned one epoch with in-batch negatives (sentence-transformers'
MultipleNegativesRankingLoss, batch 32, AdamW 2e-5, 128 tokens) in a plain torch loop: about 5 minutes
on 2 cores. Nothing in the service needs it; point ASSISTANT_MODEL at OUT_DIR to measure it:

    ASSISTANT_MODEL=OUT_DIR python -m assistant eval --corpus … --questions … --modes dense hybrid --no-answers

Measured on the outside dev set (331 questions, dense mode, the same int8 runtime): hit@1 .544 → .381,
hit@5 .785 → .722, hit@10 .837 → .782, so it is not kept. Titles and headings are not how people ask:
the model learns to match headlines to their text and loses the question side.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path


def pairs_of(corpora: list[Path | None], settings) -> list[tuple[str, str]]:
    """(title + last heading, clause text) for every clause with a text of 20 characters or more."""
    from assistant.evaluate.sources import documents_from
    from assistant.index import clauses_of

    out = []
    for corpus in corpora:
        clauses, _ = clauses_of(documents_from(corpus, settings))
        for c in clauses:
            heading = c.section.split(" > ")[-1] if c.section and c.section != "前言" else ""
            if len(c.text.strip()) >= 20:
                out.append(((c.doc_title + " " + heading).strip()[:64], c.text.strip()[:256]))
    random.Random(0).shuffle(out)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--corpus", type=Path, default=Path("../shared/extdata/ncp/corpus.jsonl"))
    parser.add_argument("--epochs", type=float, default=1.0)
    args = parser.parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from sentence_transformers import SentenceTransformer, losses

    from assistant.config import Settings
    from assistant.embed import resolve_model_path

    torch.manual_seed(0)
    pairs = pairs_of([None, args.corpus], Settings())
    model = SentenceTransformer(resolve_model_path("m3e-small"), device="cpu")
    model.max_seq_length = 128
    loss_fn = losses.MultipleNegativesRankingLoss(model)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
    batch = 32
    model.train()
    for step in range(int(len(pairs) / batch * args.epochs)):
        start = (step * batch) % len(pairs)
        part = pairs[start : start + batch]
        if len(part) < 4:
            continue
        loss = loss_fn([model.tokenize([a for a, _ in part]), model.tokenize([p for _, p in part])], None)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save(str(args.out))
    print(f"{len(pairs)} pairs; saved {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
