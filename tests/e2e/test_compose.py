"""docker-compose.yml and the Dockerfile for real, with podman and podman-compose: the images built
offline (tests/support/containers.py), the stack (dgxie + PostgreSQL with a named volume) started,
/healthz and /readyz answered, an admin token made with the CLI inside the container, a node
enrolled through the API with it, then `podman-compose restart` of each service: both really restarted,
and the node, the token and the data directory's secret key are all still there.

Then the Helm chart's API container as rendered (image, user, dropped capabilities, its ConfigMap's
dgxie.yaml, DGXIE_* from its Secret, probes' port) run with podman on the stack's database: a
second instance on one PostgreSQL that answers its probes and sees the first one's node.

Time: about 40 s with the rootfs and image layers cached; about 3.5 min with nothing cached (the
rootfs about 60 s, the dgxie image about 40 s).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.chart import KEY, one, render
from tests.support.containers import COMPOSE, DB_IMAGE, DGXIE_IMAGE, build_images, podman_env, run
from tests.support.net import free_port

pytestmark = [
    pytest.mark.containers,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mmdebstrap --mode=root, rootful podman)"),
    pytest.mark.skipif(not shutil.which("podman") or not shutil.which("mmdebstrap"), reason="needs podman, mmdebstrap"),
    pytest.mark.timeout(1800),
]


class Stack:
    """A running compose project: its environment, its URL, and podman-compose on it."""

    def __init__(self, workdir: Path) -> None:
        self.project = f"dgxietest{secrets.token_hex(3)}"
        self.port = free_port()
        config = workdir / "dgxie.yaml"
        config.write_text(f'api: {{listen: "127.0.0.1:{self.port}"}}\n')
        config.chmod(0o600)
        self.env = {**podman_env(workdir), "DGXIE_IMAGE": DGXIE_IMAGE, "DGXIE_DB_IMAGE": DB_IMAGE,
                    "DGXIE_DB_PASSWORD": secrets.token_hex(12), "DGXIE_DB_PORT": str(free_port()),
                    "DGXIE_CONFIG_FILE": str(config)}
        self.url = f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str, timeout: float = 300) -> str:
        return run([*COMPOSE, "-p", self.project, *args], self.env, timeout=timeout)

    def exec(self, *cmd: str) -> str:
        return self.compose("exec", "-T", "dgxie", *cmd, timeout=120)

    def started_at(self) -> dict[str, str]:
        """Container name -> when it last started (podman inspect)."""
        names = run(["podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={self.project}",
                     "--format", "{{.Names}}"], self.env, timeout=60).split()
        out = run(["podman", "inspect", *names], self.env, timeout=60)
        return {c["Name"]: c["State"]["StartedAt"] for c in json.loads(out)}

    def wait_ready(self, deadline_s: float = 180) -> None:
        """Until /readyz says ready (database reachable, schema at head) and /healthz answers 200."""
        end, last = time.monotonic() + deadline_s, ""
        while time.monotonic() < end:
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=3)
                if r.status_code == 200 and r.json().get("status") == "ready":
                    assert httpx.get(f"{self.url}/healthz", timeout=3).status_code == 200
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.TransportError as e:
                last = repr(e)
            time.sleep(1)
        logs = subprocess.run([*COMPOSE, "-p", self.project, "logs"], env=self.env, capture_output=True,
                              text=True, timeout=60)
        raise AssertionError(f"not ready within {deadline_s} s: {last}\n{logs.stdout[-3000:]}{logs.stderr[-2000:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("compose")
    s = Stack(workdir)
    build_images(s.env)
    try:
        # The database first, until it accepts connections: podman 4.3 ignores `condition:
        # service_healthy`, and a dgxie started too early exits (its restart policy starts it again).
        s.compose("up", "-d", "--no-build", "db")
        end = time.monotonic() + 120
        while subprocess.run([*COMPOSE, "-p", s.project, "exec", "-T", "db", "pg_isready", "-U", "dgxie"], env=s.env,
                             capture_output=True, timeout=60).returncode != 0:
            assert time.monotonic() < end, "the database container did not accept connections within 120 s"
            time.sleep(1)
        s.compose("up", "-d", "--no-build")
        s.wait_ready()
        yield s
    finally:
        subprocess.run([*COMPOSE, "-p", s.project, "down", "-v", "-t", "10"], env=s.env, capture_output=True,
                       timeout=300)


def test_compose_stack_enrolls_and_survives_restart(stack: Stack) -> None:
    token = stack.exec("dgxie", "token", "create", "--role", "admin", "--name", "compose-test").strip()
    assert token.startswith("dgxie_")
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(f"{stack.url}/api/v1/nodes", headers=auth, timeout=10,
                   json={"hostname": "gpu01", "mac": "02:00:00:00:0c:01", "tags": ["compose"]})
    assert r.status_code == 201, r.text
    key_before = stack.exec("sha256sum", "/var/lib/dgxie/secret.key")
    before = stack.started_at()
    assert len(before) == 2, before  # db and dgxie

    # Service by service, dependency first: a whole-project `podman-compose restart` restarts both at
    # once, and podman then may refuse to start dgxie while db restarts ("some dependencies of
    # container ... are not started: container state improper"), leaving it stopped; podman-compose
    # does not report it. dgxie stays up while db restarts: it reconnects.
    out = stack.compose("restart", "db", timeout=300)
    stack.wait_ready()
    out += stack.compose("restart", "dgxie", timeout=300)
    after = stack.started_at()
    assert after.keys() == before.keys() and all(after[n] != before[n] for n in before), (before, after, out)
    stack.wait_ready()

    r = httpx.get(f"{stack.url}/api/v1/nodes/gpu01", headers=auth, timeout=10)  # the token too survived
    assert r.status_code == 200, r.text
    assert (r.json()["mac"], r.json()["tags"], r.json()["state"]) == ("02:00:00:00:0c:01", ["compose"], "enrolled")
    assert stack.exec("sha256sum", "/var/lib/dgxie/secret.key") == key_before
    # The database really is the container's PostgreSQL with its named volume, not a fallback SQLite.
    assert stack.exec("sh", "-c", "test ! -e /var/lib/dgxie/dgxie.db && echo no-sqlite").strip() == "no-sqlite"
    volumes = run(["podman", "volume", "ls", "--format", "{{.Name}}"], stack.env, timeout=60).split()
    assert f"{stack.project}_pgdata" in volumes


def test_chart_api_container_runs_on_the_stack_database(stack: Stack, tmp_path: Path) -> None:
    """The rendered Deployment's container, run as podman would run it in a pod: `podman kube play`
    itself is not used (podman 4.3 cannot read a kube Secret back: "secret ... is not valid JSON").
    Host network with its own port; `serve --role api`, as the chart passes it."""
    token = stack.exec("dgxie", "token", "create", "--role", "admin", "--name", "chart-test").strip()
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(f"{stack.url}/api/v1/nodes", headers=auth, timeout=10,
                   json={"hostname": "gpu02", "mac": "02:00:00:00:0c:02"})
    assert r.status_code == 201, r.text
    port = free_port()
    db_url = (f"postgresql+psycopg://dgxie:{stack.env['DGXIE_DB_PASSWORD']}@127.0.0.1:"
              f"{stack.env['DGXIE_DB_PORT']}/dgxie")
    objs = render({"secretKey": KEY, "database": {"url": db_url}, "image": {"repository": "localhost/dgxie", "tag": "test"},
                   "api": {"port": port, "config": {"api": {"listen": f"127.0.0.1:{port}"}}}})
    secret = {k: base64.b64decode(v).decode() for k, v in one(objs, "Secret", "-secrets")["data"].items()}
    config = tmp_path / "dgxie.yaml"
    config.write_text(one(objs, "ConfigMap", "-api")["data"]["dgxie.yaml"])
    config.chmod(0o644)  # a ConfigMap volume's mode; read by the pod's non-root user
    data = tmp_path / "data"  # as an emptyDir is made: mode 0777 (and fsGroup's group)
    data.mkdir()
    data.chmod(0o777)
    pod = one(objs, "Deployment", "-api")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == DGXIE_IMAGE and c["livenessProbe"]["httpGet"]["port"] == "http"
    assert c["ports"][0]["containerPort"] == port
    env = [f"{e['name']}={e['value'] if 'value' in e else secret[e['valueFrom']['secretKeyRef']['key']]}" for e in c["env"]]
    sc = pod["securityContext"]
    name = f"{stack.project}_chartapi"
    cmd = ["podman", "run", "-d", "--name", name, "--network", "host", "--user", f"{sc['runAsUser']}:{sc['runAsGroup']}",
           "--group-add", str(sc["fsGroup"]), "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
           "-v", f"{config}:/etc/dgxie/dgxie.yaml:ro", "-v", f"{data}:/var/lib/dgxie",
           *[a for e in env for a in ("-e", e)], c["image"], *c["args"]]
    run(cmd, stack.env, timeout=120)
    try:
        chart_url = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 120
        ready = None
        while time.monotonic() < end and ready is None:
            try:
                r = httpx.get(chart_url + c["readinessProbe"]["httpGet"]["path"], timeout=3)
                ready = r if r.status_code == 200 else None
            except httpx.TransportError:
                state = run(["podman", "inspect", "--format", "{{.State.Status}}", name], stack.env, timeout=60)
                if state.strip() == "exited":
                    break
            time.sleep(1)
        logs = subprocess.run(["podman", "logs", name], env=stack.env, capture_output=True, text=True, timeout=60)
        assert ready is not None and ready.json()["status"] == "ready", logs.stdout[-2000:] + logs.stderr[-2000:]
        assert httpx.get(chart_url + c["livenessProbe"]["httpGet"]["path"], timeout=3).status_code == 200
        r = httpx.get(f"{chart_url}/api/v1/nodes/gpu02", headers=auth, timeout=10)
        assert r.status_code == 200 and r.json()["mac"] == "02:00:00:00:0c:02", r.text
        user = run(["podman", "exec", name, "id", "-u"], stack.env, timeout=60).strip()
        assert user == str(sc["runAsUser"])
    finally:
        subprocess.run(["podman", "rm", "-f", "-v", "-t", "5", name], env=stack.env, capture_output=True, timeout=120)
