"""API edge, pages: the chat widget demo, the clause lookup page and their scripts (not in the schema)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent.parent / "static"

router = APIRouter(include_in_schema=False)

_PAGES = (
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/lookup", "lookup.html", "text/html; charset=utf-8"),
    ("/widget.js", "widget.js", "application/javascript; charset=utf-8"),
    ("/dom.js", "dom.js", "application/javascript; charset=utf-8"),
    ("/lookup.js", "lookup.js", "application/javascript; charset=utf-8"),
    ("/lookup.css", "lookup.css", "text/css; charset=utf-8"),
    ("/admin", "admin.html", "text/html; charset=utf-8"),
    ("/admin.js", "admin.js", "application/javascript; charset=utf-8"),
    ("/admin.css", "admin.css", "text/css; charset=utf-8"),
)


def _static(name: str, media_type: str | None = None):
    def serve() -> FileResponse:
        path = STATIC / name
        if not path.is_file():
            raise HTTPException(404, f"{name} is not available")
        return FileResponse(path, media_type=media_type)

    return serve


for _path, _name, _media_type in _PAGES:
    router.get(_path)(_static(_name, _media_type))
