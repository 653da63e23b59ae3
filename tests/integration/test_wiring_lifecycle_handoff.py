"""Lifecycle <-> handoff wiring: the install config carries the first-boot bootstrap fetch for
cloud-init roles, an installer's "finished" hands the node to its role, reprovision drains first."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from dgxie import db
from dgxie.errors import Conflict
from dgxie.install import seed
from dgxie.nodes import service
from dgxie.nodes.credentials import boot_token
from dgxie.nodes.reprovision import reprovision
from dgxie.sections import RoleConfig
from tests.support.lifecycle import enroll, node, site, state_of


@pytest.mark.parametrize("os_", ["ubuntu", "debian", "rhel"])
def test_cloud_init_role_gets_first_boot_fetch(os_: str) -> None:
    s = dataclasses.replace(site(), roles={"k8s-worker": RoleConfig(groups=["kube_node"], bootstrap="cloud-init",
                                                                     script="k8s-worker.sh.j2")})
    n = node(os_)
    artifact = {"ubuntu": "user-data", "debian": "preseed", "rhel": "kickstart"}[os_]
    text = seed.render(s, n, artifact).text
    url = f"{s.public_url}/boot/n/{boot_token(s.box, n)}/bootstrap"
    if os_ == "ubuntu":
        runcmd = yaml.safe_load(text)["autoinstall"]["user-data"]["runcmd"]
        assert url in runcmd[0][2]
    else:
        assert "dgxie-bootstrap.service" in text
    # a role that does not bootstrap through cloud-init carries nothing
    plain = dataclasses.replace(s, roles={"k8s-worker": RoleConfig(groups=["kube_node"])})
    assert "dgxie-bootstrap" not in seed.render(plain, node(os_), artifact).text


def test_finished_hands_off_to_role(make_ctx) -> None:
    ctx = make_ctx(roles={"k8s-worker": RoleConfig(groups=["kube_node"], bootstrap="none")},
                   boot={"trusted_networks": ["10.99.0.0/24"]})
    from fastapi.testclient import TestClient

    from dgxie.app import create_app

    token = enroll(ctx, "w1", "02:00:00:00:00:31")
    with TestClient(create_app(ctx), client=("10.99.0.1", 50000)) as c:  # a trusted relay
        user_data = yaml.safe_load(c.get(f"/boot/n/{token}/user-data").text)
        events = user_data["autoinstall"]["reporting"]["dgxie"]["endpoint"]  # with the install credential
        assert c.post(events, data={"event": "started"}).status_code == 200
        r = c.post(events, data={"event": "finished"})
        assert r.status_code == 200 and r.json()["state"] == "ready" and r.json()["bootstrap"] == "none"
    assert state_of(ctx, "w1") == "ready"


def test_reprovision_drains_a_ready_node_first(make_ctx) -> None:
    ctx = make_ctx(roles={"k8s-worker": RoleConfig(groups=["kube_node"], drain="/bin/false {hostname}")})
    enroll(ctx, "w2", "02:00:00:00:00:32", state="ready")
    hooks = ctx.reprovision
    with pytest.raises(Conflict), db.session_scope(ctx.sessions) as s:
        reprovision(s, ctx.site, service.get_node(s, "w2"), actor="test", hooks=hooks)
    assert state_of(ctx, "w2") == "ready"  # the failed drain refused it
    ok = make_ctx(roles={"k8s-worker": RoleConfig(groups=["kube_node"], drain="/bin/true {hostname}")})
    with db.session_scope(ok.sessions) as s:
        reprovision(s, ok.site, service.get_node(s, "w2"), actor="test", hooks=ok.reprovision)
    assert state_of(ok, "w2") == "enrolled"
