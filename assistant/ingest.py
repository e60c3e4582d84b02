"""Ingest stage (file formats → text): a .txt/.html/.docx/.pdf file or upload as plain text.

The lowest stage of the corpus: `corpus` (text → Documents) reads its files through here, never
the other way. Text files are decoded as UTF-8 or GB18030; HTML goes through trafilatura, so
navigation and footers of government portals are dropped by a real extractor; Word files keep
table rows (reward tables are common in policy documents); PDFs are read page by page.
Every failure is a CorpusError naming the file and the reason.

What reading a file may cost is bounded (`Limits`), so a hostile file is refused by name instead of
holding a process's memory: a .docx by the uncompressed sizes its zip declares, before anything is
decompressed (zipfile never inflates a member past its declared size: a lie fails its CRC); a PDF by
its page count and the size of each decompressed stream; HTML by its nesting depth; every format by
the length of its text. Time and memory are bounded one level up: an upload is read in a worker
process (guard.read_upload).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, fields
from pathlib import Path

from assistant.schema import (
    CorpusError,
    DecompressionBombError,
    DocumentTooLongError,
    NestingTooDeepError,
    TooManyPagesError,
)

SUFFIXES = (".txt", ".html", ".htm", ".docx", ".pdf")

_MB = 1024 * 1024
# Members smaller than this are not judged by their ratio: small XML parts compress very well.
_RATIO_FLOOR = _MB


@dataclass(frozen=True)
class Limits:
    """Bounds on what reading one file may cost. The defaults are those of Settings (max_… fields);
    the largest document of the outside library is 17,000 characters, so each is far above real ones."""

    unzipped_bytes: int = 64 * _MB  # all members of a .docx together, as declared
    zip_ratio: int = 100  # uncompressed / compressed, per member over 1 MB (a bomb: 200 and more)
    zip_entries: int = 2000
    pdf_pages: int = 2000
    pdf_stream_bytes: int = 16 * _MB  # one decompressed PDF stream (a page's content, a font)
    html_depth: int = 200  # lxml itself stops at 256 and drops the rest of the page
    document_chars: int = 1_000_000

    @classmethod
    def from_settings(cls, settings) -> "Limits":
        """The limits of Settings' max_<field> values."""
        return cls(**{f.name: getattr(settings, f"max_{f.name}") for f in fields(cls)})


DEFAULT_LIMITS = Limits()


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


def _txt(name: str, data: bytes, limits: Limits) -> str:
    return decode_text(Path(name).name, data)


def _html(name: str, data: bytes, limits: Limits) -> str:
    import trafilatura

    check_html_depth(name, data, limits)
    text = trafilatura.extract(data, include_tables=True, include_comments=False, favor_recall=True)
    if not text or not text.strip():
        raise CorpusError(f"{name}: no main text found in the HTML page")
    return text


