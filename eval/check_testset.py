#!/usr/bin/env python3
"""Validate the hand-written evaluation set eval/testset.jsonl against corpus/.

Standalone (stdlib only). Usage:

    python3 eval/check_testset.py [TESTSET] [--corpus DIR] [--strict]

Checks: every line parses; fields present and typed; ids unique and well formed;
every gold quote occurs in a corpus file and every fact in the file(s) its quotes
come from (both compared after NFKC and with all whitespace removed, because the
scraped texts put spaces inside numbers: "2020 年", "30% "); refusals carry no
quotes or facts; id prefix, doc tags and quote files agree. Prints counts per tag.
Exits 1 with one line per problem. --strict also requires each quote to be a
character-for-character substring of the raw file (no normalisation).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_TESTSET = HERE / "testset.jsonl"
DEFAULT_CORPUS = HERE.parent / "corpus"

DOC_TAGS = ("jizhou", "baodi", "lutai", "xiqing", "tianjin")
ALLOWED_TAGS = {
    "amount", "count", "department", "condition", "place", "doc_number", "date",
    "cross_doc", "paraphrase", "abbrev", "typo", "refusal", "out_of_scope",
    "region_not_covered", "not_in_text", "multi_turn", *DOC_TAGS,
}
# Which region each seed file belongs to; files not listed here are still searched
# for quotes, only the doc-tag consistency check skips them.
FILE_DOC_TAG = {
    "000_6083bda8034c3915.txt": "jizhou",
    "001_974b9f2b4195c5d8.txt": "baodi",
    "002_c7db8ba485af60f0.txt": "lutai",
    "003_bfbcccc9aab06e22.txt": "xiqing",
    "004_28e46f3fd46f944c.txt": "tianjin",
}
PREFIX_DOC_TAG = {"jz": "jizhou", "bd": "baodi", "lt": "lutai", "xq": "xiqing", "tj": "tianjin"}
ID_RE = re.compile(r"^(jz|bd|lt|xq|tj|x|r|c)-\d{3}$")
FIELDS = {"id", "question", "turns", "gold_quotes", "relevant", "facts", "refuse", "tags"}
# Minimum mix asked for when the set was commissioned: reported, not enforced.
MINIMUMS = {"single_doc": 70, "cross_doc": 12, "paraphrase/abbrev/typo": 20, "refusal": 16, "multi_turn": 12}


def norm(text: str) -> str:
    """NFKC-normalise and drop all whitespace (the scraped files have spaces inside numbers)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def load_corpus(corpus_dir: Path) -> dict[str, str]:
    files = sorted(p for p in corpus_dir.glob("*.txt") if p.is_file())
    if not files:
        raise SystemExit(f"error: no *.txt files in corpus directory {corpus_dir}")
    return {p.name: p.read_text(encoding="utf-8") for p in files}


