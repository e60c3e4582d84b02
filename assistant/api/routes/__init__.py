"""API edge: the routers, one per concern (chat, lookup, match, service, admin, pages)."""

from __future__ import annotations

import time


def took_ms(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading), as the responses report it."""
    return round((time.perf_counter() - started) * 1000, 2)
