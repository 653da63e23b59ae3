"""What the installer gets and tells, as two service functions (the routes in api/install.py only
speak HTTP). Both take the request's source address: they answer only the node's own address
(`nodes.origin`; a refusal is a 403 and an event), see docs/security.md.

- `serve_config()`: a node's install config under its boot token, in the states that need it
  (enrolled/installing for an installer; installed and later for an image's first boot). A config
  that fails to render or validate is None for the node (never half a config) and an error in the
  log and in the node's events for the admin; a fetch of a seed file marks an enrolled node
  `installing`. A config with a callback URL carries the node's one-time `install` credential:
  minted at the first fetch, and the same one again on a re-fetch while it is live and less than
  `cache.REUSE_FOR` old (no database write on a re-fetch; anything that drops or replaces it, a
  state change or another credential, makes the next fetch mint anew). The render comes from
  `install.cache` (keyed by every input it reads; the credential substituted per fetch).
- `receive_callback()`: one installer callback applied to the node's lifecycle; a callback that
  would change the node's state needs that credential. An install that just finished is handed to
  its role (`handoff.bootstrap.on_installed`) in the same transaction.
"""

from __future__ import annotations

import logging
import secrets

from sqlalchemy.orm import Session, sessionmaker

from dgxie.boot.state import State
from dgxie.db import session_scope
from dgxie.errors import Conflict, DgxieError, Invalid, NotFound
from dgxie.events import record
from dgxie.handoff.bootstrap import on_installed
from dgxie.install import cache, refetch, seed
from dgxie.models import Node
from dgxie.nodes import callbacks, credentials, origin
from dgxie.nodes.schemas import CallbackOut
from dgxie.site import Site

log = logging.getLogger("dgxie.install")

INSTALLER_STATES = frozenset({State.ENROLLED.value, State.INSTALLING.value})
# an OS image's first boot (and its reboots: cloud-init reads its NoCloud seed at every boot)
IMAGE_STATES = frozenset({State.INSTALLED.value, State.BOOTSTRAPPING.value, State.READY.value})


def _servable(node: Node, artifact: str) -> None:
    states = IMAGE_STATES if seed.family_of(node) == "image" else INSTALLER_STATES
    if node.state not in states:
        raise Conflict(f"{node.hostname} is {node.state}: its {artifact} is served only while "
                       f"{' or '.join(sorted(states))}")


def serve_config(sessions: sessionmaker[Session], site: Site, token: str, artifact: str,
                 peer: str) -> seed.Served | None:
    """The rendered `artifact` for the node holding `token`, fetched from `peer`; NotFound (one
    message for a wrong token, an unknown node and an artefact its template set lacks), Forbidden
    for another address, Conflict for a state that has no use for it, or None when it cannot be
    rendered. A pure re-fetch is answered without the ORM (`install.refetch`), byte for byte."""
    again = refetch.answer(sessions.kw["bind"], site, token, artifact, peer, states=INSTALLER_STATES,
                           image_states=IMAGE_STATES)
    if again is not None:
        return again
    refused: DgxieError | None = None
    with session_scope(sessions) as s:
        node = credentials.node_by_boot_token(s, site.box, token, lock=True)
        refused = origin.guard(s, node, peer, site.boot.trusted_networks, artifact)
        if refused is None:
            try:
                _servable(node, artifact)
            except Invalid as exc:  # a profile without a template set: nothing to serve
                raise NotFound("not found") from exc
            carries = artifact in seed.CREDENTIAL_ARTIFACTS
            credential = (cache.CACHE.held(node) or secrets.token_urlsafe(32)) if carries \
                else seed.PREVIEW_CREDENTIAL
            try:
                rendered = cache.CACHE.render(site, node, artifact, credential=credential)
            except NotFound:
                raise NotFound("not found") from None
            except Invalid as exc:
                log.error("install config %s for %s is not available: %s", artifact, node.hostname, exc.detail)
                record(s, actor="dgxie", kind="render.error", node=node, reason=exc.detail[:2000],
                       data={"artifact": artifact})
                return None
            callbacks.note_fetch(s, node, artifact)  # may move enrolled -> installing (drops credentials)
            if carries and not credentials.valid(node, "install", credential):
                credentials.mint(node, "install", credential)
                cache.CACHE.hold(node, credential)
            return rendered
    assert refused is not None
    raise refused


def receive_callback(sessions: sessionmaker[Session], site: Site, token: str, body: bytes, peer: str,
                     credential: str | None) -> CallbackOut:
    """Parse and apply one installer callback from `peer` (one transaction); the reply for the
    installer. Without the node's `install` credential only what changes no state is taken."""
    refused: DgxieError | None = None
    with session_scope(sessions) as s:
        node = credentials.node_by_boot_token(s, site.box, token, lock=True)  # first: no oracle
        refused = origin.guard(s, node, peer, site.boot.trusted_networks, "installer callback")
        if refused is None:
            cb = callbacks.parse(body)
            authorized = credentials.valid(node, "install", credential)
            result = callbacks.apply(s, node, cb, interval=site.install.progress_interval_seconds,
                                     authorized=authorized)
            if result.changed and node.state == State.INSTALLED.value:
                result.bootstrap = on_installed(s, site, node, actor=callbacks.INSTALLER)
                result.state = node.state
            return result
    assert refused is not None
    raise refused
