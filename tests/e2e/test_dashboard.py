"""The dashboard in a real browser (Playwright driving Debian's chromium) against a real
`dgxie serve` on loopback, with sushy-emulator as the Redfish BMC of one node.

Every page is loaded with a guard that refuses and records any request leaving dgxie's origin
and records every console error; each test ends by asserting that record is empty. Screenshots of
each page go to docs/img/ (docs/dashboard.md shows them); axe-core checks each page for serious
or critical accessibility violations.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.bmc import DGX_MOCKUP, sushy_emulator, sushy_static
from tests.support.browser import Guard, axe_source, axe_violations, browser
from tests.support.mirror_apt import World, world
from tests.support.paths import REPO
from tests.support.serve import Served, served
from tests.support.update_peer import update_peer

pytestmark = pytest.mark.browser
SYS_OFF = "/redfish/v1/Systems/11111111-1111-4111-8111-111111111111"
IMG = REPO / "docs" / "img"
VIEWPORT = {"width": 1366, "height": 800}  # a laptop screen


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with sushy_emulator(tmp_path_factory.mktemp("sushy-emu")) as url:
        yield url


@pytest.fixture(scope="module")
def dgx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """sushy-static serving the DGX H100 capture with its BMC firmware one release behind the baseline."""
    tmp = tmp_path_factory.mktemp("dgx")
    root = tmp / "redfish" / "v1"
    shutil.copytree(DGX_MOCKUP, root)
    f = root / "UpdateService" / "FirmwareInventory" / "HostBMC_0" / "index.json"
    f.write_text(json.dumps(json.loads(f.read_text()) | {"Version": "23.05.11"}))
    with sushy_static(root, tmp) as url:
        yield url


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A signed APT repository served on loopback (tests/support/mirror_apt.py): the mirror's upstream."""
    with world(tmp_path_factory.mktemp("apt")) as w:
        yield w


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, emulator: str, dgx: str,
         upstream: World) -> Iterator[tuple[Served, dict[str, str]]]:
    """A served dgxie with 24 nodes (roles slurmd/login, tags rack1/rack2), one more (dgx01) whose
    firmware was scanned from the DGX capture, and a viewer and an operator token."""
    tmp = tmp_path_factory.mktemp("dash")
    with served(tmp, f"sqlite:///{tmp}/dgxie.db", bmc={"allow_insecure_http": True},
                firmware={"baselines": str(REPO / "firmware")}, mirrors=[upstream.mirror()],
                roles={"slurmd": {"groups": ["slurm-node"], "drain": "true", "resume": "true"},
                       "login": {"groups": ["login"]}}) as srv:
        toks = {role: httpx.post(f"{srv.url}/api/v1/tokens", headers=srv.auth, timeout=10,
                                 json={"name": role, "role": role}).json()["token"] for role in ("viewer", "operator")}
        for i in range(1, 25):
            body: dict[str, Any] = {"hostname": f"gpu{i:02d}", "mac": f"02:00:00:00:00:{i:02x}", "ip": f"10.0.0.{i}",
                                    "role": "slurmd" if i <= 20 else "login", "tags": [f"rack{1 + i % 2}"]}
            if i == 1:
                body["bmc"] = {"url": emulator + SYS_OFF, "username": "admin", "password": "password"}
            httpx.post(f"{srv.url}/api/v1/nodes", headers=srv.auth, json=body, timeout=10).raise_for_status()
        httpx.post(f"{srv.url}/api/v1/nodes", headers=srv.auth, timeout=10, json={
            "hostname": "dgx01", "mac": "02:00:00:00:01:01", "state": "discovered",
            "bmc": {"url": dgx, "username": "admin", "password": "password"}}).raise_for_status()
        scan = httpx.post(f"{srv.url}/api/v1/firmware/scan", headers=srv.auth, json={"nodes": ["dgx01"]}, timeout=120)
        assert scan.status_code == 200 and all(x["ok"] for x in scan.json()), scan.text
        yield srv, toks


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with browser() as b:
        yield b


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_source()


def new_page(chromium: Browser, srv: Served) -> tuple[Page, Guard]:
    guard = Guard(srv.url)
    page = guard.attach(chromium.new_context(viewport=VIEWPORT, base_url=srv.url).new_page())
    page.on("dialog", lambda d: d.accept())
    return page, guard


def sign_in(page: Page, token: str) -> None:
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Fleet", level=1)).to_be_visible()


def shoot(page: Page, name: str, axe: str) -> None:
    page.screenshot(path=str(IMG / f"dashboard-{name}.png"), full_page=True)
    assert axe_violations(page, axe) == [], f"accessibility of the {name} page"


