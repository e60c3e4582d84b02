"""Ingest stage (file formats → text): a .txt/.html/.docx/.pdf file or upload as plain text.

The lowest stage of the corpus: `corpus` (text → Documents) reads its files through here, never
the other way. Text files are decoded as UTF-8 or GB18030; HTML goes through trafilatura, so
navigation and footers of government portals are dropped by a real extractor; Word files keep
table rows (reward tables are common in policy documents); PDFs are read page by page.
Every failure is a CorpusError naming the file and the reason.
"""

from __future__ import annotations

import io
from pathlib import Path

from assistant.schema import CorpusError

SUFFIXES = (".txt", ".html", ".htm", ".docx", ".pdf")


def decode_text(name: str, raw: bytes) -> str:
    """Decode a text file's bytes: UTF-8 (with or without BOM), else GB18030; clear error otherwise."""
    if not raw.strip():
        raise CorpusError(f"{name}: file is empty")
    if b"\x00" in raw[:4096]:
        raise CorpusError(f"{name}: looks like a binary file, not text")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == "gb18030" and not _mostly_cjk_or_ascii(text):
            break
        return text.replace("\r\n", "\n").replace("\r", "\n")
    raise CorpusError(f"{name}: not valid UTF-8 or GB18030 text")


def _mostly_cjk_or_ascii(text: str) -> bool:
    # gb18030 decodes almost any byte string; reject results that are mostly rare symbols.
    good = sum(1 for ch in text if ch.isascii() or "\u4e00" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef")
    return good >= 0.9 * len(text)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path.name}: cannot read file ({exc.strerror})") from exc


def read_text(path: Path) -> str:
    """Decode a text file: UTF-8 (with or without BOM), else GB18030; clear error otherwise."""
    path = Path(path)
    return decode_text(path.name, _read_bytes(path))


def _txt(name: str, data: bytes) -> str:
    return decode_text(Path(name).name, data)


def _html(name: str, data: bytes) -> str:
    import trafilatura

    text = trafilatura.extract(data, include_tables=True, include_comments=False, favor_recall=True)
    if not text or not text.strip():
        raise CorpusError(f"{name}: no main text found in the HTML page")
    return text


def _docx(name: str, data: bytes) -> str:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises zipfile/KeyError/ValueError for broken files
        raise CorpusError(f"{name}: not a readable Word (.docx) file ({exc.__class__.__name__})") from exc
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            cells = []
            for cell in row.cells:
                value = cell.text.strip()
                if value and (not cells or cells[-1] != value):  # merged cells repeat their text
                    cells.append(value)
            if cells:
                lines.append(" ".join(cells))
    return "\n".join(lines)


def _pdf(name: str, data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        raise CorpusError(f"{name}: not a readable PDF ({exc})") from exc
    text = "\n".join(pages)
    if not text.strip():
        raise CorpusError(f"{name}: the PDF has no text layer (scanned images are not supported)")
    return text


def extract_text(name: str, data: bytes) -> str:
    """Plain text of an uploaded file, chosen by its suffix; CorpusError with the reason on failure."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise CorpusError(f"{name}: unsupported file type {suffix or '(none)'}; expected {', '.join(SUFFIXES)}")
    if not data.strip():
        raise CorpusError(f"{name}: file is empty")
    parser = {".txt": _txt, ".html": _html, ".htm": _html, ".docx": _docx, ".pdf": _pdf}[suffix]
    text = parser(name, data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CorpusError(f"{name}: no text found")
    return text


def read_file(path: Path) -> str:
    """Plain text of a corpus file of any supported type (CorpusError naming the file otherwise)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise CorpusError(f"{path.name}: unsupported file type {path.suffix or '(none)'}; expected {', '.join(SUFFIXES)}")
    if path.suffix.lower() == ".txt":
        return read_text(path)
    return extract_text(path.name, _read_bytes(path))
