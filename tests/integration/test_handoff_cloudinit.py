"""cloud-init bootstrap: the per-node script endpoint, its token gate, secrets, and the done callback.

The last test serves dgxie over loopback and runs the exact line the install config runs
(`fetch_command`) with real bash and curl: the script fetches, runs, and reports back.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from dgxie import db
from dgxie.app import create_app
from dgxie.boot.state import State
from dgxie.context import Context
from dgxie.handoff import bootstrap, secrets
from dgxie.models import Event
from tests.support.handoff import add_node, boot_token, node_state, templates_with
from tests.support.net import free_port

MUNGE = "bXVuZ2Uta2V5LWZvci10ZXN0cy0wMTIzNDU2Nzg5"  # what `base64 -w0 munge.key` gives
JOIN = "abcdef.0123456789abcdef"
ROLES = {
    "slurmd": {"groups": ["slurm-node"], "bootstrap": "cloud-init", "script": "bootstrap/slurmd.sh.j2"},
    "k8s-worker": {"groups": ["kube_node"], "bootstrap": "cloud-init", "script": "bootstrap/k8s-worker.sh.j2"},
    "k8s-control": {"groups": ["kube_control_plane", "etcd"]},
}


# The test client is a trusted relay here (these tests are about the bootstrap, not address
# binding: tests/integration/test_boot_trust.py); the real-curl test runs on loopback, trusted too.
RELAY = "10.99.0.1"
TRUSTED = {"trusted_networks": ["10.99.0.0/24", "127.0.0.0/8"]}
DONE = re.compile(r"/bootstrap/done/([A-Za-z0-9_-]+)")


def done_path(token: str, script: str) -> str:
    """The report path the served script carries (with its one-time bootstrap credential)."""
    m = DONE.search(script)
    assert m, "the script has no report URL"
    return f"/boot/n/{token}/bootstrap/done/{m.group(1)}"


def events(ctx: Context, hostname: str) -> list[Event]:
    with db.session_scope(ctx.sessions) as s:
        return list(s.scalars(select(Event).where(Event.hostname == hostname).order_by(Event.id)))


@pytest.fixture
def hctx(make_ctx: Callable[..., Context]) -> Context:
    return make_ctx(roles=ROLES, handoff={"enabled": False}, boot=TRUSTED)


@pytest.fixture
def hclient(hctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(hctx), client=(RELAY, 50000)) as c:
        yield c


def put_secret(ctx: Context, name: str, value: str, roles: list[str] | None = None) -> None:
    with db.session_scope(ctx.sessions) as s:
        secrets.set_secret(s, ctx.site, name, value, roles=roles, actor="test")


def test_script_is_token_gated_and_carries_only_this_roles_secrets(hctx, hclient, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    add_node(hctx, "gpu01", 11, role="slurmd", vars={"slurm_conf_server": "login01:6817"})
    add_node(hctx, "gpu02", 12, role="k8s-worker", vars={"k8s_api_endpoint": "10.0.0.1:6443"})
    tok = boot_token(hctx, "gpu01")
    assert hclient.get("/boot/n/not-the-token/bootstrap").status_code == 404
    assert hclient.post("/boot/n/not-the-token/bootstrap/done/x?status=ok").status_code == 404
    missing = hclient.get(f"/boot/n/{tok}/bootstrap")
    assert missing.status_code == 503 and "secret 'munge-key' is not set" in missing.json()["detail"]
    assert node_state(hctx, "gpu01") == "installed"  # nothing changed
    put_secret(hctx, "munge-key", MUNGE, roles=["slurmd"])
    put_secret(hctx, "k8s-join-token", JOIN, roles=["k8s-worker"])
    put_secret(hctx, "k8s-ca-cert-hash", "sha256:" + "ab" * 32, roles=["k8s-worker"])
    r = hclient.get(f"/boot/n/{tok}/bootstrap")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    script = r.text
    assert MUNGE in script and JOIN not in script  # only what its role may receive
    assert "SLURMD_OPTIONS='--conf-server login01:6817'" in script
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    assert node_state(hctx, "gpu01") == "bootstrapping"
    again = hclient.get(f"/boot/n/{tok}/bootstrap")  # served once per install: refused, and recorded
    assert again.status_code == 409 and "already served" in again.json()["detail"] and MUNGE not in again.text
    assert [e.kind for e in events(hctx, "gpu01")][-1] == "security.refused"
    k8s = hclient.get(f"/boot/n/{boot_token(hctx, 'gpu02')}/bootstrap").text
    assert f"--token {JOIN}" in k8s and "kubeadm join 10.0.0.1:6443" in k8s and MUNGE not in k8s
    # the secret never reaches the event log or the logs
    text = "\n".join(f"{e.reason} {json.dumps(e.data)}" for e in events(hctx, "gpu01") + events(hctx, "gpu02"))
    assert MUNGE not in text and JOIN not in text and MUNGE not in caplog.text and JOIN not in caplog.text
    assert [e.kind for e in events(hctx, "gpu01")][-2] == "bootstrap.start"


def test_done_callback_moves_to_ready_or_failed_with_a_redacted_tail(hctx, hclient) -> None:
    put_secret(hctx, "munge-key", MUNGE)
    add_node(hctx, "gpu01", 11, role="slurmd")
    add_node(hctx, "gpu02", 12, role="slurmd")
    t1, t2 = boot_token(hctx, "gpu01"), boot_token(hctx, "gpu02")
    assert hclient.post(f"/boot/n/{t1}/bootstrap/done/x?status=ok").status_code == 409  # not bootstrapping yet
    d1 = done_path(t1, hclient.get(f"/boot/n/{t1}/bootstrap").text)
    d2 = done_path(t2, hclient.get(f"/boot/n/{t2}/bootstrap").text)
    assert d1 != d2
    assert hclient.post(f"{d1}?status=maybe").status_code == 422
    assert hclient.post(d1, content=b"[1]", headers={"content-type": "application/json"}).status_code == 422
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # was a RecursionError (500), unauthenticated
    assert hclient.post(d1, content=deep, headers={"content-type": "application/json"}).status_code == 422
    # the result needs the credential the script carries (the boot token alone is not enough)
    for wrong in (f"/boot/n/{t1}/bootstrap/done/x", d2.replace(t2, t1)):
        r = hclient.post(f"{wrong}?status=ok")
        assert (r.status_code, r.json()) == (401, {"detail": "bootstrap credential not valid"})
    assert node_state(hctx, "gpu01") == "bootstrapping"
    r = hclient.post(f"{d1}?status=ok", content=b"slurmd started\n")
    assert r.status_code == 200 and r.json() == {"node": "gpu01", "state": "ready"}
    decoded = base64.b64decode(MUNGE)  # what the script writes to /etc/munge/munge.key
    leak = f"echo {MUNGE}\n{decoded.decode()}\n{decoded.hex()}\n{base64.b64encode(MUNGE.encode()).decode()}\n"
    r = hclient.post(d2, json={"status": "failed", "output": leak + "munged: bad key"})
    assert r.json()["state"] == "failed"
    done = events(hctx, "gpu02")[-1]
    assert done.kind == "bootstrap.done" and done.to_state == "failed" and "munged: bad key" in done.reason
    tail = done.data["output_tail"]
    assert tail.count("[redacted]") == 4, tail
    for form in (MUNGE, decoded.decode(), decoded.hex(), base64.b64encode(MUNGE.encode()).decode()):
        assert form not in tail
    assert hclient.post(f"{d1}?status=ok").status_code == 409  # already ready
    # other methods have no script; other states get none
    add_node(hctx, "mgmt01", 13, role="k8s-control")
    assert hclient.get(f"/boot/n/{boot_token(hctx, 'mgmt01')}/bootstrap").status_code == 404
    add_node(hctx, "gpu03", 14, role="slurmd", state=State.ENROLLED)
    assert hclient.get(f"/boot/n/{boot_token(hctx, 'gpu03')}/bootstrap").status_code == 409


def test_none_role_goes_straight_to_ready(hctx) -> None:
    add_node(hctx, "mgmt01", 13, role="k8s-control")
    with db.session_scope(hctx.sessions) as s:
        from dgxie.nodes.service import get_node

        assert bootstrap.on_installed(s, hctx.site, get_node(s, "mgmt01"), actor="test") == "none"
    assert node_state(hctx, "mgmt01") == "ready"


@pytest.fixture
def served(make_ctx: Callable[..., Context], tmp_path: Path) -> Iterator[Context]:
    body = ('echo "hello from $DGXIE_HOSTNAME"\n'
            'test {{ secret("probe") | shquote }} = "$(cat {{ var("expect_file") | shquote }})"\n'
            '{% if var("fail", false) %}echo "about to fail"; exit 3{% endif %}\n')
    port = free_port()
    ctx = make_ctx(roles={"probe": {"groups": ["probe"], "bootstrap": "cloud-init", "script": "bootstrap/probe.sh.j2"}},
                   handoff={"enabled": False, "templates_dir": str(templates_with(tmp_path, "probe.sh.j2", body))},
                   public_url=f"http://127.0.0.1:{port}", boot=TRUSTED)
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield ctx
    server.should_exit = True
    th.join(timeout=15)


@pytest.mark.parametrize("fail", [False, True])
def test_real_bash_and_curl_run_the_served_script(served: Context, tmp_path: Path, fail: bool) -> None:
    expect = tmp_path / "expect"
    expect.write_text("probe-secret-42")
    put_secret(served, "probe", "probe-secret-42")
    vars_: dict[str, Any] = {"expect_file": str(expect), "fail": fail}
    add_node(served, "gpu01", 11, role="probe", vars=vars_)
    line = bootstrap.fetch_command(served.site.public_url, boot_token(served, "gpu01"))
    env = dict(os.environ, DGXIE_BOOTSTRAP_LOG=str(tmp_path / "bootstrap.log"))
    p = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == (3 if fail else 0), p.stderr
    assert node_state(served, "gpu01") == ("failed" if fail else "ready")
    done = events(served, "gpu01")[-1]
    assert "hello from gpu01" in done.data["output_tail"]
    assert ("about to fail" in done.data["output_tail"]) is fail
    assert "probe-secret-42" not in json.dumps(done.data)


def test_missing_or_broken_role_templates(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    from dgxie.errors import ConfigError

    with pytest.raises(ConfigError, match=r"roles.r.script: template bootstrap/nosuch.sh.j2 not found"):
        make_ctx(roles={"r": {"groups": ["g"], "bootstrap": "cloud-init", "script": "bootstrap/nosuch.sh.j2"}})
    tdir = templates_with(tmp_path, "broken.sh.j2", "echo {{ unclosed\n")
    ctx = make_ctx(roles={"r": {"groups": ["g"], "bootstrap": "cloud-init", "script": "bootstrap/broken.sh.j2"}},
                   handoff={"enabled": False, "templates_dir": str(tdir)}, boot=TRUSTED)
    add_node(ctx, "gpu01", 11, role="r")
    with TestClient(create_app(ctx), client=(RELAY, 50000)) as c:
        r = c.get(f"/boot/n/{boot_token(ctx, 'gpu01')}/bootstrap")
    assert r.status_code == 503 and "bootstrap template bootstrap/broken.sh.j2" in r.json()["detail"]
    assert node_state(ctx, "gpu01") == "installed"