def test_sign_in_filter_open_node_and_watch_a_change_live(chromium: Browser, site: Any, axe: str) -> None:
    srv, toks = site
    page, guard = new_page(chromium, srv)
    page.goto("/ui/login")
    shoot(page, "sign-in", axe)
    sign_in(page, toks["operator"])
    cookie = next(c for c in page.context.cookies() if c["name"] == "dgxie_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and toks["operator"] not in cookie["value"]
    rows = page.locator("table.nodes tbody tr")
    expect(rows).to_have_count(25)
    expect(page.locator('[data-count-state="enrolled"]')).to_have_text("24")
    expect(page.locator('[data-count-state="discovered"]')).to_have_text("1")
    shoot(page, "fleet", axe)

    page.get_by_label("Role").select_option("login")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(4)
    expect(page.locator("p.summary")).to_contain_text("4 nodes match")
    page.get_by_label("Search").fill("02:00:00:00:00:0b")  # gpu11 by its MAC
    page.get_by_label("Role").select_option("")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("gpu11")
    page.get_by_role("link", name="Clear").click()
    page.get_by_role("link", name="Hostname").click()  # sorted by hostname, now descending
    expect(rows.first).to_contain_text("gpu24")

    httpx.post(f"{srv.url}/api/v1/nodes/gpu24/erase", headers=srv.auth, timeout=10).raise_for_status()
    expect(page.locator('tr[data-node="gpu24"] [data-field="state"]')).to_have_text("erasing", timeout=15_000)
    expect(page.locator('[data-count-state="enrolled"]')).to_have_text("23")

    page.get_by_role("link", name="gpu01", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("^gpu01"))).to_be_visible()
    expect(page.locator("main")).to_contain_text("set (never shown)")
    expect(page.locator("main")).not_to_contain_text("password\"")
    expect(page.locator("#live")).to_have_text(re.compile("^live"), timeout=10_000)
    httpx.post(f"{srv.url}/api/v1/nodes/gpu01/erase", headers=srv.auth, timeout=10).raise_for_status()
    expect(page.locator("[data-node-state]")).to_have_text("erasing", timeout=15_000)
    expect(page.locator("#timeline")).to_contain_text("enrolled → erasing")
    shoot(page, "node", axe)
    assert guard.problems == []


def power_state(emulator: str, want: str, bound: float = 30) -> str:
    """The emulated system's PowerState once it is `want` (or whatever it is after `bound` seconds)."""
    deadline = time.monotonic() + bound
    while (state := httpx.get(emulator + SYS_OFF, auth=("admin", "password"), timeout=5).json()["PowerState"]) != want:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return str(state)


def test_power_and_pxe_through_the_redfish_emulator(chromium: Browser, site: Any, emulator: str, axe: str) -> None:
    srv, toks = site
    page, guard = new_page(chromium, srv)
    sign_in(page, toks["operator"])
    page.goto("/ui/nodes/gpu01")
    page.get_by_role("button", name="Power on").click()
    expect(page.locator(".flash")).to_contain_text("power on: sent")
    assert power_state(emulator, "On") == "On"
    page.get_by_role("button", name="PXE once").click()
    expect(page.locator(".flash")).to_have_text("the next boot is from PXE")
    boot = httpx.get(emulator + SYS_OFF, auth=("admin", "password"), timeout=5).json()["Boot"]
    assert boot["BootSourceOverrideTarget"] == "Pxe"
    page.get_by_role("button", name="Drain").click()
    expect(page.locator(".flash")).to_have_text("drain hook ok")
    page.get_by_role("button", name="Power off").click()
    expect(page.locator(".flash")).to_contain_text("power off: sent")
    assert power_state(emulator, "Off") == "Off"
    page.goto("/ui/nodes/gpu22")  # no BMC: the refusal is shown on the page, not a raw error
    page.get_by_role("button", name="Power cycle").click()
    expect(page.locator(".flash.error")).to_contain_text("power-cycle refused")
    page.goto("/ui/events?node=gpu01")
    expect(page.locator("tbody")).to_contain_text("node.power")
    expect(page.locator("tbody")).to_contain_text("token:operator")
    shoot(page, "events", axe)
    assert guard.problems == []


