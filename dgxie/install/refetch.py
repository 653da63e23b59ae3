"""A re-fetch of an install config answered without the ORM (issue 14), or not at all.

An installer (and cloud-init at every boot of an image) fetches its config again and again; a rack
booting at once fetches thousands. `service.serve_config` loads the node, its profile, image and
interfaces as ORM objects for every fetch, which was half a fetch's CPU even when the answer came
from the render cache. `answer` reads the same rows in one statement on the driver's cursor
(`install.fingerprint.read`) and answers only when every check `serve_config` makes passes exactly
as it would there, and nothing would be written:

- the render cache holds this artifact for this node, made for this `Site` from exactly these rows
  (`fingerprint`: all columns of node, profile and image, and the interfaces), its template files
  unchanged (`SeedCache.refetch`);
- the request comes from the node's address (`origin.allowed`: a trusted network, its reservation
  or a live lease of one of its MACs);
- the node's state is one its config is served in;
- the fetch would write nothing (`callbacks.writes_on_fetch`: not an enrolled node starting its
  install, and its last contact is fresh);
- a config that carries the install credential carries the one this process minted and still
  holds, which the rows say is the node's live `install` credential, younger than `REUSE_FOR`.

Anything else (an unknown token, another address, a state with no config, a change in any row, a
credential to mint) returns None, and `serve_config` takes its full path, the one home of every
refusal, event and write. So the answer is byte for byte the full path's (tests compare them).
"""

from __future__ import annotations

import hmac

from sqlalchemy.engine import Engine

from dgxie import db
from dgxie.crypto import hash_token
from dgxie.install import fingerprint, seed
from dgxie.install.cache import CACHE, REUSE_FOR
from dgxie.models.types import utcnow
from dgxie.nodes import callbacks, origin
from dgxie.site import Site


def answer(engine: Engine, site: Site, token: str, artifact: str, peer: str, *, states: frozenset[str],
           image_states: frozenset[str]) -> seed.Served | None:
    """The config `serve_config` would give for this fetch, when it is a pure re-fetch; else None.
    `states`/`image_states`: the states an installer's / an image's config is served in."""
    if not token or len(token) > 128:
        return None
    with db.reading(engine) as conn:
        found = fingerprint.read(conn, hash_token(token))
        if found is None:
            return None
        node_id, state, fp = found
        kept = CACHE.refetch(site, node_id, artifact, fp)
        if kept is None:
            return None
        text, stand_in = kept
        served_in = image_states if fingerprint.family(fp) == "image" else states
        if state not in served_in or callbacks.writes_on_fetch(
                artifact, state, fingerprint.column(fp, "install_seen_at"), utcnow()):
            return None
        macs = [mac for mac, _ in fp[3]]
        if not origin.allowed(conn, fingerprint.column(fp, "ip"), macs, peer, site.boot.trusted_networks):
            return None
    if artifact in seed.CREDENTIAL_ARTIFACTS:
        held = CACHE.held_for(node_id)
        if held is None or not stand_in or not _live(fp, held):
            return None
        text = text.replace(stand_in, held)
    CACHE.refetched()
    return seed.Served(artifact=artifact, text=text)


def _live(fp: fingerprint.Fingerprint, held: str) -> bool:
    """`held` is the node's live install credential in these rows, minted less than REUSE_FOR ago
    (what `SeedCache.held` checks on the ORM node)."""
    hashed, purpose, at = (fingerprint.column(fp, a) for a in ("credential_hash", "credential_purpose",
                                                              "credential_at"))
    if hashed is None or purpose != "install" or at is None or utcnow() - at > REUSE_FOR:  # < credentials.TTL
        return False
    return hmac.compare_digest(hashed, hash_token(held))
