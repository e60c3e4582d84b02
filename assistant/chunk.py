"""Chunk stage: split a Document into Clauses along the Chinese numbering hierarchy.

Markers, outermost first: 附件N, 第X章, 第X条, 一、, （一）/(一), 1./1．/1、, （1）/(1).
Scraped files may be a single line, so markers are found inline, not only at line starts;
a candidate only counts when it continues its level's sequence (2. after 1.), which keeps
"1.4%", "3.0升级版" or a stray "（二）" inside a sentence from opening a clause.
Flattened tables (tab-indented cells, blank line between rows) become one clause per row,
each cell prefixed with its column header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.schema import Clause, Document
from assistant.text import split_sentences

CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_NUM = "[一二三四五六七八九十百零〇两]{1,4}"
_DIGITS = "[0-9０-９]{1,3}"
_BOUNDARY = r"(?:(?<=^)|(?<=[\s。；;：:！？!?）)」”]))"

# Order = depth. Each pattern captures the number in group "n".
_LEVELS = [
    ("attach", re.compile(rf"(?m)^[ \t\u3000]*附\s*件\s*(?P<n>{_DIGITS})(?![0-9０-９.．、])")),
    ("chapter", re.compile(rf"{_BOUNDARY}第(?P<n>{_CN_NUM})章")),
    ("article", re.compile(rf"{_BOUNDARY}第(?P<n>{_CN_NUM})条")),
    ("cn", re.compile(rf"{_BOUNDARY}(?P<n>{_CN_NUM})\s*、")),
    ("paren_cn", re.compile(rf"{_BOUNDARY}[（(]\s*(?P<n>{_CN_NUM})\s*[)）]")),
    ("arabic", re.compile(rf"{_BOUNDARY}(?P<n>{_DIGITS})\s*[.．、](?![0-9０-９])")),
    ("paren_arabic", re.compile(rf"{_BOUNDARY}[（(]\s*(?P<n>{_DIGITS})\s*[)）]")),
]
_DEPTH = {name: i for i, (name, _) in enumerate(_LEVELS)}
# "附件：1．… 2．…" lists the attachments' titles; its numbers are not clauses of the last section.
_ATTACH_LIST = re.compile(r"(?m)^[ \t\u3000]*附\s*件\s*[:：]")

# Departments are read from parentheses, which are found first and parsed piece by piece: a single
# regex over a remark needs nested or adjacent overlapping quantifiers ("\s*([^…]{2,80}?)\s*",
# "(?:[^…]+、?)+"), and those backtrack exponentially on long 、-lists (a 13 KB 实施细则 hung the build).
_PAREN = re.compile(r"[（(]([^（）()]*)[)）]")  # an innermost parenthesis
_PAREN_CHAR = re.compile(r"[（）()]")
_LEAD = re.compile(r"牵头|负责")
_RESPONSIBLE = re.compile(r"责任(?:单位|部门)\s*[:：]")
# A trailing "（区科技局、顺义经济开发区管委会、各街镇）": a bare list of bodies, checked part by part.
_BODY = re.compile(r"(?:区|市|县|镇|街|办|局|委|会|室|处|所|院|园区|开发区|管委会|协|银行|海关|政府)[^、]{0,6}$")
_TRAILING_PAREN = re.compile(r"[（(]([^（）()，,。；;]{2,300})[)）](?:\s*[。；;])?$")  # on right-stripped text

TITLE_MAX = 28
# The text up to the first line break or sentence stop after a marker (leading blanks are stripped
# from the title afterwards, so no separate blank run competes with the title for the same spaces).
_HEADING = re.compile(r"([^\n。；;：:]*)([\n。；;：:]?)")


@dataclass
class _Node:
    kind: str
    number: int
    key: str  # id part: 三, (五), 1, (1), 附件1
    start: int
    label: str = ""
    end: int = 0
    parent: "_Node | None" = None
    children: list["_Node"] = field(default_factory=list)


def cn_to_int(text: str) -> int:
    """一 → 1, 十 → 10, 十二 → 12, 二十四 → 24 (enough for clause numbering)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (CN_DIGITS.get(ones, 0) if ones else 0)
    value = 0
    for ch in text:
        if ch not in CN_DIGITS:
            return -1
        value = value * 10 + CN_DIGITS[ch]
    return value


