"""Curated answers, the paraphrase rule as calibrated (assistant/data/curated.json, eval/curated.md): re-measured
here on the seed test set, the outside dev set and the written paraphrases, so a change to the match or the
vocabulary that breaks "never to unrelated questions, always to paraphrases" fails a test."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared/extdata/ncp/dev.jsonl"


def _measure(embedder):
    from assistant.corpus import load_corpus
    from assistant.curated_calibrate import PARAPHRASES, SEED, measure, rates
    from assistant.paraphrase import rule_for

    if not DEV.exists():
        pytest.skip(f"the outside dev set is not at {DEV}")
    docs, _ = load_corpus(ROOT / "corpus")
    regions = sorted({d.region for d in docs if d.region})
    rule = rule_for(embedder.name)
    assert rule.calibrated, f"no calibrated rule for {embedder.name}"
    return rates(measure(embedder, ROOT / SEED, DEV, ROOT / PARAPHRASES, regions), rule)


def test_hash_rule_serves_no_unrelated_question(hash_embedder):
    table = _measure(hash_embedder)
    assert table["unrelated seed"]["served"] == 0 and table["unrelated seed"]["pairs"] > 70_000
    assert table["unrelated dev"]["served"] == 0 and table["unrelated dev"]["pairs"] > 150_000
    assert table["paraphrase"]["served"] >= 45  # the hash embedder sees characters only; the real model serves all


@pytest.mark.model
def test_real_model_rule_never_unrelated_always_paraphrases(real_embedder):
    table = _measure(real_embedder)
    assert table["unrelated seed"]["served"] == 0 and table["unrelated dev"]["served"] == 0
    assert table["paraphrase"]["served"] == table["paraphrase"]["pairs"] == 50
