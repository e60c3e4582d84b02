"""Text utilities shared by every stage: normalisation, sentence splitting, the one tokenize().

Chinese policy text quirks handled here: full-width forms (ＮＦＫＣ), scraping noise such as
spaces inside numbers ("2020 年", "30 %"), and domain words jieba does not know
(专精特新, 小巨人, 杀手锏 …) or abbreviations enterprises type (高企, 新三板).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from importlib import resources

_SPACE_IN_NUMBER = re.compile(r"(?<=[0-9])\s+(?=[0-9年月日%万元亿家个项件人吨倍．.:：—\-~～至])|(?<=[年月〔〕：:])\s+(?=[0-9])|(?<=[0-9〕])\s+(?=[号〕])")
_SPACES = re.compile(r"[ \t\u3000\xa0]+")
_SENTENCE_END = re.compile(r"(?<=[。；;！？!?])")
_PUNCT = re.compile(r"^[\W_]+$", re.UNICODE)

STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 么 是 在 和 与 及 或 对 为 把 被 给 有 我 我们 你 你们 他 她 它 我司 公司 企业的 "
    "什么 怎么 怎样 如何 哪些 哪个 多少 几 请问 请 问 一下 能 能够 可以 可 会 要 想 想问 那 那么 这 这个 那个 "
    "吗？ 呢？ 都 也 还 就 又 再 从 到 以 于 其 之 等 各 每 该 并 且 而 但 若 如 则 即 中 上 下 内 "
    "哪里 谁 哪 啥 咋 么样 一些 有关 相关 关于 规定 政策 "
    # colloquial filler enterprises type ("我们刚评上高企，能拿多少钱？")
    "刚 刚刚 拿 钱 多少钱 能拿 咱 咱们 俺 俺们 呗 嘛 哈".split()
)


def normalize(text: str) -> str:
    """NFKC, spaces inside numbers removed, whitespace runs collapsed: the form used for matching."""
    text = unicodedata.normalize("NFKC", text)
    text = _SPACE_IN_NUMBER.sub("", text)
    text = _SPACES.sub(" ", text)
    return text.strip()


def compact(text: str) -> str:
    """NFKC with all whitespace removed: for substring checks that must ignore scraping noise."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def split_sentences(text: str) -> list[str]:
    """Split at 。；！？ (and line breaks), keeping the punctuation with its sentence."""
    out: list[str] = []
    for line in text.splitlines():
        for part in _SENTENCE_END.split(line):
            if part.strip():
                out.append(part)
    return out


@lru_cache(maxsize=1)
def synonyms() -> dict[str, str]:
    """Alias → canonical form, from the packaged synonyms table."""
    table: dict[str, str] = {}
    raw = resources.files("assistant.data").joinpath("synonyms.tsv").read_text(encoding="utf-8")
    for line in raw.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        alias, canonical = line.split("\t")
        table[alias.strip()] = canonical.strip()
    return table


@lru_cache(maxsize=1)
def _alias_pairs() -> tuple[tuple[str, str], ...]:
    return tuple((a, synonyms()[a].replace(" ", "")) for a in sorted(synonyms(), key=len, reverse=True))


def expand_aliases(text: str) -> str:
    """Rewrite abbreviations to their canonical wording (高企 → 高新技术企业), longest alias first."""
    for alias, canonical in _alias_pairs():
        if alias in text and canonical not in text:
            text = text.replace(alias, canonical)
    return text


@lru_cache(maxsize=1)
def colloquial() -> tuple[tuple[str, str], ...]:
    """(colloquial wording, the policy terms it means), longest wording first (data/colloquial.tsv)."""
    raw = resources.files("assistant.data").joinpath("colloquial.tsv").read_text(encoding="utf-8")
    pairs = []
    for line in raw.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        phrase, _, terms = line.partition("\t")
        pairs.append((phrase.strip(), terms.strip()))
    return tuple(sorted(pairs, key=lambda p: -len(p[0])))


def expand_query(query: str) -> str:
    """The question with the policy terms its colloquial wording means appended (补几块钱 → 补贴 金额):
    the clause says 补贴金额 where the enterprise says 补几块钱. A term the question already holds is
    not added again; a wording inside one longer word does not count (小企业 in 中小企业), nor one
    inside a longer wording that matched."""
    text = normalize(query)
    if not any(phrase in text for phrase, _ in colloquial()):
        return query
    words = [(start, end) for _, start, end in _tokenizer().tokenize(text) if end - start > 1]

    def inside_word(i: int, j: int) -> bool:
        return any(s <= i and j <= e and e - s > j - i for s, e in words)

    taken: list[tuple[int, int]] = []
    added: list[str] = []
    for phrase, terms in colloquial():
        i = text.find(phrase)
        while i >= 0 and (inside_word(i, i + len(phrase)) or any(s <= i < e for s, e in taken)):
            i = text.find(phrase, i + 1)
        if i < 0:
            continue
        taken.append((i, i + len(phrase)))
        added += [t for t in terms.split() if t not in text and t not in added]
    return f"{query} {' '.join(added)}" if added else query


_jieba = None
_jieba_lock = threading.Lock()


def _tokenizer():
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            import logging

            import jieba

            jieba.setLogLevel(logging.WARNING)
            tok = jieba.Tokenizer()
            with resources.as_file(resources.files("assistant.data").joinpath("userdict.txt")) as p:
                tok.load_userdict(str(p))
            for alias in synonyms():
                tok.add_word(alias, 20000)
            # Place names are whole tokens (海淀区, not 海淀/区), taken from the gazetteer of every
            # province, city and county rather than listed: a question's place then matches the
            # clause's place in BM25 for any library.
            from assistant.vocab import gazetteer

            for name in gazetteer().names():
                if len(name) >= 3 and name[-1] in "省市区县州盟旗":
                    tok.add_word(name, 30000, "ns")
            _jieba = tok
    return _jieba


def tokenize(text: str) -> list[str]:
    """The one tokenizer for corpus and queries: normalise, jieba with the domain dictionary,
    map aliases to canonical tokens, drop punctuation and stop words."""
    syn = synonyms()
    tokens: list[str] = []
    for tok in _tokenizer().lcut(normalize(text).lower()):
        tok = tok.strip()
        if not tok or _PUNCT.match(tok):
            continue
        for part in syn.get(tok, tok).split():
            if part not in STOPWORDS:
                tokens.append(part)
    return tokens


def match_form(text: str) -> str:
    """The form in which question tokens are looked up in a text: normalised, aliases expanded, lower case."""
    return expand_aliases(normalize(text)).lower()


def token_weights(question: str, idf: dict[str, float] | None = None, drop: tuple[str, ...] = ()) -> dict[str, float]:
    """The question's content tokens, each weighted by how rare it is in the library (mean weight 1).

    "疫情", "企业" or "政策" occur in most clauses of a library and say little about which sentence
    answers; "展会" or "场租" say a lot. Without an idf table every token weighs 1."""
    toks = [t for t in dict.fromkeys(tokenize(question)) if t not in drop and (len(t) > 1 or t.isdigit())]
    if not toks:
        return {}
    if not idf:
        return {t: 1.0 for t in toks}
    top = getattr(idf, "top", None) or max(idf.values(), default=1.0)
    raw = {t: idf.get(t, top) for t in toks}
    mean = sum(raw.values()) / len(raw) or 1.0
    return {t: w / mean for t, w in raw.items()}


def weighted_coverage(weights: dict[str, float], text: str) -> float:
    """Share of the weighted tokens that a text (in match_form) contains; 0 with no tokens."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in text) / total if total else 0.0
