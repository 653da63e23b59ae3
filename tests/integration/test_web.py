"""The dashboard without a browser, on SQLite and PostgreSQL: sessions (cookie, revocation, sign
out), CSRF and Origin checks, roles, bad input as 4xx JSON, the fleet query (search, filters,
sort, paging), the live stream, the offline /docs; and the drain/resume API."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dgxie.app import create_app
from dgxie.context import Context

ORIGIN = {"Origin": "http://testserver"}
ROLES = {"slurmd": {"groups": ["slurm-node"], "drain": "true", "resume": "false"},
         "broken": {"groups": ["b"], "drain": "sh -c 'echo scheduler down; exit 3'"},
         "plain": {"groups": ["p"]}}


@pytest.fixture
def web(make_ctx: Callable[..., Context]) -> Iterator[TestClient]:
    with TestClient(create_app(make_ctx(roles=ROLES)), follow_redirects=False) as c:
        yield c


def token(c: TestClient, role: str, admin: dict[str, str]) -> str:
    r = c.post("/api/v1/tokens", headers=admin, json={"name": f"web-{role}", "role": role})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def sign_in(c: TestClient, tok: str) -> str:
    """Sign in (the client keeps the cookie); the session's CSRF token."""
    r = c.post("/ui/login", data={"token": tok}, headers=ORIGIN)
    assert r.status_code == 303 and r.headers["location"] == "/ui/", r.text
    page = c.get("/ui/")
    assert page.status_code == 200
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m is not None
    return m.group(1)


