"""Node pages and the Ansible inventory are served from a cache keyed by the database's
change signal (`dgxie.nodes.generation`): every committed change is seen at the next request,
made through this app, another app on the same database, or a row written without an event;
`ETag` + `If-None-Match` answer 304 while nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from dgxie.app import create_app
from dgxie.models import Node


def test_every_change_is_seen_and_etags_answer_304(client, auth, make_ctx, ctx) -> None:
    h = auth("operator")
    for i in range(3):
        r = client.post("/api/v1/nodes", json={"hostname": f"n{i}", "mac": f"02:00:00:00:00:0{i}", "role": "slurmd"},
                        headers=h)
        assert r.status_code == 201, r.text
    first = client.get("/api/v1/nodes?limit=2", headers=h)
    assert [n["hostname"] for n in first.json()["items"]] == ["n0", "n1"] and first.json()["total"] == 3
    etag = first.headers["etag"]
    again = client.get("/api/v1/nodes?limit=2", headers=h | {"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""

    assert client.patch("/api/v1/nodes/n0", json={"tags": ["rack9"]}, headers=h).status_code == 200
    changed = client.get("/api/v1/nodes?limit=2", headers=h | {"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["items"][0]["tags"] == ["rack9"]
    assert changed.headers["etag"] != etag
    assert client.get("/api/v1/nodes/n0", headers=h).json()["tags"] == ["rack9"]

    # another dgxie instance on the same database changes a node: seen here at the next request
    other = make_ctx()
    with TestClient(create_app(other)) as c2:
        assert c2.delete("/api/v1/nodes/n1", headers=h).status_code == 204
    assert [n["hostname"] for n in client.get("/api/v1/nodes?limit=2", headers=h).json()["items"]] == ["n0", "n2"]
    assert client.get("/api/v1/nodes/n1", headers=h).status_code == 404

    # a row written without an event (install progress, facts): updated_at moves
    before = client.get("/api/v1/nodes/n2", headers=h).json()
    with ctx.sessions() as s, s.begin():
        s.execute(update(Node).where(Node.hostname == "n2").values(
            state="installed", updated_at=datetime.now(UTC) + timedelta(seconds=1)))
    after = client.get("/api/v1/nodes/n2", headers=h).json()
    assert (before["state"], after["state"]) == ("enrolled", "installed")

    inv = client.get("/api/v1/inventory/ansible", headers=h)
    assert inv.status_code == 200 and "n2" in inv.json()["_meta"]["hostvars"]
    assert client.get("/api/v1/inventory/ansible", headers=h | {"If-None-Match": inv.headers["etag"]}).status_code == 304
    assert client.patch("/api/v1/nodes/n2", json={"role": None}, headers=h).status_code == 200
    assert "n2" not in client.get("/api/v1/inventory/ansible", headers=h).json()["_meta"]["hostvars"]