def check_html_depth(name: str, data: bytes, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse an HTML page nested deeper than the limit (NestingTooDeepError naming the depth)."""
    import lxml.html
    from lxml import etree

    parser = lxml.html.HTMLParser()
    try:
        root = lxml.html.document_fromstring(data, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise CorpusError(f"{name}: not a readable HTML page ({exc})") from exc
    # libxml2 stops at depth 256 and drops the rest of the page, saying so in the error log.
    too_deep = any("Excessive depth" in e.message for e in parser.error_log)
    # An element at depth limit+1: one step per level, so the work is linear in the elements.
    if too_deep or root.xpath("boolean(/*" + "/*" * limits.html_depth + ")"):
        raise NestingTooDeepError(
            f"{name}: HTML elements are nested more than {limits.html_depth} levels deep "
            "(ASSISTANT_MAX_HTML_DEPTH); the page was refused"
        )


def _zip_entries(data: bytes) -> int | None:
    # The entry count of the end-of-central-directory record, read before zipfile builds one object
    # per entry; None when there is no such record (zipfile then says the file is broken).
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or at + 12 > len(data):
        return None
    return struct.unpack_from("<H", data, at + 10)[0]


def check_archive(name: str, data: bytes, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse a zip (.docx) whose declared entries, uncompressed sizes or compression ratios are past
    the limits (DecompressionBombError), before anything is decompressed."""
    import zipfile

    entries = _zip_entries(data)
    if entries is not None and entries > limits.zip_entries:
        raise DecompressionBombError(f"{name}: the archive has {entries} entries, over the limit of {limits.zip_entries}")
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise CorpusError(f"{name}: not a readable Word (.docx) file ({exc.__class__.__name__})") from exc
    if len(infos) > limits.zip_entries:
        raise DecompressionBombError(f"{name}: the archive has {len(infos)} entries, over the limit of {limits.zip_entries}")
    total = sum(i.file_size for i in infos)
    if total > limits.unzipped_bytes:
        raise DecompressionBombError(
            f"{name}: the archive expands to {total / _MB:.0f} MB, over the limit of {limits.unzipped_bytes / _MB:.0f} MB "
            "(ASSISTANT_MAX_UNZIPPED_BYTES); refused as a possible zip bomb"
        )
    for i in infos:
        if i.file_size > _RATIO_FLOOR and i.file_size > limits.zip_ratio * max(1, i.compress_size):
            raise DecompressionBombError(
                f"{name}: {i.filename} expands {i.file_size // max(1, i.compress_size)} times "
                f"({i.compress_size} to {i.file_size} bytes), over the limit of {limits.zip_ratio} "
                "(ASSISTANT_MAX_ZIP_RATIO); refused as a possible zip bomb"
            )


def _docx(name: str, data: bytes, limits: Limits) -> str:
    import docx

    check_archive(name, data, limits)
    try:
        document = docx.Document(io.BytesIO(data))
    except MemoryError:
        raise
    except Exception as exc:  # python-docx raises zipfile/KeyError/ValueError for broken files
        if "Memory allocation failed" in str(exc):  # libxml2 out of memory, reported as a syntax error
            raise MemoryError(str(exc)) from exc
        raise CorpusError(f"{name}: not a readable Word (.docx) file ({exc.__class__.__name__}: {exc})") from exc
    lines, chars = [], 0
    for p in document.paragraphs:
        lines.append(p.text)
        chars += len(p.text)
        check_length(name, chars, limits)  # no more paragraphs are read once the text is too long
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


def _declared_pages(reader) -> int:
    try:
        return int(reader.trailer["/Root"]["/Pages"]["/Count"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return 0  # no usable count: the real pages are counted next


def _check_pages(name: str, count: int, limits: Limits) -> None:
    if count > limits.pdf_pages:
        raise TooManyPagesError(
            f"{name}: the PDF has {count} pages, over the limit of {limits.pdf_pages} (ASSISTANT_MAX_PDF_PAGES)"
        )


def _pdf(name: str, data: bytes, limits: Limits) -> str:
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError, PyPdfError

    cap = limits.pdf_stream_bytes
    # pypdf's own per-stream bounds, lowered to ours: a flate bomb stops at `cap` bytes inflated.
    with apply_configuration(
        zlib_maximum_output_length=cap, lzw_maximum_output_length=cap, run_length_maximum_output_length=cap,
        brotli_maximum_output_length=cap, array_based_stream_maximum_output_length=cap,
        maximum_declared_stream_length=cap, image_maximum_buffer_size=cap,
    ):
        try:
            reader = PdfReader(io.BytesIO(data))
            # The count the page tree declares first (read at once), then the pages it really has.
            _check_pages(name, _declared_pages(reader), limits)
            _check_pages(name, len(reader.pages), limits)
            pages, chars = [], 0
            for page in reader.pages:
                pages.append(page.extract_text() or "")
                chars += len(pages[-1])
                check_length(name, chars, limits)  # no more pages are read once the text is too long
        except LimitReachedError as exc:
            raise DecompressionBombError(
                f"{name}: a stream of the PDF expands past {cap // _MB} MB (ASSISTANT_MAX_PDF_STREAM_BYTES) "
                f"or another of its bounds is reached ({exc}); refused as a possible decompression bomb"
            ) from exc
        except (PyPdfError, ValueError, KeyError, OSError) as exc:
            raise CorpusError(f"{name}: not a readable PDF ({exc})") from exc
    text = "\n".join(pages)
    if not text.strip():
        raise CorpusError(f"{name}: the PDF has no text layer (scanned images are not supported)")
    return text


def check_length(name: str, chars: int, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse a text longer than a document may be (DocumentTooLongError)."""
    if chars > limits.document_chars:
        raise DocumentTooLongError(
            f"{name}: the text has {chars} characters or more, over the limit of {limits.document_chars} "
            "(ASSISTANT_MAX_DOCUMENT_CHARS)"
        )


def extract_text(name: str, data: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """Plain text of an uploaded file, chosen by its suffix; CorpusError with the reason on failure
    (an UploadLimitError when the file is past one of `limits`)."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise CorpusError(f"{name}: unsupported file type {suffix or '(none)'}; expected {', '.join(SUFFIXES)}")
    if not data.strip():
        raise CorpusError(f"{name}: file is empty")
    parser = {".txt": _txt, ".html": _html, ".htm": _html, ".docx": _docx, ".pdf": _pdf}[suffix]
    text = parser(name, data, limits)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CorpusError(f"{name}: no text found")
    check_length(name, len(text), limits)
    return text


def read_file(path: Path, limits: Limits = DEFAULT_LIMITS) -> str:
    """Plain text of a corpus file of any supported type, within `limits` (CorpusError naming the file otherwise)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise CorpusError(f"{path.name}: unsupported file type {path.suffix or '(none)'}; expected {', '.join(SUFFIXES)}")
    if path.suffix.lower() == ".txt":
        text = read_text(path)
        check_length(path.name, len(text), limits)
        return text
    return extract_text(path.name, _read_bytes(path), limits)