def test_a_viewer_cannot_act_and_signs_out(chromium: Browser, site: Any) -> None:
    srv, toks = site
    page, guard = new_page(chromium, srv)
    sign_in(page, toks["viewer"])
    page.goto("/ui/nodes/gpu02")
    expect(page.get_by_text("Your token is a viewer")).to_be_visible()
    expect(page.locator("form[action$='/action']")).to_have_count(0)
    status = page.evaluate("""async () => {
        const csrf = document.querySelector('form.signout input[name=csrf]').value;
        const r = await fetch('/ui/nodes/gpu02/action', {method: 'POST',
            headers: {'Content-Type': 'application/x-www-form-urlencoded'},
            body: new URLSearchParams({csrf, action: 'power-off'})});
        return [r.status, (await r.json()).detail];
    }""")
    assert status[0] == 403 and "viewer" in status[1]
    bearer = httpx.post(f"{srv.url}/api/v1/nodes/gpu02/drain", headers={"Authorization": f"Bearer {toks['viewer']}"})
    assert bearer.status_code == 403
    sid = next(c["value"] for c in page.context.cookies() if c["name"] == "dgxie_session")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    assert not [c for c in page.context.cookies() if c["name"] == "dgxie_session"]
    stale = httpx.get(f"{srv.url}/ui/", cookies={"dgxie_session": sid}, follow_redirects=False)
    assert stale.status_code == 303 and stale.headers["location"] == "/ui/login"  # the session is gone
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    refused = [p for p in guard.problems if "403 (Forbidden)" in p and "/ui/nodes/gpu02/action" in p]
    assert len(refused) == 1 and guard.problems == refused  # the console logs the refused POST, nothing else


def test_firmware_matrix_and_node_verdicts(chromium: Browser, site: Any, axe: str) -> None:
    srv, toks = site
    page, guard = new_page(chromium, srv)
    sign_in(page, toks["viewer"])
    page.get_by_role("link", name="Firmware").click()
    row = page.locator("table.matrix tbody tr", has_text="dgx01")
    expect(row.locator(".fw-outdated")).to_contain_text("23.05.11")
    expect(row.locator(".fw-compliant").first).to_be_visible()
    expect(page.locator("p.unknown")).to_contain_text("gpu01")  # never scanned: listed apart
    shoot(page, "firmware", axe)
    page.get_by_label("Component (glob)").fill("HostBMC*")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.matrix thead th")).to_have_count(2)  # Node + HostBMC_0
    with page.expect_download() as dl:
        page.get_by_role("link", name="CSV").click()
    text = Path(dl.value.path()).read_text()
    assert text.splitlines()[0].startswith("node,component,installed,required,status")
    assert "dgx01,HostBMC_0,23.05.11,23.11.21,outdated" in text and "HGX_FW_GPU" not in text
    page.goto("/ui/nodes/dgx01")
    expect(page.locator(".fw-outdated")).to_have_text("outdated")
    page.get_by_role("link", name="Fleet").click()
    page.get_by_label("Firmware").select_option("outdated")
    page.get_by_label("Search").press("Enter")  # the keyboard submits the filters too
    expect(page.locator("table.nodes tbody tr")).to_have_count(1)
    expect(page.locator("table.nodes tbody tr")).to_contain_text("dgx01")
    assert guard.problems == []


def test_mirror_sync_with_live_progress_and_rollback(chromium: Browser, site: Any, upstream: World,
                                                      axe: str) -> None:
    srv, toks = site
    page, guard = new_page(chromium, srv)
    sign_in(page, toks["operator"])
    page.get_by_role("link", name="Mirrors").click()
    snapshots = page.locator("#m-up tbody tr")
    expect(snapshots).to_have_text(["No snapshot yet."])
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator(".flash")).to_contain_text("up: sync job")
    expect(snapshots).to_have_count(1, timeout=60_000)  # the page polls the job, reloads when it ends
    expect(snapshots.first).to_contain_text("in service")
    first = snapshots.first.locator("td").first.inner_text()
    upstream.add("extra")
    upstream.repo.publish()
    page.get_by_role("button", name="Sync now").click()
    expect(snapshots).to_have_count(2, timeout=60_000)
    expect(page.locator("#m-up .job")).to_contain_text("succeeded")
    shoot(page, "mirrors", axe)
    page.get_by_role("button", name=f"Roll back to {first}").click()
    expect(page.locator(".flash")).to_have_text(f"up: serving snapshot {first}")
    # the row whose name cell is exactly `first`: two syncs within one second are named
    # 20261130T233631Z and 20261130T233631Z-2, and a substring filter matched both
    served = snapshots.filter(has=page.get_by_role("cell", name=first, exact=True))
    expect(served).to_have_count(1)
    expect(served).to_contain_text("in service")
    assert httpx.get(f"{srv.url}/mirror/apt/up/pool/main/e/extra_1.0_amd64.deb").status_code == 404
    assert guard.problems == []


def test_an_admin_creates_and_revokes_a_token(chromium: Browser, site: Any, axe: str) -> None:
    srv, toks = site
    page, guard = new_page(chromium, srv)
    sign_in(page, toks["operator"])
    expect(page.get_by_role("link", name="Tokens")).to_have_count(0)  # not an admin
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, srv.token)  # the admin token `t`
    page.get_by_role("link", name="Tokens").click()
    page.get_by_label("Name").fill("ci")
    page.get_by_label("Role").select_option("operator")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Token", exact=True).input_value()
    assert secret.startswith("dgxie_")
    ci = {"Authorization": f"Bearer {secret}"}
    assert httpx.get(f"{srv.url}/api/v1/nodes/gpu02", headers=ci).status_code == 200
    page.get_by_role("button", name="Revoke ci").click()
    expect(page.locator(".flash")).to_have_text("token ci revoked")
    expect(page.locator("tr", has_text="ci").first).to_contain_text("revoked")
    assert httpx.get(f"{srv.url}/api/v1/nodes/gpu02", headers=ci).status_code == 401
    shoot(page, "tokens", axe)
    assert guard.problems == []


