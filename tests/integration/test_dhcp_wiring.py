"""`dgxie serve` wiring: dhcp.enabled adds the server to the background services (real socket on lo),
its counters show on /metrics, and a config without interfaces is refused with one clear error."""

from __future__ import annotations

import socket
import time

import pytest
from fastapi.testclient import TestClient

from dgxie.app import create_app
from dgxie.compose import servers
from dgxie.errors import ConfigError
from dgxie.netboot.dhcp import codec as c
from tests.integration.test_dhcp_server import free_port

SUBNETS = [{"cidr": "127.0.0.0/8", "pool": "127.0.1.1-127.0.1.50"}]


def test_enabled_without_interfaces_is_refused(make_ctx) -> None:
    ctx = make_ctx(dhcp={"enabled": True, "subnets": SUBNETS})
    with pytest.raises(ConfigError, match=r"dhcp\.interfaces"):
        servers.add_boot_servers(ctx)


def test_disabled_registers_nothing(make_ctx) -> None:
    ctx = make_ctx()
    servers.add_boot_servers(ctx)
    assert ctx.service("dhcp") is None


def test_lifespan_serves_dhcp_and_metrics(make_ctx) -> None:
    port = free_port()
    ctx = make_ctx(dhcp={"enabled": True, "interfaces": ["lo"], "listen_port": port, "subnets": SUBNETS})
    servers.add_boot_servers(ctx)
    runner = ctx.service("dhcp")
    assert isinstance(runner, servers.DhcpRunner)
    server = runner.server
    assert server.binds[0].listener.address == bytes([127, 0, 0, 1])
    assert server.sockets, "add_boot_servers() binds the socket before serving"
    with TestClient(create_app(ctx)) as client, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
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
    server = servers.dhcp_runner(ctx).server
    assert [b.port for b in server.binds] == [port, servers.PXE_PORT]
    assert server.responder.options.mode == "proxy"


def test_interface_without_address_is_a_config_error(make_ctx) -> None:
    ctx = make_ctx(dhcp={"enabled": True, "interfaces": ["ddnope0"], "subnets": SUBNETS})
    with pytest.raises(ConfigError, match=r"dhcp\.interfaces: interface ddnope0: no IPv4 address"):
        servers.add_boot_servers(ctx)


def test_busy_port_is_one_clear_error(make_ctx) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("0.0.0.0", 0))
        port = busy.getsockname()[1]
        ctx = make_ctx(dhcp={"enabled": True, "interfaces": ["lo"], "listen_port": port, "subnets": SUBNETS})
        with pytest.raises(ConfigError, match=rf"dhcp: cannot listen on lo:{port}: Address already in use"):
            servers.add_boot_servers(ctx)
        assert ctx.service("dhcp") is None
