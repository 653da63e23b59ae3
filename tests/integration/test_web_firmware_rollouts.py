"""Firmware rollouts on the dashboard without a browser, on SQLite and PostgreSQL: the Rollouts
list on /ui/firmware (one aggregate query for the counts, no node row loaded), the job page and
its JSON, the start form (operator: a job and its queue job; a viewer's POST is 403; bad input and
refusals are flash messages and create nothing) and Cancel (an ended job's refusal as a flash).

The app runs without its lifespan: no job worker, so a started job stays queued (the browser
test, tests/e2e/test_dashboard.py, runs one to its end against update peers)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from dgxie import db
from dgxie.app import create_app
from dgxie.context import Context
from dgxie.firmware import packages, update_jobs
from dgxie.firmware.update_jobs import KIND, UpdateIn
from dgxie.models import FirmwareUpdate, Job
from dgxie.nodes.schemas import BmcIn, NodeCreate
from dgxie.nodes.service import create_node
from tests.integration.test_web import ORIGIN, sign_in, token


@pytest.fixture
def web(ctx: Context) -> TestClient:
    """The app without its lifespan: no background service, so no job worker takes a job."""
    return TestClient(create_app(ctx), follow_redirects=False)


@pytest.fixture
def admin(auth: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return auth("admin")


@pytest.fixture
def pkg(ctx: Context, tmp_path: Path) -> str:
    """A staged package, `SHA256/NAME`; and three nodes with a BMC (fw0..fw2, tag rack7), one without."""
    image = tmp_path / "bmc-2.0.0.bin"
    image.write_text("VERSION=2.0.0\n")
    p = packages.stage(ctx.site, image)
    with db.session_scope(ctx.sessions) as s:
        for i in range(4):
            bmc = BmcIn(url=f"https://127.0.0.1:{9 + i}") if i < 3 else None
            create_node(s, ctx.site, NodeCreate(hostname=f"fw{i}", mac=f"aa:00:00:00:16:{i:02x}", tags=["rack7"],
                                                bmc=bmc), actor="test")
    return f"{p.sha256}/{p.name}"


def jobs(ctx: Context) -> tuple[int, int]:
    """(firmware update rows, queue jobs of their kind)."""
    with db.session_scope(ctx.sessions) as s:
        return (s.scalar(select(func.count()).select_from(FirmwareUpdate)) or 0,
                s.scalar(select(func.count()).select_from(Job).where(Job.kind == KIND)) or 0)


def flash(c: TestClient) -> str:
    m = re.search(r'<p class="flash (ok|error)" role="status">([^<]*)</p>', c.get("/ui/firmware").text)
    return f"{m.group(1)}: {m.group(2)}" if m else ""


def test_list_and_job_page_and_json(web: TestClient, ctx: Context, admin: dict[str, str], pkg: str) -> None:
    assert web.get("/ui/firmware/updates/1").headers["location"] == "/ui/login"
    assert web.get("/ui/firmware/updates/1.json").status_code == 401
    with db.session_scope(ctx.sessions) as s:
        first = update_jobs.create(s, ctx.site, UpdateIn(nodes=["fw0", "fw3"], package=pkg), actor="token:x").id
        second = update_jobs.create(s, ctx.site, UpdateIn(tags=["rack7"], package=pkg, batch=2), actor="token:y").id
    sign_in(web, token(web, "viewer", admin))
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    event.listen(ctx.engine, "before_cursor_execute", seen)
    fw = web.get("/ui/firmware")
    event.remove(ctx.engine, "before_cursor_execute", seen)
    assert fw.status_code == 200, fw.text
    on_nodes = [q for q in statements if "firmware_update_nodes" in q]
    assert len(on_nodes) == 1 and "count(" in on_nodes[0].lower() and "GROUP BY" in on_nodes[0]
    rows = re.findall(r'<a href="/ui/firmware/updates/(\d+)">', fw.text)
    assert rows == [str(second), str(first)]  # newest first
    assert "pending 1, skipped 1" in fw.text and "pending 3, skipped 1" in fw.text and "tags rack7" in fw.text
    assert "Start a rollout" not in fw.text and 'action="/ui/firmware/updates"' not in fw.text  # a viewer
    page = web.get(f"/ui/firmware/updates/{second}")
    assert page.status_code == 200 and "Cancel rollout" not in page.text
    assert re.findall(r'<tr data-update-node="([^"]+)">', page.text) == ["fw0", "fw1", "fw2", "fw3"]
    assert 'aria-label="fw0 progress"' in page.text and "no BMC" in page.text
    assert f'data-rollout="/ui/firmware/updates/{second}.json"' in page.text
    j = web.get(f"/ui/firmware/updates/{second}.json")
    assert j.status_code == 200 and j.headers["cache-control"] == "no-store"
    body = j.json()
    assert body["status"] == "queued" and body["counts"] == {"pending": 3, "skipped": 1}
    assert [(n["node"], n["wave"], n["status"]) for n in body["nodes"]] == [
        ("fw0", 1, "pending"), ("fw1", 1, "pending"), ("fw2", 2, "pending"), ("fw3", None, "skipped")]
    missing = web.get("/ui/firmware/updates/999.json")
    assert missing.status_code == 404 and missing.json() == {"detail": "no firmware update 999"}
    assert web.get("/ui/firmware/updates/999").status_code == 404
    assert web.get("/ui/firmware/updates/0.json").status_code == 422
    assert web.get(f"/ui/firmware/updates/{second}?page=0").status_code == 422


def test_job_page_rows_are_paged(web: TestClient, ctx: Context, admin: dict[str, str], pkg: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from dgxie.web import rollouts
    monkeypatch.setattr(rollouts, "PAGE_ROWS", 3)
    with db.session_scope(ctx.sessions) as s:
        uid = update_jobs.create(s, ctx.site, UpdateIn(tags=["rack7"], package=pkg), actor="t").id
    sign_in(web, token(web, "viewer", admin))
    one, two = (web.get(f"/ui/firmware/updates/{uid}?page={p}").text for p in (1, 2))
    assert re.findall(r'<tr data-update-node="([^"]+)">', one) == ["fw0", "fw1", "fw2"] and 'rel="next"' in one
    assert re.findall(r'<tr data-update-node="([^"]+)">', two) == ["fw3"] and "page 2 of 2, 4 nodes" in two
    assert f'data-rollout="/ui/firmware/updates/{uid}.json?page=2"' in two
    assert [n["node"] for n in web.get(f"/ui/firmware/updates/{uid}.json?page=2").json()["nodes"]] == ["fw3"]


def test_operator_starts_and_cancels_a_viewer_cannot(web: TestClient, ctx: Context, admin: dict[str, str],
                                                     pkg: str) -> None:
    form: dict[str, Any] = {"package": pkg, "nodes": "fw1, fw0\nfw3", "tags": "", "targets": "", "batch": "2",
                            "drain": "1"}
    viewer = TestClient(web.app, follow_redirects=False)
    vcsrf = sign_in(viewer, token(web, "viewer", admin))
    refused = viewer.post("/ui/firmware/updates", data=form | {"csrf": vcsrf}, headers=ORIGIN)
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"] and jobs(ctx) == (0, 0)
    csrf = sign_in(web, token(web, "operator", admin))
    assert web.post("/ui/firmware/updates", data=form | {"csrf": "x"}, headers=ORIGIN).status_code == 403
    assert web.post("/ui/firmware/updates", data=form | {"csrf": csrf}).status_code == 403  # no Origin
    assert jobs(ctx) == (0, 0)
    fw = web.get("/ui/firmware").text
    assert "Start a rollout" in fw and f'<option value="{pkg}">' in fw
    r = web.post("/ui/firmware/updates", data=form | {"csrf": csrf}, headers=ORIGIN)
    m = re.fullmatch(r"/ui/firmware/updates/(\d+)", r.headers.get("location", ""))
    assert r.status_code == 303 and m is not None, r.text
    uid = int(m.group(1))
    page = web.get(r.headers["location"]).text
    assert "rollout " + str(uid) + " queued: 2 node(s) to update" in page and "Cancel rollout" in page
    assert jobs(ctx) == (1, 1)
    with db.session_scope(ctx.sessions) as s:
        out = update_jobs.to_out(s, update_jobs.get(s, uid))
        assert s.get(Job, update_jobs.get(s, uid).job_id) is not None
    assert out.actor == "token:web-operator" and out.selector == {"nodes": ["fw1", "fw0", "fw3"]}
    assert out.batch == 2 and out.drain and not out.baseline and out.status == "queued"
    assert [(n.node, n.wave, n.status) for n in out.nodes] == [("fw1", 1, "pending"), ("fw0", 1, "pending"),
                                                               ("fw3", None, "skipped")]
    assert viewer.post(f"/ui/firmware/updates/{uid}/cancel", data={"csrf": vcsrf}, headers=ORIGIN).status_code == 403
    c = web.post(f"/ui/firmware/updates/{uid}/cancel", data={"csrf": csrf}, headers=ORIGIN)
    assert c.status_code == 303 and c.headers["location"] == f"/ui/firmware/updates/{uid}"
    page = web.get(c.headers["location"]).text
    assert "2 node(s) cancelled, the job is cancelled" in page and "Cancel rollout" not in page
    again = web.post(f"/ui/firmware/updates/{uid}/cancel", data={"csrf": csrf}, headers=ORIGIN)
    assert again.status_code == 303
    assert 'class="flash error"' in (shown := web.get(again.headers["location"]).text)
    assert "cancel refused: firmware update " + str(uid) + " has ended (cancelled)" in shown
    assert web.post("/ui/firmware/updates/999/cancel", data={"csrf": csrf}, headers=ORIGIN).status_code == 404


@pytest.mark.parametrize(("change", "words"), [
    ({"nodes": " , "}, "name nodes or tags"),
    ({"tags": "rack7"}, "name nodes or tags"),  # both
    ({"package": "0" * 64 + "/nope.bin"}, "no staged package"),
    ({"package": ""}, "no staged package"),
    ({"nodes": "fw0 nope"}, "nope"),
    ({"nodes": "", "tags": "no-such-tag"}, "no node matches"),
    ({"batch": "0"}, "batch"),
    ({"batch": "two"}, "batch"),
    ({"targets": "x" * 300}, "targets"),
])
def test_bad_input_is_a_flash_and_creates_nothing(web: TestClient, ctx: Context, admin: dict[str, str], pkg: str,
                                                  change: dict[str, str], words: str) -> None:
    csrf = sign_in(web, token(web, "operator", admin))
    form = {"csrf": csrf, "package": pkg, "nodes": "fw0", "tags": "", "targets": "", "batch": "1"} | change
    r = web.post("/ui/firmware/updates", data=form, headers=ORIGIN)
    assert r.status_code == 303 and r.headers["location"] == "/ui/firmware#rollouts", r.text
    shown = flash(web)
    assert shown.startswith("error: rollout refused:") and words in shown, shown
    assert jobs(ctx) == (0, 0)