def check(testset: Path, corpus_dir: Path, strict: bool) -> int:
    raw = load_corpus(corpus_dir)
    normed = {name: norm(text) for name, text in raw.items()}
    errors: list[str] = []
    warnings: list[str] = []
    seen_ids: dict[str, int] = {}
    tag_counts: Counter[str] = Counter()
    mix: Counter[str] = Counter()
    n_items = 0

    if not testset.is_file():
        raise SystemExit(f"error: test set not found: {testset}")
    for lineno, line in enumerate(testset.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: not valid JSON ({exc})")
            continue
        if not isinstance(item, dict):
            errors.append(f"{where}: not a JSON object")
            continue
        n_items += 1
        iid = item.get("id")
        if isinstance(iid, str):
            where = f"line {lineno} ({iid})"
        err = lambda msg: errors.append(f"{where}: {msg}")  # noqa: E731

        # ---- fields and types
        if not isinstance(iid, str) or not ID_RE.match(iid):
            err(f"id must be a string like 'jz-001', 'x-003', 'r-005', 'c-002'; got {iid!r}")
            iid = None
        elif iid in seen_ids:
            err(f"duplicate id (first on line {seen_ids[iid]})")
        else:
            seen_ids[iid] = lineno
        unknown = set(item) - FIELDS
        if unknown:
            warnings.append(f"{where}: unknown field(s) {sorted(unknown)}")
        has_q, has_t = "question" in item, "turns" in item
        if has_q == has_t:
            err("needs exactly one of 'question' (single turn) or 'turns' (conversation)")
        elif has_q and not (isinstance(item["question"], str) and item["question"].strip()):
            err("'question' must be a non-empty string")
        elif has_t and not (is_str_list(item["turns"]) and len(item["turns"]) >= 2):
            err("'turns' must be a list of at least 2 non-empty strings")
        for key in ("gold_quotes", "facts", "tags"):
            if key not in item:
                err(f"missing field '{key}'")
            elif not (isinstance(item[key], list) and all(isinstance(v, str) and v.strip() for v in item[key])):
                err(f"'{key}' must be a list of non-empty strings")
        if "relevant" not in item:
            err("missing field 'relevant' (use [])")
        elif not (isinstance(item["relevant"], list) and all(isinstance(v, str) for v in item["relevant"])):
            err("'relevant' must be a list of clause-id strings (normally [])")
        if not isinstance(item.get("refuse"), bool):
            err("'refuse' must be true or false")
        if not all(is_str_list(item.get(k)) for k in ("gold_quotes", "facts", "tags")):
            continue  # already reported; the content checks below need lists of strings
        quotes, facts, tags = item["gold_quotes"], item["facts"], item["tags"]
        refuse = item.get("refuse") is True

        if not tags:
            err("'tags' is empty")
        bad_tags = [t for t in tags if t not in ALLOWED_TAGS]
        if bad_tags:
            err(f"unknown tag(s) {bad_tags}; allowed: {sorted(ALLOWED_TAGS)}")
        if len(set(tags)) != len(tags):
            warnings.append(f"{where}: repeated tag")
        tag_counts.update(set(tags))

        # ---- refusals
        if refuse:
            if quotes or facts:
                err("a refusal (refuse: true) must have empty gold_quotes and facts")
            if "refusal" not in tags:
                err("refusal item lacks the 'refusal' tag")
            if not {"out_of_scope", "region_not_covered", "not_in_text"} & set(tags):
                warnings.append(f"{where}: refusal without out_of_scope/region_not_covered/not_in_text")
        else:
            if "refusal" in tags:
                err("tag 'refusal' on an item with refuse: false")
            if not quotes:
                err("an answerable item needs at least one gold quote")

        # ---- quotes: where do they come from
        quote_files: list[str] = []
        for q in quotes:
            if "\n" in q or "\r" in q:
                err(f"quote spans a line break: {q!r}")
            nq = norm(q)
            if not nq:
                err(f"quote is only whitespace: {q!r}")
                continue
            hits = [name for name, text in normed.items() if nq in text]
            if not hits:
                err(f"gold quote not found in any corpus file: {q!r}")
                continue
            occurrences = sum(normed[name].count(nq) for name in hits)
            if occurrences > 1:
                warnings.append(f"{where}: quote occurs {occurrences} times in corpus {hits}, may not identify one clause: {q!r}")
            if not any(q in raw[name] for name in hits):
                msg = f"quote matches only after normalisation, not character-for-character: {q!r}"
                (errors if strict else warnings).append(f"{where}: {msg}")
            if not 4 <= len(nq) <= 60:
                warnings.append(f"{where}: quote length {len(nq)} outside 4–60: {q!r}")
            quote_files.extend(h for h in hits if h not in quote_files)

        # ---- facts: must occur in the file(s) the quotes come from
        if quote_files:
            for f in facts:
                nf = norm(f)
                if not any(nf in normed[name] for name in quote_files):
                    err(f"fact {f!r} not found in the quoted file(s) {quote_files}")
        elif facts and not refuse:
            err("facts given but no quote could be located to check them against")

        # ---- consistency of id prefix, tags and quote files
        prefix = iid.split("-")[0] if iid else None
        quote_docs = {FILE_DOC_TAG[f] for f in quote_files if f in FILE_DOC_TAG}
        doc_tags = {t for t in tags if t in DOC_TAGS}
        if not refuse and quote_docs and quote_docs != doc_tags:
            err(f"doc tags {sorted(doc_tags)} do not match the quoted documents {sorted(quote_docs)}")
        if prefix in PREFIX_DOC_TAG and quote_docs and quote_docs != {PREFIX_DOC_TAG[prefix]}:
            err(f"id prefix '{prefix}' but quotes come from {sorted(quote_docs)}")
        if prefix == "x" and (len(quote_docs) < 2 or "cross_doc" not in tags):
            err("a cross-document item ('x-') needs quotes from >= 2 documents and the 'cross_doc' tag")
        if "cross_doc" in tags and prefix != "x":
            warnings.append(f"{where}: 'cross_doc' tag on an id not starting with 'x-'")
        if prefix == "r" and not refuse:
            err("'r-' items must have refuse: true")
        if (prefix == "c") != has_t:
            err("conversations (with 'turns') use ids 'c-NNN', and only they do")
        if has_t != ("multi_turn" in tags):
            err("the 'multi_turn' tag goes with 'turns', and only with it")

        # ---- the commissioned mix
        if refuse:
            mix["refusal"] += 1
        if has_t:
            mix["multi_turn"] += 1
        elif prefix == "x":
            mix["cross_doc"] += 1
        elif prefix in PREFIX_DOC_TAG:
            if {"paraphrase", "abbrev", "typo"} & set(tags):
                mix["paraphrase/abbrev/typo"] += 1
            else:
                mix["single_doc"] += 1

    for w in warnings:
        print(f"warning: {w}")
    print(f"\n{testset}: {n_items} items, {len(seen_ids)} unique ids, corpus {len(raw)} files")
    print("items per tag:")
    for tag, n in sorted(tag_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {tag:20s} {n}")
    print("mix (single-doc = plain wording, one document):")
    for key, minimum in MINIMUMS.items():
        flag = "" if mix[key] >= minimum else f"   <-- below the {minimum} asked for"
        print(f"  {key:24s} {mix[key]}{flag}")
    if errors:
        print(f"\n{len(errors)} problem(s):", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 1
    print("\nOK")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("testset", nargs="?", type=Path, default=DEFAULT_TESTSET)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--strict", action="store_true", help="quotes must match the raw file character for character")
    args = ap.parse_args(argv)
    return check(args.testset, args.corpus, args.strict)


if __name__ == "__main__":
    sys.exit(main())