@pytest.fixture
def admin(web: TestClient, auth: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return auth("admin")


def seed(c: TestClient, admin: dict[str, str], n: int = 120) -> None:
    nodes = [{"hostname": f"n{i:03d}", "mac": f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", "ip": f"10.1.{i // 250}.{i % 250 + 1}",
              "role": "slurmd" if i % 3 else "plain", "tags": ["even" if i % 2 == 0 else "odd"],
              "facts": {"serial": f"SN-{i:05d}"}} for i in range(n)]
    r = c.post("/api/v1/nodes/bulk", headers=admin, json={"nodes": nodes})
    assert r.status_code == 201, r.text


def test_sign_in_cookie_session_and_sign_out(web: TestClient, admin: dict[str, str]) -> None:
    assert web.get("/ui/").headers["location"] == "/ui/login"
    assert web.get("/").headers["location"] == "/ui/"
    bad = web.post("/ui/login", data={"token": "dgxie_nope"}, headers=ORIGIN)
    assert bad.status_code == 401 and "unknown or revoked" in bad.text and "set-cookie" not in bad.headers
    assert web.post("/ui/login", data={"token": "x"}, headers={"Origin": "http://evil.example"}).status_code == 403
    tok = token(web, "viewer", admin)
    r = web.post("/ui/login", data={"token": tok}, headers=ORIGIN)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie and tok not in cookie
    page = web.get("/ui/")
    assert page.status_code == 200 and page.headers["content-security-policy"].startswith("default-src 'self'")
    assert tok not in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    assert web.post("/ui/logout", data={"csrf": ""}, headers=ORIGIN).status_code == 403  # no CSRF token
    out = web.post("/ui/logout", data={"csrf": csrf.group(1)}, headers=ORIGIN)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    web.cookies.set("dgxie_session", cookie.split(";")[0].split("=", 1)[1])  # the old cookie, replayed
    assert web.get("/ui/").status_code == 303


def test_a_revoked_token_ends_its_sessions(web: TestClient, admin: dict[str, str]) -> None:
    sign_in(web, token(web, "operator", admin))
    assert web.delete("/api/v1/tokens/web-operator", headers=admin).status_code in (200, 204)
    assert web.get("/ui/").status_code == 303
    assert web.get("/ui/stream?timeout=1").status_code == 401


def test_actions_need_origin_csrf_and_operator(web: TestClient, admin: dict[str, str]) -> None:
    seed(web, admin, 3)
    csrf = sign_in(web, token(web, "operator", admin))
    form = {"csrf": csrf, "action": "drain"}
    assert web.post("/ui/nodes/n001/action", data=form).status_code == 403  # no Origin nor Referer
    assert web.post("/ui/nodes/n001/action", data=form, headers={"Origin": "http://evil.example"}).status_code == 403
    assert web.post("/ui/nodes/n001/action", data=form | {"csrf": "x"}, headers=ORIGIN).status_code == 403
    r = web.post("/ui/nodes/n001/action", data=form, headers={"Referer": "http://testserver/ui/nodes/n001"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/nodes/n001"
    assert "flash ok" in (shown := web.get("/ui/nodes/n001").text) and "drain hook ok" in shown
    assert "class=\"flash" not in web.get("/ui/nodes/n001").text  # shown once
    assert "Forged" not in web.get("/ui/nodes/n001?msg=Forged").text  # no message from a link
    r = web.post("/ui/nodes/n000/action", data=form, headers=ORIGIN)  # role `plain`: no drain hook
    assert r.status_code == 303 and r.headers["location"] == "/ui/nodes/n000"
    assert 'class="flash error"' in (shown := web.get("/ui/nodes/n000").text) and "no drain hook" in shown
    r = web.post("/ui/nodes/n002/action", data=form | {"action": "erase"}, headers=ORIGIN)
    assert r.status_code == 303 and "erase: n002 is erasing" in web.get(r.headers["location"]).text
    bad = web.post("/ui/nodes/n001/action", data=form | {"action": "explode"}, headers=ORIGIN)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("action:")
    missing = web.post("/ui/nodes/nope/action", data=form, headers=ORIGIN)
    assert missing.status_code == 404 and "detail" in missing.json()
    assert web.post("/ui/nodes/n001/action", content=b'{"a":1}', headers=ORIGIN).status_code == 422
    viewer = TestClient(web.app, follow_redirects=False)
    vcsrf = sign_in(viewer, token(web, "viewer", admin))
    node = viewer.get("/ui/nodes/n001")
    assert node.status_code == 200 and "/action" not in node.text and "Your token is a viewer" in node.text
    refused = viewer.post("/ui/nodes/n001/action", data={"csrf": vcsrf, "action": "drain"}, headers=ORIGIN)
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]


def test_fleet_search_filters_sort_and_pages(web: TestClient, admin: dict[str, str]) -> None:
    seed(web, admin)
    sign_in(web, token(web, "viewer", admin))

    def hosts(query: str) -> list[str]:
        r = web.get("/ui/?" + query)
        assert r.status_code == 200, r.text
        return re.findall(r'<tr data-node="([^"]+)">', r.text)

    assert hosts("") == [f"n{i:03d}" for i in range(50)]
    assert hosts("page=3") == [f"n{i:03d}" for i in range(100, 120)]
    assert hosts("sort=hostname&desc=1")[:2] == ["n119", "n118"]
    assert hosts("q=n07")[:3] == ["n070", "n071", "n072"]
    assert hosts("q=02:00:00:00:00:2a") == ["n042"]
    assert hosts("q=10.1.0.43") == ["n042"]
    assert hosts("q=sn-00099") == ["n099"]
    ip = {f"n{i:03d}": f"10.1.{i // 250}.{i % 250 + 1}" for i in range(0, 120, 6)}  # role plain, tag even
    assert hosts("role=plain&tag=even&sort=ip") == sorted(ip, key=ip.__getitem__)  # as text, as documented
    assert hosts("state=failed") == []
    assert hosts("firmware=outdated") == [] and len(hosts("firmware=unknown")) == 50  # none scanned
    page = web.get("/ui/").text
    assert 'data-count-state="enrolled">120<' in page and "80</strong>" in page
    for bad in ("sort=evil", "state=sideways", "page=0", "q=" + "x" * 201, "page=x", "firmware=meh"):
        r = web.get("/ui/?" + bad)
        assert r.status_code == 422 and "detail" in r.json(), bad


def test_node_and_events_pages_and_the_live_stream(web: TestClient, admin: dict[str, str]) -> None:
    seed(web, admin, 2)
    web.patch("/api/v1/nodes/n001", headers=admin, json={"bmc": {"url": "https://10.9.9.9", "username": "root",
                                                                  "password": "hunter2-secret"}})
    sign_in(web, token(web, "viewer", admin))
    node = web.get("/ui/nodes/n001")
    assert node.status_code == 200 and "hunter2-secret" not in node.text and "set (never shown)" in node.text
    assert "node.create" in node.text and "SN-00001" in node.text
    assert web.get("/ui/nodes/nope").status_code == 404
    ev = web.get("/ui/events?kind=node.*&node=n001")
    assert ev.status_code == 200 and "node.create" in ev.text and "n000" not in ev.text
    assert web.get("/ui/events?before=0").status_code == 422
    with web.stream("GET", "/ui/stream?timeout=1") as s:
        body = "".join(s.iter_text())
    assert s.headers["content-type"].startswith("text/event-stream")
    assert '"node": "n000"' in body and "event:" not in body  # unnamed messages: onmessage gets every kind
    with web.stream("GET", "/ui/stream?timeout=1&node=n001") as s:
        body = "".join(s.iter_text())
    assert '"node": "n001"' in body and '"node": "n000"' not in body


def test_api_docs_are_served_by_dgxie(web: TestClient) -> None:
    html = web.get("/docs").text
    assert "/ui/static/swagger/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    assert not [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if not u.startswith("/")]
    assert web.get("/ui/static/swagger/swagger-ui-bundle.js").status_code == 200
    assert web.get("/redoc").status_code == 404


def test_drain_and_resume_api(web: TestClient, admin: dict[str, str], auth: Callable[[str], dict[str, str]]) -> None:
    seed(web, admin, 3)
    web.patch("/api/v1/nodes/n002", headers=admin, json={"role": "broken"})
    r = web.post("/api/v1/nodes/n001/drain", headers=auth("operator"))
    assert r.status_code == 200 and r.json() | {"output_tail": ""} == {
        "node": "n001", "hook": "drain", "ok": True, "rc": 0, "output_tail": "", "drained": True}
    r = web.post("/api/v1/nodes/n001/resume", headers=auth("operator"))  # resume is `false`: it fails
    assert r.status_code == 200 and r.json()["ok"] is False and r.json()["drained"] is True
    r = web.post("/api/v1/nodes/n000/drain", headers=auth("operator"))
    assert r.status_code == 409 and "no drain hook" in r.json()["detail"]
    r = web.post("/api/v1/nodes/n002/drain", headers=auth("operator"))
    assert r.status_code == 409 and "scheduler down" in r.json()["detail"]
    assert web.post("/api/v1/nodes/n001/drain", headers=auth("viewer")).status_code == 403
    assert web.post("/api/v1/nodes/nope/drain", headers=auth("operator")).status_code == 404
    kinds: list[Any] = [(e["node"], e["kind"], e["data"].get("ok")) for e in
                        web.get("/api/v1/nodes/n001/events", headers=admin).json()
                        + web.get("/api/v1/nodes/n002/events", headers=admin).json() if e["kind"].startswith("hook.")]
    assert kinds == [("n001", "hook.drain", True), ("n001", "hook.resume", False), ("n002", "hook.drain", False)]


def test_firmware_and_mirrors_pages_without_data(web: TestClient, admin: dict[str, str]) -> None:
    seed(web, admin, 2)
    assert web.get("/ui/firmware").headers["location"] == "/ui/login"
    assert web.get("/ui/mirrors/up/job").status_code == 401
    csrf = sign_in(web, token(web, "operator", admin))
    fw = web.get("/ui/firmware")
    assert fw.status_code == 200 and "No verdict (2)" in fw.text and "n001" in fw.text
    csv = web.get("/ui/firmware.csv?node=n001")
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.splitlines()[1].startswith("n001,,")
    assert web.get("/ui/firmware.json").json()[0]["status"] == "unknown"
    assert web.get("/ui/firmware.xml").status_code == 404
    assert web.get("/ui/firmware?status=sideways").status_code == 422
    assert "No mirror is configured" in web.get("/ui/mirrors").text
    r = web.post("/ui/mirrors/nope/action", data={"csrf": csrf, "action": "sync"}, headers=ORIGIN)
    assert r.status_code == 404 and "detail" in r.json()
    r = web.post("/ui/mirrors/nope/action", data={"csrf": csrf, "action": "delete"}, headers=ORIGIN)
    assert r.status_code == 422


def test_tokens_page_is_for_admins(web: TestClient, admin: dict[str, str]) -> None:
    op = TestClient(web.app, follow_redirects=False)
    sign_in(op, token(web, "operator", admin))
    assert op.get("/ui/tokens").status_code == 403
    csrf = re.search(r'name="csrf" value="([^"]+)"', op.get("/ui/").text)
    assert csrf is not None
    assert op.post("/ui/tokens", data={"csrf": csrf.group(1), "name": "x", "role": "admin"},
                   headers=ORIGIN).status_code == 403  # an operator cannot mint an admin
    acsrf = sign_in(web, admin["Authorization"].removeprefix("Bearer "))
    made = web.post("/ui/tokens", data={"csrf": acsrf, "name": "ci", "role": "viewer"}, headers=ORIGIN)
    assert made.status_code == 201 and "not shown again" in made.text
    secret = re.search(r'id="new-token" readonly size="60" value="([^"]+)"', made.text)
    assert secret is not None and "value=\"dgxie_" not in web.get("/ui/tokens").text  # shown once
    assert web.get("/api/v1/nodes", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code == 200
    dup = web.post("/ui/tokens", data={"csrf": acsrf, "name": "ci", "role": "viewer"}, headers=ORIGIN)
    assert dup.status_code == 409 and "already exists" in dup.text
    bad = web.post("/ui/tokens", data={"csrf": acsrf, "name": "Bad Name", "role": "root"}, headers=ORIGIN)
    assert bad.status_code == 422
    r = web.post("/ui/tokens/ci/revoke", data={"csrf": acsrf}, headers=ORIGIN)
    assert r.status_code == 303 and "token ci revoked" in web.get("/ui/tokens").text
    assert web.get("/api/v1/nodes", headers={"Authorization": f"Bearer {secret.group(1)}"}).status_code == 401
    assert web.post("/ui/tokens/nope/revoke", data={"csrf": acsrf}, headers=ORIGIN).status_code == 404


def test_behind_a_tls_proxy(make_ctx: Callable[..., Context], auth: Callable[[str], dict[str, str]]) -> None:
    """The browser speaks HTTPS to a proxy, the proxy plain HTTP to dgxie: the Origin is https://
    (the proxy keeps the Host, or is the public URL) and the session cookie is Secure."""
    with TestClient(create_app(make_ctx(public_url="https://dgxie.example")), follow_redirects=False) as c:
        tok = auth("viewer")["Authorization"].removeprefix("Bearer ")
        evil = c.post("/ui/login", data={"token": tok}, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403
        r = c.post("/ui/login", data={"token": tok}, headers={"Origin": "https://testserver"})
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
        r = c.post("/ui/login", data={"token": tok}, headers={"Origin": "https://dgxie.example", "Host": "10.0.0.1"})
        assert r.status_code == 303
