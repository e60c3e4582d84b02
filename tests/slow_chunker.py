"""A chunker that hangs on marked documents, for the build-guard tests.

It lives in its own small module so a worker process can import it by name (a test's
monkeypatched guard.document_clauses is sent to the worker by reference). The hang is a real
catastrophic regex: it runs in C holding the GIL, as the 南充 document did, so only killing the
worker process ends it.
"""

from __future__ import annotations

import re

MARK = "【慢】"


def slow_document_clauses(doc, chunk_max_chars=600):
    """Hang (for hours) on a document whose text contains MARK; chunk any other normally."""
    from assistant.guard import document_clauses

    if MARK in doc.text:
        re.match(r"(?:a+)+$", "a" * 60 + "b")
    return document_clauses(doc, chunk_max_chars)