def test_api_docs_load_from_dgxie_alone(chromium: Browser, site: Any) -> None:
    srv, _ = site
    page, guard = new_page(chromium, srv)
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("dgxie")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    page.screenshot(path=str(IMG / "dashboard-api-docs.png"))
    assert guard.problems == []


def stage(srv: Served, tmp: Path, version: str) -> str:
    """A package staged on the served dgxie (`dgxie firmware stage`, its config): `SHA256/NAME`."""
    image = tmp / f"bmc-{version}.bin"
    image.write_text(f"VERSION={version}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")}
    out = subprocess.run([sys.executable, "-m", "dgxie", "firmware", "stage", str(image), "--json"], check=True,
                         env=env | {"DGXIE_CONFIG": str(srv.log.parent / "dgxie.yaml")}, capture_output=True, text=True)
    pkg = json.loads(out.stdout)
    return f"{pkg['sha256']}/{pkg['name']}"


def test_an_operator_starts_a_firmware_rollout_and_watches_it_live(chromium: Browser, site: Any, axe: str,
                                                                    tmp_path: Path) -> None:
    """Two nodes whose BMCs are update peers (tests/support/update_peer.py, which fetch the package
    from dgxie), one a wave: the job page's rows change in place (no reload until the job ends)."""
    srv, toks = site
    pkg = stage(srv, tmp_path, "2.0.0")
    with ExitStack() as st:
        peers = [st.enter_context(update_peer({"BMC": "1.0.0"})) for _ in range(2)]
        for i, (url, _) in enumerate(peers, start=1):
            httpx.post(f"{srv.url}/api/v1/nodes", headers=srv.auth, timeout=10, json={
                "hostname": f"fw{i:02d}", "mac": f"02:00:00:00:02:{i:02x}", "bmc": {"url": url}}).raise_for_status()
        page, guard = new_page(chromium, srv)
        sign_in(page, toks["operator"])
        page.get_by_role("link", name="Firmware").click()
        expect(page.locator("table.rollouts tbody")).to_contain_text("No rollout yet.")
        page.get_by_label("Package").select_option(pkg)
        page.get_by_label("Nodes", exact=True).fill("fw01, fw02")
        page.get_by_label("Targets (optional, one per line)").fill("/redfish/v1/UpdateService/FirmwareInventory/BMC")
        page.get_by_role("button", name="Start rollout").click()
        expect(page).to_have_url(re.compile(r"/ui/firmware/updates/\d+$"))
        expect(page.locator(".flash")).to_contain_text("queued: 2 node(s) to update")
        page.evaluate("window.dgxieNotReloaded = true")
        first, second = (page.locator(f'tr[data-update-node="fw0{i}"]') for i in (1, 2))
        expect(first.locator('[data-field="status"]')).to_have_text("done", timeout=90_000)
        expect(first.locator('[data-field="task_state"]')).to_have_text("Completed")
        expect(first.locator("progress")).to_have_attribute("value", "100")
        assert page.evaluate("window.dgxieNotReloaded === true")  # updated in place, not by a reload
        expect(page.locator('[data-field="job-status"]')).to_have_text("running")  # fw02 is the second wave
        expect(second.locator('[data-field="status"]')).to_have_text("done", timeout=90_000)
        expect(page.locator('[data-field="job-status"]')).to_have_text("done", timeout=15_000)
        expect(page.locator(".rollout")).to_contain_text("done 2")
        expect(page.get_by_role("button", name="Cancel rollout")).to_have_count(0)  # reloaded: the job ended
        assert [p.versions["BMC"] for _, p in peers] == ["2.0.0", "2.0.0"]
        shoot(page, "firmware-rollout", axe)
        page.get_by_role("link", name="All rollouts").click()
        expect(page.locator("table.rollouts tbody tr").first).to_contain_text("done 2")
        assert guard.problems == []


def test_screenshots_are_in_the_docs() -> None:
    text = (REPO / "docs" / "dashboard.md").read_text()
    for name in ("sign-in", "fleet", "node", "events", "firmware", "firmware-rollout", "mirrors", "tokens",
                 "api-docs"):
        assert f"img/dashboard-{name}.png" in text and (IMG / f"dashboard-{name}.png").is_file()




