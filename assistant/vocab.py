"""Vocabulary: the one loader of domain knowledge kept as data (shared by every stage).

Word lists live in plain text files under `assistant/data/` (one entry a line, `#` comments,
tab-separated columns for tables); grammar such as numbering markers stays in code. Places come
from jionlp's gazetteer of every province, city and county (imported here only, lazily), so no
stage keeps a list of place names of its own.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def read_lines(name: str) -> tuple[str, ...]:
    """The entries of a data file: stripped lines, blank lines and `#` comments dropped."""
    raw = resources.files("assistant.data").joinpath(name).read_text(encoding="utf-8")
    out = []
    for line in raw.splitlines():
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            out.append(line)
    return tuple(out)


@lru_cache(maxsize=None)
def read_table(name: str) -> dict[str, str]:
    """A two-column tab-separated data file as a dict (first column → second)."""
    table: dict[str, str] = {}
    raw = resources.files("assistant.data").joinpath(name).read_text(encoding="utf-8")
    for line in raw.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("\t")
        table[key.strip()] = value.strip()
    return table


def data_path(name: str):
    """A context manager giving a real file path for a data file (for libraries that want a path)."""
    return resources.as_file(resources.files("assistant.data").joinpath(name))


@lru_cache(maxsize=None)
def words(name: str) -> tuple[str, ...]:
    """The entries of a word-list file, longest first (so alternations prefer the longer word)."""
    return tuple(sorted(read_lines(name), key=len, reverse=True))


@lru_cache(maxsize=None)
def pattern(name: str) -> re.Pattern:
    """A literal alternation of a word list (longest first)."""
    return re.compile("|".join(re.escape(w) for w in words(name)))


# -- places ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Place:
    """One administrative place: its full name and its path from the province down (江西省, 南昌市, 东湖区)."""

    name: str  # the full name, e.g. 南充市
    path: tuple[str, ...]  # e.g. ("四川省", "南充市")
    level: str  # 省 | 市 | 县

    @property
    def full(self) -> str:
        """The path joined, the province not repeated for municipalities (北京市海淀区)."""
        parts = list(dict.fromkeys(self.path))
        return "".join(parts)


_SUFFIX = re.compile(r"(?:省|市|自治区|特别行政区|自治州|地区|盟|县|区|自治县|旗|新区|经济技术开发区|经济开发区|开发区)$")
_gaz_lock = threading.Lock()


class Gazetteer:
    """Every Chinese province, city and county with the short names a text may use for it.

    Provinces and cities are found by full name or alias (江西, 南充); counties by full name only
    (海淀区), since bare county aliases are often ordinary words (新建, 和平, 平安).
    """

    def __init__(self, places: dict[str, list[Place]]):
        self._by_name = places
        self._lengths = sorted({len(k) for k in places}, reverse=True)

    @classmethod
    def from_jionlp(cls) -> "Gazetteer":
        import logging
        import os
        import sys

        os.environ.setdefault("JIONLP_QUIET", "1")
        stdout = sys.stdout
        try:
            sys.stdout = open(os.devnull, "w")  # jionlp prints a banner on import
            import jionlp
        finally:
            sys.stdout.close()
            sys.stdout = stdout
        logging.getLogger("jionlp").setLevel(logging.ERROR)
        tree = jionlp.china_location_loader(detail=False)
        places: dict[str, list[Place]] = {}

        def add(key: str, place: Place) -> None:
            if len(key) >= 2:
                bucket = places.setdefault(key, [])
                if place not in bucket:
                    bucket.append(place)

        def aliases(node: dict) -> list[str]:
            a = node.get("_alias") or []
            return [a] if isinstance(a, str) else list(a)

        def walk(node: dict, path: tuple[str, ...]) -> None:
            level = ("省", "市", "县")[len(path)]
            for name, child in node.items():
                if name.startswith("_"):  # _full_name, _alias, _admin_code
                    continue
                place = Place(name, path + (name,), level)
                add(name, place)
                if level != "县":  # counties by full name only (see the class docstring)
                    for a in aliases(child):
                        add(a, place)
                    walk(child, path + (name,))

        walk(tree, ())
        return cls(places)

    def lookup(self, name: str) -> list[Place]:
        """The places a name may refer to (several for 朝阳区, 西湖区 …)."""
        return list(self._by_name.get(name, ()))

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """Every place name in a text as (start, end, name), longest match first at each position,
        non-overlapping, left to right. Linear: a dictionary probe per position and length. Terms
        that contain a place but do not name a region (上海证券交易所, data/not_places.txt) are skipped."""
        text = blank_not_places(text)
        out = []
        i, n = 0, len(text)
        while i < n:
            for length in self._lengths:
                if i + length <= n and text[i : i + length] in self._by_name:
                    out.append((i, i + length, text[i : i + length]))
                    i += length
                    break
            else:
                i += 1
        return out

    def names(self) -> list[str]:
        """Every name the gazetteer knows."""
        return list(self._by_name)


_gazetteer: Gazetteer | None = None


def gazetteer() -> Gazetteer:
    """The process-wide gazetteer (built once from jionlp on first use)."""
    global _gazetteer
    with _gaz_lock:
        if _gazetteer is None:
            _gazetteer = Gazetteer.from_jionlp()
    return _gazetteer


def short_place(name: str) -> str:
    """A place name without its administrative suffix (江西省 → 江西, 海淀区 → 海淀)."""
    short = _SUFFIX.sub("", name)
    return short if len(short) >= 2 else name


def blank_not_places(text: str) -> str:
    """The text with every term that contains a place but names none (上海证券交易所, 中国人民银行:
    data/not_places.txt) blanked to spaces of the same length, so positions stay valid. Every pass
    that looks for places in a question or a clause reads the text through this."""
    for term in words("not_places.txt"):
        if term in text:
            text = text.replace(term, " " * len(term))
    return text


# -- corpus regions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Region:
    """A corpus region and the short names a question may use for it."""

    name: str
    aliases: tuple[str, ...]


def region_aliases(regions: list[str]) -> list[Region]:
    """Short names for each corpus region: 北京市海淀区 → 海淀区, 海淀; 河北省廊坊市龙河经济开发区 → 龙河 …"""
    out = []
    for name in regions:
        parts = re.findall(r"[\u4e00-\u9fff]+?(?:省|自治区|市|区|县|经济开发区|开发区|新区)", name) or [name]
        # a division these suffixes do not end (云南省大理白族自治州, …盟, …地区) is the name's last part
        # itself: the province before it must not become the alias of the whole name
        rest = name[len("".join(parts)):] if name.startswith("".join(parts)) else ""
        last = rest or parts[-1]
        aliases = {name, last}
        aliases.add(short_place(last))
        if last.endswith("经济开发区"):
            aliases.add(last[: -len("经济开发区")] + "开发区")
        out.append(Region(name, tuple(sorted(aliases, key=len, reverse=True))))
    return out


def locate(name: str, library_regions: Iterable[str]) -> tuple[str, ...]:
    """Where a company said to be in `name` is registered, as full region paths, province first.

    A library region's own short names are tried first (海淀 → 北京市海淀区, 龙河 → 河北省廊坊市龙河经济开发区);
    otherwise the gazetteer (唐山 → 河北省唐山市, a place the library may hold no document of), where a
    name that fits several places gives each. When neither knows the name, the shortest library
    regions containing it are taken, so an unusual spelling still finds its documents.
    """
    name = (name or "").strip()
    if not name:
        return ()
    regions = [r for r in dict.fromkeys(library_regions) if r]
    found = [r.name for r in region_aliases(regions) if name in r.aliases]
    for candidate in (name, *(name + s for s in ("省", "市", "区", "县"))):
        if found:
            break
        found = [p.full for p in gazetteer().lookup(candidate)]
    if not found:
        found = [r for r in regions if name in r]
    found = list(dict.fromkeys(found))
    # the widest of nested ones: "天津" names the city, not each of its districts
    return tuple(f for f in found if not any(o != f and f.startswith(o) for o in found))


def applies_in(clause_region: str, locations: Iterable[str]) -> bool:
    """Whether a clause of `clause_region` applies to a company registered at one of `locations`:
    the region is that place or one containing it (a city's policy covers its districts). A clause of
    a place inside it does not (a 海淀 grant is not a 北京 company's), nor one stating no region."""
    return bool(clause_region) and any(loc.startswith(clause_region) for loc in locations)


@lru_cache(maxsize=None)
def read_rows(name: str) -> tuple[tuple[str, ...], ...]:
    """A tab-separated data file of any number of columns: one tuple of stripped cells a line."""
    raw = resources.files("assistant.data").joinpath(name).read_text(encoding="utf-8")
    return tuple(
        tuple(cell.strip() for cell in line.split("\t"))
        for line in raw.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


# -- the calculator's vocabulary: units, quantities, industries, condition words ----------------------
@dataclass(frozen=True)
class Unit:
    name: str
    dimension: str
    factor: float  # how many base units one is
    short: str  # as shown in a formula


@lru_cache(maxsize=1)
def units() -> dict[str, Unit]:
    """Every unit the calculator knows (data/units.tsv), by its written form."""
    return {r[0]: Unit(r[0], r[1], float(r[2]), r[3] if len(r) > 3 else r[0]) for r in read_rows("units.tsv")}


@dataclass(frozen=True)
class Quantity:
    name: str  # canonical
    dimension: str
    field: str  # the profile field that states it ("" when only `quantities` can)
    wordings: tuple[str, ...]


@lru_cache(maxsize=1)
def quantities() -> dict[str, Quantity]:
    """The quantities policies set thresholds on (data/quantities.tsv), by canonical name."""
    out = {}
    for r in read_rows("quantities.tsv"):
        wordings = tuple(w for w in (r[3].split("|") if len(r) > 3 else ()) if w)
        out[r[0]] = Quantity(r[0], r[1], "" if r[2] == "-" else r[2], tuple(dict.fromkeys((r[0], *wordings))))
    return out


@lru_cache(maxsize=1)
def wordings() -> tuple[tuple[str, Quantity], ...]:
    """(wording, quantity) of every quantity, longest wording first."""
    pairs = [(w, q) for q in quantities().values() for w in q.wordings]
    return tuple(sorted(pairs, key=lambda p: -len(p[0])))


def canonical_quantity(name: str, dimension: str = "") -> str:
    """The canonical name of a quantity as worded (节约能源量 → 节能量); the wording itself when unknown."""
    name = name.strip()
    for w, q in wordings():
        if (not dimension or q.dimension == dimension) and (w == name or (len(w) >= 2 and w in name)):
            return q.name
    return name


@lru_cache(maxsize=1)
def condition_words() -> dict[str, tuple[str, ...]]:
    """data/condition_words.tsv by kind (recent, generic, ignore), longest first."""
    out: dict[str, list[str]] = {}
    for kind, word, *_ in read_rows("condition_words.tsv"):
        out.setdefault(kind, []).append(word)
    return {k: tuple(sorted(v, key=len, reverse=True)) for k, v in out.items()}


@lru_cache(maxsize=1)
def industries() -> tuple[tuple[str, str, str], ...]:
    """(wording, canonical, wider industry or "") of data/industries.tsv, longest wording first."""
    rows = [(r[0], r[1], "" if len(r) < 3 or r[2] == "-" else r[2]) for r in read_rows("industries.tsv")]
    return tuple(sorted(rows, key=lambda r: -len(r[0])))
