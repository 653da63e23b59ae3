"""What the installer gets and tells, as two service functions (the routes in api/install.py only
speak HTTP).

- `serve_config()`: a node's install config under its token. A config that fails to render or
  validate is None for the node (never half a config) and an error in the log and in the node's
  events for the admin; a fetch of a seed file marks an enrolled node `installing`.
- `receive_callback()`: one installer callback applied to the node's lifecycle; an install that
  just finished is handed to its role (`handoff.bootstrap.on_installed`) in the same transaction.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from dgxie.boot.state import State
from dgxie.db import session_scope
from dgxie.errors import Invalid, NotFound
from dgxie.events import record
from dgxie.handoff.bootstrap import on_installed
from dgxie.install import seed
from dgxie.nodes import callbacks
from dgxie.nodes.schemas import CallbackOut
from dgxie.site import Site

log = logging.getLogger("dgxie.install")


def serve_config(sessions: sessionmaker[Session], site: Site, token: str, artifact: str) -> seed.Rendered | None:
    """The rendered `artifact` for the node holding `token`; NotFound (one message for a wrong token,
    an unknown node and an artefact its template set lacks), or None when it cannot be rendered."""
    with session_scope(sessions) as s:
        node = callbacks.node_by_token(s, token, lock=True)
        try:
            rendered = seed.render(site, node, artifact)
        except NotFound:
            raise NotFound("not found") from None
        except Invalid as exc:
            log.error("install config %s for %s is not available: %s", artifact, node.hostname, exc.detail)
            record(s, actor="dgxie", kind="render.error", node=node, reason=exc.detail[:2000],
                   data={"artifact": artifact})
            return None
        callbacks.note_fetch(s, node, artifact)
        return rendered


def receive_callback(sessions: sessionmaker[Session], site: Site, token: str, body: bytes) -> CallbackOut:
    """Parse and apply one installer callback (one transaction); the reply for the installer."""
    with session_scope(sessions) as s:
        node = callbacks.node_by_token(s, token, lock=True)
        result = callbacks.apply(s, node, callbacks.parse(body), interval=site.install.progress_interval_seconds)
        if result.changed and node.state == State.INSTALLED.value:
            result.bootstrap = on_installed(s, site, node, actor=callbacks.INSTALLER)
            result.state = node.state
        return result
