"""What a node's install config is rendered from in the database, as one comparable value.

A config (`seed.node_vars` and the template it picks) reads the node's row, its interfaces, its
profile's row and that profile's image's row; everything else it reads is the `Site` (one object
per loaded config) and the template files. `of_node` takes that value from the ORM objects a
render used; `read` takes it from the database in one statement on the driver's cursor
(`dbdirect`), with no ORM. Equal values mean the render would be the same (`install.refetch`).

Every column of the three rows is in it (not only those a template reads today: a new input
cannot be forgotten here), but the node's encrypted BMC password, which no config reads and
which should not sit in the process's memory for this. The interfaces are (MAC, name) in id order.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection, Dialect

from dgxie.dbdirect import Direct
from dgxie.models import Image, Node, Profile
from dgxie.nodes.reads import interfaces_column

N, P, IMG = Node.__table__, Profile.__table__, Image.__table__
_NODE = tuple(c for c in N.columns if c.key != "bmc_password_enc")
_PROFILE, _IMAGE = tuple(P.columns), tuple(IMG.columns)


def _attr(model: type[Any], column: Any) -> str:
    return str(model.__mapper__.get_property_by_column(column).key)


_NODE_ATTRS = tuple(_attr(Node, c) for c in _NODE)
_PROFILE_ATTRS, _IMAGE_ATTRS = tuple(_attr(Profile, c) for c in _PROFILE), tuple(_attr(Image, c) for c in _IMAGE)

Fingerprint = tuple[Any, ...]


def of_node(node: Node) -> Fingerprint:
    """The value from the ORM objects a render read (node, its profile and image, its interfaces)."""
    profile = node.profile
    image = profile.image if profile is not None else None
    return (tuple(getattr(node, a) for a in _NODE_ATTRS),
            tuple(getattr(profile, a) for a in _PROFILE_ATTRS) if profile is not None else None,
            tuple(getattr(image, a) for a in _IMAGE_ATTRS) if image is not None else None,
            tuple((i.mac, i.name) for i in node.interfaces))


class _Read:
    """The statement for one dialect: the three rows and the interfaces of the node holding a
    boot-token hash."""

    def __init__(self, dialect: Dialect) -> None:
        stmt = (select(*_NODE, *(c.label(f"p_{c.key}") for c in _PROFILE), *(c.label(f"i_{c.key}") for c in _IMAGE),
                       interfaces_column(dialect.name).label("ifaces"))
                .select_from(N.outerjoin(P, N.c.profile_id == P.c.id).outerjoin(IMG, P.c.image_id == IMG.c.id))
                .where(N.c.boot_token_hash == bindparam("hash")))
        self.direct = Direct(stmt, dialect)


_READS: dict[str, _Read] = {}


def read(conn: Connection, token_hash: str) -> tuple[int, str, Fingerprint] | None:
    """(node id, state, fingerprint) of the node whose boot token hashes to `token_hash`, or None."""
    found = _READS.get(conn.dialect.name)
    if found is None:
        found = _READS[conn.dialect.name] = _Read(conn.dialect)
    rows = found.direct.all(conn, {"hash": token_hash})
    if not rows:
        return None
    row = tuple(rows[0])
    n, p = len(_NODE), len(_PROFILE)
    node, profile, image = row[:n], row[n:n + p], row[n + p:n + p + len(_IMAGE)]
    pairs = row[-1] if isinstance(row[-1], list) else json.loads(row[-1])
    values = dict(zip(_NODE_ATTRS, node, strict=True))
    return values["id"], values["state"], (
        node, profile if profile[0] is not None else None, image if image[0] is not None else None,
        tuple((mac, name) for mac, name in pairs))


def column(fingerprint: Fingerprint, attr: str) -> Any:
    """The node's `attr` as recorded in `fingerprint`."""
    return fingerprint[0][_NODE_ATTRS.index(attr)]


def family(fingerprint: Fingerprint) -> str | None:
    """The install family of the node's profile's template (`seed.family_of`), None without one."""
    profile = fingerprint[1]
    return None if profile is None else str(profile[_PROFILE_ATTRS.index("template")]).split("/", 1)[0]