def _to_int(raw: str) -> int:
    raw = raw.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    return int(raw) if raw.isdigit() else cn_to_int(raw)


def _key(kind: str, raw: str) -> str:
    n = _to_int(raw)
    return {
        "attach": f"附件{n}",
        "chapter": f"第{raw}章",
        "article": f"第{raw}条",
        "cn": raw,
        "paren_cn": f"({raw})",
        "arabic": str(n),
        "paren_arabic": f"({n})",
    }[kind]


def _candidates(text: str) -> list[tuple[int, int, str, int, str]]:
    found: dict[int, tuple[int, int, str, int, str]] = {}
    for kind, pattern in _LEVELS:
        for m in pattern.finditer(text):
            n = _to_int(m.group("n"))
            if n <= 0:
                continue
            start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
            # At one position the outer level wins (附件1 before 1.).
            if start not in found:
                found[start] = (start, m.end(), kind, n, _key(kind, m.group("n")))
    return sorted(found.values())


def _parse_tree(text: str) -> _Node:
    root = _Node("root", 0, "", 0)
    stack: list[_Node] = [root]
    attach_list_at = [m.start() for m in _ATTACH_LIST.finditer(text)]
    suppressed_until_attach = False
    last_number: dict[str, int] = {}
    for start, end, kind, n, key in _candidates(text):
        if attach_list_at and start > attach_list_at[0] and not suppressed_until_attach:
            # close the main body at "附件：" and ignore its list until the first "附件N" heading
            node = _Node("attach_list", 0, "附件", attach_list_at[0])
            while len(stack) > 1:
                stack.pop()
            root.children.append(node)
            node.parent = root
            stack.append(node)
            suppressed_until_attach = True
            attach_list_at.pop(0)
        if suppressed_until_attach and kind != "attach":
            continue
        depth = _DEPTH[kind]
        same = next((s for s in reversed(stack) if s.kind == kind), None)
        if same is not None:
            ok = n == same.number + 1
        else:
            # a new list starts at 1, or continues the numbering of the previous section
            # (one 措施 runs (一)…(二十四) across 一、…八、; another runs 1.…20. across (一)…(五))
            ok = n == 1 or n == last_number.get(kind, 0) + 1
            # an excerpt may open at "三、": accept a first-seen level at a line start
            ok = ok or (kind not in last_number and _at_line_start(text, start))
        if not ok:
            continue
        last_number[kind] = n
        if kind == "attach":
            suppressed_until_attach = False
        while len(stack) > 1 and (stack[-1].kind == "attach_list" or _DEPTH.get(stack[-1].kind, -1) >= depth):
            stack.pop()
        parent = stack[-1]
        node = _Node(kind, n, key, start, parent=parent)
        node.label_end = end  # type: ignore[attr-defined]
        parent.children.append(node)
        stack.append(node)
    _close(root, len(text))
    return root


def _at_line_start(text: str, pos: int) -> bool:
    # Walk back over the blanks only: searching back for the line break rescans a whole one-line
    # document for every candidate marker.
    i = pos - 1
    while i >= 0 and text[i] != "\n" and text[i].isspace():
        i -= 1
    return i < 0 or text[i] == "\n"


def _close(node: _Node, end: int) -> None:
    node.end = end
    for i, child in enumerate(node.children):
        child_end = node.children[i + 1].start if i + 1 < len(node.children) else end
        _close(child, child_end)


def _own_span(node: _Node) -> tuple[int, int]:
    return node.start, (node.children[0].start if node.children else node.end)


