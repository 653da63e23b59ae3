"""The web dashboard (docs/dashboard.md): server-rendered pages under /ui/, their static files,
the session store, and the offline API docs at /docs. Above `dgxie.api` (it reuses its
authentication, dependencies and event stream), below the app that installs it."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from dgxie.web import actions, docs, firmware, mirrors, pages, rollouts, tokens
from dgxie.web.session import StreamSlots
from dgxie.web.store import SessionStore

# Not behind the API's admission gate (dgxie/api/admission.py): static files (no database work) and
# the pages' event streams (bounded by `StreamSlots`, each poll a short query).
UNGATED_PREFIXES = ("/ui/static/", "/ui/stream")


def static_dir() -> Path:
    """The shipped static files (dgxie/web/static/, package data in the wheel)."""
    return Path(str(files("dgxie.web") / "static"))


def install(app: FastAPI) -> None:
    """Add the dashboard to `app` (create the app with docs_url=None, redoc_url=None)."""
    app.state.web_sessions = SessionStore()
    app.state.web_streams = StreamSlots()
    app.include_router(actions.router)
    app.include_router(pages.router)
    app.include_router(firmware.router)
    app.include_router(rollouts.router)
    app.include_router(mirrors.router)
    app.include_router(tokens.router)
    app.include_router(docs.router)
    app.mount("/ui/static", StaticFiles(directory=static_dir()), name="ui-static")
