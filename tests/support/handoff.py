"""Shared helpers for the handoff tests: nodes in a given state, a context with fast polling."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dgxie import db
from dgxie.boot.state import State
from dgxie.context import Context
from dgxie.models import Node
from dgxie.nodes import credentials, service
from dgxie.nodes.lifecycle import transition
from dgxie.nodes.schemas import NodeCreate
from tests.support.paths import REPO

PATH_TO_INSTALLED = (State.INSTALLING, State.INSTALLED)

FACTS_DGX = {"cpus": 224, "sockets": 2, "cores_per_socket": 56, "threads_per_core": 2, "memory_mib": 2097152,
             "gpus": 8, "gpu_model": "NVIDIA H100 80GB HBM3", "model": "DGXH100", "manufacturer": "NVIDIA",
             "serial": "1234"}


def add_node(ctx: Context, hostname: str, n: int, *, role: str | None, state: State = State.INSTALLED,
             **kw: Any) -> None:
    """Enroll a node and walk it through the lifecycle up to `state`."""
    with db.session_scope(ctx.sessions) as s:
        node = service.create_node(s, ctx.site, NodeCreate(hostname=hostname, mac=f"aa:bb:cc:00:01:{n:02x}",
                                                           ip=f"10.0.0.{n}", role=role, **kw), actor="test")
        path = [State.INSTALLING, State.INSTALLED, State.BOOTSTRAPPING, State.READY]
        for st in path[: path.index(state) + 1] if state in path else []:
            transition(s, node, st, actor="test", reason="test setup")


def node_state(ctx: Context, hostname: str) -> str:
    with db.session_scope(ctx.sessions) as s:
        return service.get_node(s, hostname).state


def boot_token(ctx: Context, hostname: str) -> str:
    with db.session_scope(ctx.sessions) as s:
        node: Node = service.get_node(s, hostname)
        return credentials.boot_token(ctx.site.box, node)


def templates_with(tmp: Path, name: str, body: str) -> Path:
    """A copy of the repo's templates plus one test role script `bootstrap/NAME`."""
    dst = tmp / "templates"
    shutil.copytree(REPO / "templates", dst, dirs_exist_ok=True)
    (dst / "bootstrap" / name).write_text(body)
    return dst