def _label(text: str, node: _Node) -> str:
    """Marker plus a short heading title when the clause opens with one (三、政策扶持)."""
    s, e = _own_span(node)
    chunk = text[s:e]
    marker_len = getattr(node, "label_end", s) - s
    marker = re.sub(r"\s+", "", chunk[:marker_len]) if node.kind != "arabic" else chunk[:marker_len].strip()
    rest = chunk[marker_len:]
    m = _HEADING.match(rest)
    title = re.sub(r"\s+", " ", m.group(1)).strip() if m else ""
    # A heading stands alone on its line (or before the next marker), or is a short phrase
    # closed by 。 ("1.专业化。"); "12．积极争取…资金，加大…；" is the clause's first sentence.
    standalone = m is not None and m.group(2) in ("\n", "") and len(title) <= TITLE_MAX
    phrase = m is not None and m.group(2) == "。" and not re.search(r"[，,；;]", title) and len(title) <= 20
    if node.kind == "attach":
        # "附件1\n海淀区…行动计划\n领导小组及主要职责\n为推进…": the title spans the next lines
        lines = [ln.strip() for ln in rest.strip().split("\n")[:4]]
        parts = []
        for ln in lines:
            if not ln or ln.startswith(("为", "一、", "根据", "按照")) or ln.endswith(("。", "：")):
                break
            parts.append(re.sub(r"\s+", "", ln))
        return f"{marker} {''.join(parts)[:40]}".strip()
    if title and (standalone or phrase):
        sep = " " if node.kind == "arabic" and chunk[marker_len:marker_len + 1] == " " else ""
        return f"{marker}{sep}{title}"
    return marker


def department_of(text: str) -> str:
    """The responsible department a clause names: （区科委负责）, (责任单位:…), or a trailing list of bodies."""
    tail = text[-200:]
    for find in (_leading_bodies, _responsible_units):
        hits = find(tail)
        if hits:
            return re.sub(r"\s+", "", hits[-1]).strip("、，, ")
    m = _TRAILING_PAREN.search(tail.rstrip())
    if m:
        inner = re.sub(r"\s+", "", m.group(1)).strip("、")
        parts = inner.split("、")
        if all(2 <= len(p) <= 40 and _BODY.search(p) for p in parts):
            return inner
    return ""


def _leading_bodies(tail: str) -> list[str]:
    # "（区科委负责）", "（市发改委牵头，各区配合）": the bodies (2–80 characters) before the first
    # 牵头/负责 that leaves at most 30 characters of the remark after it.
    hits = []
    for paren in _PAREN.finditer(tail):
        inner = paren.group(1)
        for lead in _LEAD.finditer(inner):
            k = lead.start()
            if k >= 2 and len(inner[:k].strip()) <= 80 and len(inner) - lead.end() <= 30:
                hits.append(inner[:k])
                break
    return hits


def _responsible_units(tail: str) -> list[str]:
    # "(责任单位:区发改委、区财政局)": what follows the colon up to the closing parenthesis (2–120 characters).
    hits = []
    last_end = 0
    for head in _RESPONSIBLE.finditer(tail):
        if head.start() < last_end:
            continue  # inside the previous remark
        close = _PAREN_CHAR.search(tail, head.end())
        if close is None or close.group(0) not in ")）":
            continue
        inner = tail[head.end():close.start()]
        if len(inner) >= 2 and len(inner.strip()) <= 120:
            hits.append(inner)
            last_end = close.end()
    return hits


def _pieces(text: str, cap: int) -> list[str]:
    """Split an over-long clause at sentence ends (。；) into pieces of at most `cap` characters."""
    if len(text) <= cap:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in split_sentences(text):
        while len(sentence) > cap:  # a single run-on sentence: cut at commas, else hard
            cut = max(sentence.rfind("，", 0, cap), sentence.rfind(",", 0, cap))
            cut = cut + 1 if cut > cap // 3 else cap
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut])
            sentence = sentence[cut:]
        if current and len(current) + len(sentence) > cap:
            pieces.append(current)
            current = ""
        current += sentence
    if current:
        pieces.append(current)
    return [p.strip() for p in pieces if p.strip()]


_TABLE_LINE = re.compile(r"^[ \u3000]*\t")


def _find_tables(text: str) -> list[tuple[int, int]]:
    """Spans of flattened tables: runs of tab-indented lines (blank lines between rows)."""
    spans: list[tuple[int, int]] = []
    lines = text.split("\n")
    offsets = []
    pos = 0
    for line in lines:
        offsets.append(pos)
        pos += len(line) + 1
    i = 0
    while i < len(lines):
        if _TABLE_LINE.match(lines[i]):
            j = i
            tab_lines = 0
            last_tab = i
            while j < len(lines) and (_TABLE_LINE.match(lines[j]) or not lines[j].strip() or (j - last_tab) <= 1):
                if _TABLE_LINE.match(lines[j]):
                    tab_lines += 1
                    last_tab = j
                j += 1
            if tab_lines >= 6:
                end = offsets[last_tab] + len(lines[last_tab])
                spans.append((offsets[i], end))
                i = last_tab + 1
                continue
        i += 1
    return spans


