"""A per-MAC cache of rendered iPXE scripts, shared by the API route and the fast HTTP path.

A boot storm asks for the same few scripts thousands of times a second; rendering touches the
database. Entries live `ttl` seconds (config `boot.script_cache_seconds`), which bounds how stale
a script can be after a state change made by another process (the CLI); a change committed through
this process (any transaction that recorded an event: `db.on_commit_of_change`) drops every cached
script at once, so a node that posts `finished` and reboots gets its local-disk script even within
`ttl` (the storm simulator found the installer served again for up to 2 s). Templates are
compiled once (`boot.templates.environment`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dgxie.boot.decide import Decision
from dgxie.db import on_commit_of_change, reading
from dgxie.ipxe.render import Script, ipxe_script
from dgxie.site import Site

MAX_ENTRIES = 100_000


class ScriptCache:
    def __init__(self, sessions: sessionmaker[Session], site: Site, *, ttl: float = 2.0,
                 on_decision: Callable[[Decision], None] | None = None) -> None:
        self.sessions, self.site, self.ttl = sessions, site, ttl
        self.engine: Engine = sessions.kw["bind"]
        self.on_decision = on_decision
        self._entries: dict[str, tuple[float, Script]] = {}
        on_commit_of_change(sessions, self.invalidate)

    def cached(self, mac: str) -> Script | None:
        """The cached script for `mac` (exactly as given in the URL), or None; counts the decision."""
        hit = self._entries.get(mac)
        if hit is None or hit[0] < time.monotonic():
            return None
        if self.on_decision is not None:
            self.on_decision(hit[1].decision)
        return hit[1]

    def get(self, mac: str) -> Script:
        """Render (through the database) unless cached; blocking (call it off the event loop)."""
        hit = self.cached(mac)
        if hit is not None:
            return hit
        with reading(self.engine) as conn:  # no transaction, nothing to commit
            script = ipxe_script(conn, self.site, mac)
        if self.ttl > 0:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[mac] = (time.monotonic() + self.ttl, script)
        if self.on_decision is not None:
            self.on_decision(script.decision)
        return script

    def invalidate(self) -> None:
        self._entries.clear()
