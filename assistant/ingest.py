"""Ingest stage: turn an uploaded .txt/.html/.docx/.pdf into plain text for the corpus.

Text files go through the corpus decoder (UTF-8 or GB18030); HTML through trafilatura, so
navigation and footers of government portals are dropped by a real extractor; Word files keep
table rows (reward tables are common in policy documents); PDFs are read page by page.
Every failure is a CorpusError naming the file and the reason.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from assistant.schema import CorpusError

SUFFIXES = (".txt", ".html", ".htm", ".docx", ".pdf")


def _txt(name: str, data: bytes) -> str:
    from assistant.corpus import read_text

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(name).name
        path.write_bytes(data)
        return read_text(path)


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
    """Plain text of a corpus file of any supported type."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path.name}: cannot read file ({exc.strerror})") from exc
    return extract_text(path.name, data)