def _table_rows(block: str) -> tuple[str, list[str], list[list[str]]]:
    groups: list[list[str]] = [[]]
    for line in block.split("\n"):
        if not line.strip() and "\t" not in line:
            if groups[-1]:
                groups.append([])
            continue
        if "\t" in line:
            groups[-1].append(line.strip().strip("\u3000").strip())
        elif groups[-1]:
            groups[-1][-1] += line.strip()
        else:
            groups[-1].append(line.strip())
    groups = [g for g in groups if any(c for c in g)]
    title_parts: list[str] = []
    header: list[str] = []
    rows: list[list[str]] = []
    for g in groups:
        if not header and len([c for c in g if c]) < 2:
            title_parts.append("".join(g))
        elif not header:
            header = g
        else:
            rows.append(g)
    return "".join(title_parts), header, rows


def _table_clauses(block: str, table_no: int, doc: Document, start_ordinal: int) -> list[Clause]:
    title, header, rows = _table_rows(block)
    section = title or f"表{table_no}"
    clauses: list[Clause] = []
    previous: list[str] = []
    for r, row in enumerate(rows, 1):
        if header and len(row) == len(header):
            # an empty first cell repeats the row above (a merged cell in the source table)
            cells = [c or (previous[i] if i < len(previous) and i == 0 else c) for i, c in enumerate(row)]
            previous = cells
            text = "；".join(f"{h}：{c}" for h, c in zip(header, cells) if c)
            department = cells[0] if any("部门" in h or "单位" in h for h in header[:1]) else ""
        else:
            text = "；".join(c for c in row if c)
            department = ""
        clauses.append(
            Clause(
                clause_id=f"{doc.doc_id}#表{table_no}.{r}",
                doc_id=doc.doc_id,
                doc_title=doc.title,
                region=doc.region,
                section=f"{section} > 第{r}行",
                text=text,
                department=department,
                ordinal=start_ordinal + r - 1,
                level=doc.level,
            )
        )
    return clauses


def split(doc: Document, max_chars: int = 600, min_heading_body: int = 12) -> list[Clause]:
    """Split a document into clauses with heading paths, departments and stable ids."""
    text = doc.text
    tables = _find_tables(text)
    parts, last = [], 0
    for s, e in tables:  # blank the tables out, keeping offsets
        parts += [text[last:s], " " * (e - s)]
        last = e
    body = "".join(parts) + text[last:]
    root = _parse_tree(body)
    clauses: list[Clause] = []
    used_ids: set[str] = set()

    def emit(key: str, section: str, span_text: str) -> None:
        span_text = span_text.strip()
        if not span_text:
            return
        department = department_of(span_text)
        pieces = _pieces(span_text, max_chars)
        for i, piece in enumerate(pieces, 1):
            cid = f"{doc.doc_id}#{key}" + (f"~{i}" if len(pieces) > 1 else "")
            while cid in used_ids:
                cid += "'"
            used_ids.add(cid)
            clauses.append(
                Clause(
                    clause_id=cid,
                    doc_id=doc.doc_id,
                    doc_title=doc.title,
                    region=doc.region,
                    section=section,
                    text=piece,
                    department=department,
                    ordinal=len(clauses),
                    level=doc.level,
                )
            )

    def walk(node: _Node, path: list[str], keys: list[str]) -> None:
        for child in node.children:
            label = "附件" if child.kind == "attach_list" else _label(body, child)
            child_path = path + [label]
            child_keys = keys + [child.key]
            s, e = _own_span(child)
            own = body[s:e]
            heading_only = len(re.sub(r"\s+", "", own)) - len(re.sub(r"\s+", "", label)) < min_heading_body
            if not (child.children and heading_only):
                emit(".".join(child_keys), " > ".join(child_path), own)
            walk(child, child_path, child_keys)

    preamble_end = root.children[0].start if root.children else len(body)
    emit("前言", "前言", body[:preamble_end])
    walk(root, [], [])
    for t, (s, e) in enumerate(tables, 1):
        clauses.extend(_table_clauses(text[s:e], t, doc, len(clauses)))
    return clauses
