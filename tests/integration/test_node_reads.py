"""`nodes.reads` (the API's reads without the ORM) answers byte for byte what the ORM path
(`service.get_node`/`list_nodes` + `to_out`) answers, on both databases: nodes with and without a
profile, interfaces, a BMC with a password, facts and vars; the same filters and refusals."""

from __future__ import annotations

import pytest

from dgxie import db
from dgxie.catalog.profiles import create_profile
from dgxie.catalog.schemas import ProfileIn
from dgxie.context import Context
from dgxie.errors import Invalid, NotFound
from dgxie.nodes import reads, service
from dgxie.nodes.schemas import BmcIn, InterfaceIn, NodeCreate, NodePage


@pytest.fixture
def seeded(ctx: Context) -> Context:
    with db.session_scope(ctx.sessions) as s:
        create_profile(s, ctx.site, ProfileIn(name="ubuntu"), actor="t")
        for i in range(12):
            service.create_node(s, ctx.site, NodeCreate(
                hostname=f"gpu{i:02d}", ip=f"10.0.0.{10 + i}" if i % 2 else None,
                profile="ubuntu" if i % 3 == 0 else None, role="slurmd" if i % 2 else "k8s-worker",
                tags=[f"rack{i % 4}", "h100"],
                mac=f"02:00:00:00:{i:02x}:01",
                interfaces=[InterfaceIn(mac=f"02:00:00:00:{i:02x}:02", name="eno2"),
                            InterfaceIn(mac=f"02:00:00:00:{i:02x}:03")],
                bmc=BmcIn(url=f"https://10.1.0.{i}", username="admin", password="s3cret") if i % 4 == 1 else None,
                facts={"serial": f"SN{i}", "gpus": [{"model": "H100", "n": i}]}, vars={"k": {"v": i}}), actor="t")
    return ctx


def test_get_is_the_orm_answer(seeded: Context) -> None:
    with db.session_scope(seeded.sessions) as s, seeded.engine.connect() as conn:
        for ref in ("gpu00", "GPU05", "gpu09", "02:00:00:00:03:02", "02-00-00-00-07-01"):
            assert reads.get(conn, ref).model_dump_json() == service.to_out(service.get_node(s, ref)).model_dump_json()
        with pytest.raises(NotFound, match="no node 'gpu99'"):
            reads.get(conn, "gpu99")
    with seeded.engine.connect() as conn:
        body = reads.get(conn, "gpu01").model_dump_json()
    assert '"password_set":true' in body and "s3cret" not in body


@pytest.mark.parametrize("filters", [{}, {"state": "enrolled"}, {"role": "slurmd"}, {"tag": "rack1"},
                                     {"profile": "ubuntu"}, {"tag": "h100", "role": "k8s-worker", "limit": 2,
                                                             "offset": 1}, {"offset": 50}, {"tag": "none"}])
def test_page_is_the_orm_answer(seeded: Context, filters: dict[str, object]) -> None:
    limit, offset = int(filters.pop("limit", 100)), int(filters.pop("offset", 0))  # type: ignore[call-overload]
    with db.session_scope(seeded.sessions) as s, seeded.engine.connect() as conn:
        nodes, total = service.list_nodes(s, limit=limit, offset=offset, **filters)  # type: ignore[arg-type]
        want = NodePage(items=[service.to_out(n) for n in nodes], total=total, limit=limit, offset=offset)
        got = reads.page(conn, limit=limit, offset=offset, **filters)  # type: ignore[arg-type]
    assert got.model_dump_json() == want.model_dump_json()
    assert filters.get("tag") == "none" or want.total > 0


def test_page_refuses_what_the_orm_path_refuses(seeded: Context) -> None:
    with seeded.engine.connect() as conn:
        for kw, msg in (({"state": "bogus"}, "unknown state"), ({"profile": "nope"}, "unknown profile"),
                        ({"limit": 0}, "limit"), ({"offset": -1}, "offset")):
            with pytest.raises(Invalid, match=msg):
                reads.page(conn, **kw)  # type: ignore[arg-type]
