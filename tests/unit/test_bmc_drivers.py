"""The BMC driver interface: one factory picks the driver by URL scheme, a driver refuses what its
protocol cannot do with `BmcUnsupported`, and the fleet scan goes through the same interface
(each endpoint's failure is its own result). No peer needed: unsupported calls do no I/O, and the
refused endpoint is a closed loopback port."""

from __future__ import annotations

from typing import Any

import pytest

from dgxie.bmc.base import BmcAuthError, BmcError, BmcTimeout, BmcUnreachable, BmcUnsupported, Endpoint, Options
from dgxie.bmc.drivers import connect
from dgxie.bmc.ipmi import IpmiBmc
from dgxie.bmc.redfish import RedfishBmc
from dgxie.bmc.scan import scan
from dgxie.bmc.transport import retrying
from tests.support.net import free_port

FAST = Options(timeout=1, retries=0, backoff=0, allow_http=True)


def test_connect_picks_the_driver_by_scheme() -> None:
    assert isinstance(connect(Endpoint("https://10.0.0.5")), RedfishBmc)
    plain = Endpoint("http://127.0.0.1:8000/redfish/v1/Systems/1", "admin", "s3cret")
    assert isinstance(connect(plain, FAST), RedfishBmc)
    for url in (plain.url, "redfish+http://10.0.0.9"):  # credentials in clear: only when the site allows it
        with pytest.raises(BmcUnsupported, match="allow_insecure_http") as refused:
            connect(Endpoint(url, "admin", "s3cret"))
        assert "s3cret" not in refused.value.message
    assert Options().verify is True  # TLS certificates are checked unless a site turns it off
    ipmi = connect(Endpoint("ipmi://10.0.0.6:6230"))
    assert isinstance(ipmi, IpmiBmc) and (ipmi.host, ipmi.port, ipmi.protocol) == ("10.0.0.6", 6230, "ipmi")
    metal3 = connect(Endpoint("redfish+https://10.0.0.7/redfish/v1/Systems/1", "admin", "pw"))
    assert isinstance(metal3, RedfishBmc) and metal3.base == "https://10.0.0.7"
    assert metal3.endpoint.system == "/redfish/v1/Systems/1" and metal3.endpoint.password == "pw"
    with pytest.raises(BmcUnsupported, match="no BMC driver"):
        connect(Endpoint("ftp://10.0.0.8"))


def test_ipmi_refuses_inventory_and_firmware_as_unsupported() -> None:
    with connect(Endpoint("ipmi://10.0.0.6", "admin", "s3cret")) as d:
        for call in (d.inventory, lambda: d.update_firmware("http://x/fw.bin"),
                     lambda: d.push_firmware(b"x", "fw.bin")):
            with pytest.raises(BmcUnsupported) as exc:
                call()
            assert exc.value.kind == "unsupported" and "need a Redfish BMC" in exc.value.message
            assert "s3cret" not in exc.value.message


def test_scan_goes_through_the_drivers_and_keeps_failures_per_endpoint() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    eps = [Endpoint("ipmi://10.0.0.6", name="ipmi"), Endpoint("ftp://10.0.0.8"), Endpoint(closed, "admin", "pw")]
    seen: list[int] = []
    res = scan(eps, FAST, concurrency=2, on_done=lambda i, r: seen.append(i))
    assert sorted(seen) == [0, 1, 2]
    assert [type(r) for r in res] == [BmcUnsupported, BmcUnsupported, BmcUnreachable]
    assert scan([], FAST) == []


def test_retrying_retries_only_what_may_pass() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise BmcTimeout("busy")
        return "ok"

    assert retrying(flaky, Options(retries=2, backoff=0), "u") == "ok" and len(calls) == 3

    def refused() -> Any:
        calls.append(1)
        raise BmcAuthError("u: credentials rejected")

    calls.clear()
    with pytest.raises(BmcAuthError):
        retrying(refused, Options(retries=5, backoff=0), "u")
    assert len(calls) == 1

    def broken() -> Any:
        raise ConnectionRefusedError("nope")

    with pytest.raises(BmcError) as exc:
        retrying(broken, Options(retries=1, backoff=0), "http://b")
    assert exc.value.kind == "unreachable" and exc.value.message.startswith("http://b")


def test_errors_are_one_line_in_words() -> None:
    """A BMC error names the URL and what failed, on one line, without Python exception names."""
    from dgxie.bmc.transport import classify

    odd = classify(KeyError("@odata.id"), "http://b/redfish/v1/Systems/1")
    assert odd.kind == "protocol" and "KeyError" not in odd.message and "odata" not in odd.message
    assert odd.message == "http://b/redfish/v1/Systems/1: an answer the Redfish client could not handle"
    refused = classify(ConnectionRefusedError(111, "Connection refused"), "http://b")
    assert refused.message == "http://b: unreachable (connection refused)"
    assert BmcError("http://b: HTTP 500: Reset failed\n  (try again)\n").message == \
        "http://b: HTTP 500: Reset failed (try again)"


def test_refused_port_is_unreachable_in_words() -> None:
    rb = RedfishBmc(Endpoint(f"http://127.0.0.1:{free_port()}", "admin", "pw"), FAST)
    with pytest.raises(BmcUnreachable) as exc:
        rb.power_state()
    assert exc.value.message.endswith(": unreachable (connection refused)"), exc.value.message


def test_a_dead_bmc_is_tried_retries_plus_one_times() -> None:
    """Each attempt is one connection (the login is not retried inside the request's retries)."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    accepted: list[int] = []

    def hang_up() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()  # no answer at all: a BMC whose web server died

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        rb = RedfishBmc(Endpoint(f"http://127.0.0.1:{srv.getsockname()[1]}", "admin", "pw"),
                        Options(timeout=2, retries=2, backoff=0, allow_http=True))
        with pytest.raises(BmcError) as exc:
            rb.power_state()
    finally:
        srv.close()
    assert len(accepted) == 3, (len(accepted), exc.value.message)
