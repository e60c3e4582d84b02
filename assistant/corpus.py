"""Corpus stage (text → Documents): policy files from `corpus/`, read by `assistant.ingest`, as `Document`s.

Scraped government pages carry navigation bars, search-box labels, advertising phone numbers,
"来源:" lines and trailing related-links lists; these are removed here so they never become
clauses. The text that remains stays faithful to the source (normalisation happens at indexing).
Metadata (title, issuer, region, date, 文号) is read from the text; a `<stem>.meta.json`
sidecar fills the gaps (and its "override" object wins). A bulk import writes a folder of documents
or a JSONL file into the corpus folder in that same form (`<doc_id>.txt` plus its sidecar).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from assistant.ingest import read_file
from assistant.schema import BuildCancelled, CorpusError, Document


# Matched in full against a stripped line: a leading or trailing "\s*" next to ".{0,40}" or "\s+\S{2,6}"
# would give the engine several ways to split the same spaces (the text-processing regexes stay linear).
_BOILERPLATE_LINE = re.compile(
    r"首\s*页(?:\s+\S{2,6}){2,}"  # navigation bar: 首 页 区县招商 产业园区 …
    r"|精确检索|开始检索|高级检索|站内搜索|搜\s*索"
    r"|(?:加盟|招商|咨询|服务|联系)(?:电话|热线)\s*[:：].*"
    r"|【[^】]{0,20}】\s*相关(?:法规|链接|文章|政策)"
    r"|(?:相关(?:链接|文章|阅读|推荐)|上一篇|下一篇|打印本页|关闭窗口|返回顶部|分享到).{0,40}"
)
_SOURCE_LINE = re.compile(r"^\s*(?:来源|信息来源|文章来源)\s*[:：]")
_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{1,2}-\d{1,2}\s*$")
_LEADING_DATE = re.compile(r"^\s*\d{4}-\d{1,2}-\d{1,2}")

_DOC_NUMBER = re.compile(r"[\u4e00-\u9fa5]{1,10}\s*[〔\[［(（]\s*\d{4}\s*[〕\]］)）]\s*\d{1,4}\s*号")
_CN_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_PUBLIC_MARK = re.compile(r"[（(]\s*此件(?:主动|依申请)?公开\s*[)）]")
_INNER_TITLE = re.compile(r"(?:现将|关于印发|关于批转[^《]{0,30}|拟定的)《([^》]{4,60})》")
# Development zones are regions of their own that no gazetteer lists ("龙河经济开发区"); the name
# before the suffix must not itself be generic ("经济技术开发区" alone names no place).
_ZONE = re.compile(r"([\u4e00-\u9fa5]{2,4}?)(经济技术开发区|经济开发区|高新技术产业开发区|高新区|开发区|新区)")
_GENERIC_ZONE = re.compile(r"^(?:经济|技术|国家|国家级|省级|高新|产业|各|全|本|该|我|有关|相关|市级|区级|和|及|与|、)")
# A headline: a short first line that is not a sentence of the body.
_HEADLINE_MAX = 80
_ISSUER = re.compile(r"^(.{2,40}?)(?:关于|印发)")
_BODY_WORDS = ("政府", "局", "委", "厅", "部", "办公室", "中心", "指挥部", "领导小组", "管委会", "院", "署", "会")


def clean(text: str) -> str:
    """Remove web boilerplate lines and the trailing related-links list; keep everything else as is."""
    lines = text.split("\n")
    # "来源:…" closes the article on scraped pages; what follows is a related-links list.
    for i in range(len(lines) - 1, -1, -1):
        if _SOURCE_LINE.match(lines[i]) and i >= len(lines) * 0.5:
            lines = lines[:i]
            break
    lines = [ln for ln in lines if not _BOILERPLATE_LINE.fullmatch(ln.strip())]
    lines = _drop_trailing_link_list(lines)
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def _drop_trailing_link_list(lines: list[str]) -> list[str]:
    # A related-links list alternates titles with dates ("…实施方案" / "2022-10-18…"); cut it from the end.
    end = len(lines)
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    cut = end
    i = end - 1
    while i >= 0:
        line = lines[i]
        if _DATE_ONLY.match(line) or _LEADING_DATE.match(line):
            cut = i
            i -= 1
            continue
        if i + 1 < end and _LEADING_DATE.match(lines[i + 1]) and len(line.strip()) <= 60:
            cut = i
            i -= 1
            continue
        break
    return lines[:cut] if cut < end else lines


def extract_metadata(text: str) -> dict:
    """Title, issuer, region, level, date and 文号 as the text states them (empty where it doesn't)."""
    head = text[:1500]
    meta: dict = {}
    for line in head.split("\n")[:12]:
        m = _DOC_NUMBER.fullmatch(line.strip())
        if m:
            meta["doc_number"] = re.sub(r"\s+", "", m.group(0))
            break
    pub = _PUBLIC_MARK.search(head)
    window = head[: pub.start()] if pub else head[:600]
    dates = list(_CN_DATE.finditer(window))
    if dates:
        y, mo, d = dates[-1].groups()
        meta["date"] = f"{int(y):04d}-{int(mo):02d}-{int(d):02d}"
    m = _INNER_TITLE.search(re.sub(r"\s+", "", head))
    if m:
        meta["title"] = m.group(1)
    first = head.split("\n", 1)[0].strip()
    notice = re.sub(r"\s+", "", head.split("\n\n")[0] if "关于" in head.split("\n\n")[0] else first)
    m = _ISSUER.match(notice)
    if m and any(w in m.group(1) for w in _BODY_WORDS):
        meta["issuer"] = m.group(1).rstrip("印发")
    if "title" not in meta and headline(first):
        meta["title"] = re.sub(r"\s+", " ", first)
    region, level = region_of(meta.get("issuer", ""), meta.get("title", ""))
    if region:
        meta["region"], meta["level"] = region, level
    return meta


def headline(line: str) -> bool:
    """True when a first line reads as a title: short, and not a sentence of the body."""
    line = line.strip()
    return 4 <= len(line) <= _HEADLINE_MAX and not re.search(r"[。；;]", line) and not line.endswith(("：", ":"))


def region_of(*sources: str) -> tuple[str, str]:
    """The region a document is issued for and its level (省/市/区/县/开发区), read from the issuer or
    title: the most specific run of places at the first place named ("四川省南充市…" → 四川省南充市,
    "怀柔区…" → 北京市怀柔区), plus a development zone named right after it."""
    from assistant.vocab import gazetteer

    gaz = gazetteer()
    for src in sources:
        src = re.sub(r"\s+", "", src or "")
        if not src:
            continue
        found = gaz.find(src)
        run: list[tuple[int, int, str]] = []
        for f in found:
            if run and f[0] != run[-1][1]:
                break
            run.append(f)
        place = _resolve(gaz, [r[2] for r in run]) if run else None
        rest = src[run[-1][1]:] if run else src
        zone = _ZONE.match(rest) if run else _ZONE.match(src)
        if zone and not _GENERIC_ZONE.match(zone.group(1)):
            prefix = place.full if place else ""
            return prefix + zone.group(0), "开发区"
        if place is not None:
            level = {"省": "省", "市": "市"}.get(place.level, "县" if place.name.endswith("县") else "区")
            if place.level == "省" and place.name.endswith("市"):
                level = "市"  # 北京市, 天津市 …: municipalities are cities
            return place.full, level
    return "", ""


def _resolve(gaz, names: list[str]):
    """The most specific place of a run of names ("北京市", "海淀区"), disambiguated by the names before it."""
    chosen = None
    for name in names:
        candidates = gaz.lookup(name)
        if chosen is not None:
            inside = [c for c in candidates if set(chosen.path) <= set(c.path)]
            candidates = inside or candidates
        if len(candidates) == 1 or (candidates and chosen is not None):
            chosen = max(candidates, key=lambda c: len(c.path))
        elif candidates and len({c.full for c in candidates}) == 1:
            chosen = max(candidates, key=lambda c: len(c.path))
        elif candidates:
            return chosen  # ambiguous (two 朝阳区): keep what is certain
    return chosen


def load_sidecar(path: Path) -> dict:
    """Read `<stem>.meta.json` next to a corpus file; {} when absent."""
    side = path.with_name(path.stem + ".meta.json")
    if not side.exists():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CorpusError(f"{side.name}: invalid metadata sidecar ({exc})") from exc
    if not isinstance(data, dict):
        raise CorpusError(f"{side.name}: metadata sidecar must be a JSON object")
    return data


def build_document(text: str, source: str, doc_id: str, sidecar: dict | None = None) -> Document:
    """Clean a raw text and assemble its Document with text-derived metadata plus the sidecar."""
    cleaned = clean(text)
    if not cleaned.strip():
        raise CorpusError(f"{source}: no text left after removing boilerplate")
    meta = extract_metadata(cleaned)
    sidecar = dict(sidecar or {})
    override = sidecar.pop("override", {}) or {}
    for key, value in sidecar.items():
        if value not in ("", None) and not meta.get(key):
            meta[key] = value
    meta.update(override)
    title = meta.get("title") or Path(source).stem
    return Document(
        doc_id=str(meta.get("doc_id") or doc_id),
        title=title,
        text=cleaned,
        source=source,
        issuer=meta.get("issuer", ""),
        region=meta.get("region", ""),
        level=meta.get("level", ""),
        date=meta.get("date", ""),
        doc_number=meta.get("doc_number", ""),
        title_inferred=bool(meta.get("title_inferred", False)),
        valid_until=str(meta.get("valid_until") or ""),
        validity_basis=str(meta.get("validity_basis") or ""),
    )


def load_file(path: Path) -> Document:
    """Load one corpus file (raises CorpusError naming the file)."""
    path = Path(path)
    return build_document(read_file(path), path.name, path.stem, load_sidecar(path))


def corpus_files(folder: Path) -> list[Path]:
    """The document files of a corpus folder, sorted (sidecars and hidden files excluded)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"corpus folder not found: {folder}")
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".meta.json") and p.suffix.lower() != ".md"
    )


def load_corpus(folder: Path, stop=None) -> tuple[list[Document], list[CorpusError]]:
    """Load every document of a folder; a bad file is reported, never stops the others.
    `stop` (a threading.Event) is checked between files: when set, BuildCancelled is raised."""
    docs: list[Document] = []
    errors: list[CorpusError] = []
    seen: dict[str, str] = {}
    for path in corpus_files(folder):
        if stop is not None and stop.is_set():
            raise BuildCancelled()
        try:
            doc = load_file(path)
        except CorpusError as exc:
            errors.append(exc)
            continue
        if doc.doc_id in seen:
            errors.append(CorpusError(f"{path.name}: doc_id {doc.doc_id!r} already used by {seen[doc.doc_id]}"))
            continue
        seen[doc.doc_id] = path.name
        docs.append(doc)
    return docs, errors


def corpus_hash(folder: Path) -> str:
    """Content hash of the corpus files and sidecars: what decides whether the index is stale."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and not path.name.startswith("."):
            h.update(path.name.encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


# -- bulk import ---------------------------------------------------------------------------------
_UNSAFE_STEM = re.compile(r"[^\w.\-]+")


def safe_stem(doc_id: str) -> str:
    """A file name stem for a doc_id: letters (CJK included), digits, '.', '-', '_' only, no leading dot."""
    stem = _UNSAFE_STEM.sub("_", doc_id).lstrip(".")[:120]
    return stem or "doc"


def import_sources(path: Path) -> list[tuple[str, dict | Path]]:
    """What an import of `path` brings in, as (name for messages, source): a folder's supported files
    (searched recursively), or the records of a JSONL file (`{doc_id, title, text}`, one a line)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*")
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".meta.json") and p.suffix.lower() != ".md"
        )
        return [(str(p.relative_to(path)), p) for p in files]
    if path.suffix.lower() == ".jsonl":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CorpusError(f"{path.name}: cannot read the JSONL file ({exc})") from exc
        out = []
        for n, line in enumerate(lines, 1):
            if line.strip():
                out.append((f"{path.name}:{n}", {"line": line, "default_id": f"{path.stem}-{n}", "file": path.name}))
        return out
    if path.is_file():
        return [(path.name, path)]
    raise CorpusError(f"nothing to import at {path}: expected a folder of documents or a .jsonl file")


def _import_one(source: dict | Path) -> tuple[str, str, dict]:
    # (doc_id, plain text, sidecar) of one import source; CorpusError naming it when unusable.
    if isinstance(source, dict):
        try:
            rec = json.loads(source["line"])
        except json.JSONDecodeError as exc:
            raise CorpusError(f"not a JSON object ({exc.msg})") from exc
        if not isinstance(rec, dict) or not isinstance(rec.get("text"), str) or not rec["text"].strip():
            raise CorpusError("record without text")
        doc_id = str(rec.get("doc_id") or source["default_id"])
        sidecar = {"doc_id": doc_id, "source": source["file"]}
        if rec.get("title"):
            sidecar["title"] = str(rec["title"])
        return doc_id, rec["text"], sidecar
    text = read_file(source)
    sidecar = {**load_sidecar(source), "source": source.name}
    doc_id = str(sidecar.get("doc_id") or source.stem)
    sidecar["doc_id"] = doc_id
    return doc_id, text, sidecar


def import_documents(path: Path, corpus_dir: Path, progress=None) -> tuple[dict[str, int], list[CorpusError]]:
    """Write the documents of a folder (txt/html/docx/pdf) or a JSONL file into the corpus folder as
    `<doc_id>.txt` (UTF-8 plain text) plus a `.meta.json` sidecar (doc_id, title, source).

    Returns the counts of documents added, changed and unchanged (an unchanged file is not rewritten,
    so the next build finds nothing to do for it) and one CorpusError per item that could not be read.
    `progress(done, total)` is called after each item."""
    sources = import_sources(path)
    corpus = Path(corpus_dir)
    corpus.mkdir(parents=True, exist_ok=True)
    counts = {"added": 0, "changed": 0, "unchanged": 0}
    errors: list[CorpusError] = []
    seen: dict[str, str] = {}
    for done, (name, source) in enumerate(sources, 1):
        try:
            doc_id, text, sidecar = _import_one(source)
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            stem = safe_stem(doc_id)
            if stem in seen:
                raise CorpusError(f"doc_id {doc_id!r} was already imported from {seen[stem]}")
            seen[stem] = name
            txt, side = corpus / f"{stem}.txt", corpus / f"{stem}.meta.json"
            side_text = json.dumps(sidecar, ensure_ascii=False, indent=2)
            if txt.exists() and side.exists() and txt.read_text(encoding="utf-8", errors="replace") == text \
                    and side.read_text(encoding="utf-8", errors="replace") == side_text:
                counts["unchanged"] += 1
            else:
                counts["changed" if txt.exists() else "added"] += 1
                # sidecar first, text last, each by rename: a build never sees a text without its metadata
                for target, content in ((side, side_text), (txt, text)):
                    tmp = corpus / f".{target.name}.tmp"
                    tmp.write_text(content, encoding="utf-8")
                    tmp.replace(target)
        except CorpusError as exc:
            message = str(exc)
            named = message.startswith(name) or (isinstance(source, Path) and message.startswith(source.name))
            errors.append(CorpusError(message if named else f"{name}: {message}"))
        if progress:
            progress(done, len(sources))
    return counts, errors
