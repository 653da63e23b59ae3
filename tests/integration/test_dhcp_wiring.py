"""`dgxie serve` wiring: dhcp.enabled registers the server in the app lifespan (real socket on lo),
its counters show on /metrics, and a config without interfaces is refused with one clear error."""

from __future__ import annotations

import socket
import time

import pytest
from fastapi.testclient import TestClient

from dgxie.app import create_app
from dgxie.cli import serve_dhcp
from dgxie.errors import ConfigError
from dgxie.netboot.dhcp import codec as c
from tests.integration.test_dhcp_server import free_port

SUBNETS = [{"cidr": "127.0.0.0/8", "pool": "127.0.1.1-127.0.1.50"}]


def test_enabled_without_interfaces_is_refused(make_ctx) -> None:
    ctx = make_ctx(dhcp={"enabled": True, "subnets": SUBNETS})
    with pytest.raises(ConfigError, match=r"dhcp\.interfaces"):
        serve_dhcp.register(ctx)


def test_disabled_registers_nothing(make_ctx) -> None:
    ctx = make_ctx()
    serve_dhcp.register(ctx)
    assert "lifespan_hooks" not in ctx.extras


def test_lifespan_serves_dhcp_and_metrics(make_ctx) -> None:
    port = free_port()
    ctx = make_ctx(dhcp={"enabled": True, "interfaces": ["lo"], "listen_port": port, "subnets": SUBNETS})
    serve_dhcp.register(ctx)
    server, _service = ctx.extras["dhcp"]
    assert server.binds[0].listener.address == bytes([127, 0, 0, 1])
    with TestClient(create_app(ctx)) as client, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        assert server.sockets, "the lifespan hook opened the DHCP socket"
        s.sendto(c.encode_request(bytes.fromhex("5254dd0000ee"), c.DISCOVER), ("127.0.0.1", port))
        s.sendto(b"garbage", ("127.0.0.1", port))
        text = ""
        for _ in range(50):
            text = client.get("/metrics").text
            if 'outcome="dropped-malformed"' in text and 'outcome="ignored"' in text:
                break
            time.sleep(0.1)
        assert 'dgxie_dhcp_packets_total{outcome="ignored",type="discover"} 1.0' in text
        assert 'dgxie_dhcp_packets_total{outcome="dropped-malformed",type="unknown"} 1.0' in text
        assert 'dgxie_dhcp_leases_in_use{subnet="127.0.0.0/8"} 0.0' in text
    assert not server.sockets, "the shutdown hook closed it"


def test_proxy_mode_listens_on_4011_too(make_ctx) -> None:
    port = free_port()
    ctx = make_ctx(dhcp={"enabled": True, "interfaces": ["lo"], "listen_port": port, "mode": "proxy",
                         "subnets": SUBNETS})
    server, _service = serve_dhcp.build(ctx)
    assert [b.port for b in server.binds] == [port, serve_dhcp.PXE_PORT]
    assert server.responder.settings.mode == "proxy"
