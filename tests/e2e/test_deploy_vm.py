"""A real install, end to end (issue 11): power-on to `ready` with nothing from outside.

Before anything boots, on the host: dgxie syncs a filtered APT mirror of the Debian archive this
machine's APT uses (tests/support/debian_mirror.py, cached), builds the OS image and the agent from
it (`dgxie image build`, `dgxie agent build`; cached by input key in a builder state under the test
cache), and mirrors a small OCI image from a local docker-registry.

Then, in network namespace `dpsrv` with no route anywhere (bridge `dpbr0` 10.204.0.1/24 and a tap),
`dgxie serve` (SQLite) answers DHCP, TFTP, HTTP. A QEMU VM (TCG) with an empty virtual disk and an
unknown MAC powers on and:

  PXE -> agent (discovery) -> commissioning facts -> `discovered`
  test enrolls it (API) and reprovisions it (API) -> the waiting agent deploys the image
  -> reboot -> local-disk script -> GRUB -> Debian -> cloud-init from dgxie (NoCloud seedfrom)
  -> role bootstrap: apt-get update from dgxie's mirror, containerd pulls through dgxie's /v2/
  -> `ready`

BIOS (SeaBIOS + iPXE ROM) and UEFI (OVMF: PXE -> TFTP ipxe.efi) both. The test asserts on the
node's events and facts, on the VM's serial console, and on a capture of every frame the VM sent
(nothing to any address but dgxie's). `make e2e-deploy` runs it; it is slow under TCG.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest

from tests.support import deploy_vm as dv

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.deploy,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, tap)"),
    pytest.mark.skipif(not shutil.which("qemu-system-x86_64") or not dv.OVMF_CODE.exists()
                       or not shutil.which("mmdebstrap"), reason="qemu/ovmf/mmdebstrap missing"),
    pytest.mark.timeout(3600),
]


@pytest.fixture(scope="module")
def built() -> dv.Builder:
    """Mirror synced, image and agent built (all cached: a rerun downloads and builds nothing)."""
    return dv.prepare_builder()


@pytest.fixture(scope="module")
def server(built: dv.Builder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dv.Server]:
    with dv.serve(built, tmp_path_factory.mktemp("deploy")) as srv:
        yield srv


@pytest.mark.parametrize("fw", ["bios", "uefi"])
def test_power_on_to_ready(server: dv.Server, fw: str) -> None:
    if fw == "uefi" and os.environ.get("DGXIE_DEPLOY_FIRMWARE", "bios,uefi").find("uefi") < 0:
        pytest.skip("DGXIE_DEPLOY_FIRMWARE excludes uefi")
    vm = dv.VM(server, fw)
    with vm.running():
        # 1. unknown MAC -> agent -> facts -> discovered
        node = vm.wait_node(lambda n: n["state"] == "discovered" and n["facts"].get("commissioning"), 600,
                            "commissioned")
        facts = node["facts"]["commissioning"]["detail"]
        assert facts["serial"] == vm.smbios_serial, facts
        disks = {d["name"]: d for d in facts["disks"]}
        assert disks["vda"]["size"] == dv.DISK_BYTES and disks["vda"]["serial"] == vm.disk_serial, disks
        assert vm.mac in [n["mac"] for n in facts["nics"]], facts["nics"]
        assert facts["memory_mib"] > 1500 and facts["cpus"] == 2, facts
        # 2. the operator enrolls it through the API and reprovisions it
        host = f"vm-{fw}"
        out = server.api("POST", f"/api/v1/nodes/{node['hostname']}/enroll", {"profile": "deploy", "hostname": host})
        assert out["state"] == "enrolled" and out["hostname"] == host, out
        assert server.api("POST", f"/api/v1/nodes/{host}/reprovision")["state"] == "enrolled"
        # 3. the agent deploys, the VM reboots into Debian, cloud-init and the bootstrap run
        node = vm.wait_node(lambda n: n["state"] in ("ready", "failed"), 1800, "ready", ref=host)
        assert node["state"] == "ready", dv.tail_events(node)
        console = vm.serial()
    kinds = [e["kind"] for e in node["events"]]
    for k in ("agent.hello", "agent.facts", "enroll", "reprovision", "install.start", "agent.progress",
              "install.finished", "bootstrap.done"):
        assert k in kinds, (k, kinds)
    assert kinds.index("install.start") < kinds.index("install.finished") < kinds.index("bootstrap.done")
    for text in ("dgxie-agent: facts reported", "dgxie-agent: deployed", "dgxie-e2e: apt-get update from dgxie ok",
                 "dgxie-e2e: pulled e2e/hello:1.0 through dgxie"):
        assert text in console, text
    strangers = server.strangers(vm.mac)
    assert not strangers, f"the VM talked to something other than dgxie: {strangers[:10]}"
    dv.record_phases(server, fw, node, vm)


def test_raid1_deploy_then_erase(server: dv.Server) -> None:
    """Two disks: / on an md raid1, GRUB on both, the node reaches ready; then `erase` wipes both
    disks at the next network boot and the node is `discovered` again."""
    vm = dv.VM(server, "bios", index=5, disks=2)
    host = "vm-raid1"
    with vm.running():
        node = vm.wait_node(lambda n: n["state"] == "discovered" and n["facts"].get("commissioning"), 600,
                            "commissioned")
        assert len(node["facts"]["commissioning"]["detail"]["disks"]) == 2
        server.api("POST", f"/api/v1/nodes/{node['hostname']}/enroll", {"profile": "deploy-raid1", "hostname": host})
        node = vm.wait_node(lambda n: n["state"] in ("ready", "failed"), 1800, "ready", ref=host)
        assert node["state"] == "ready", dv.tail_events(node)
        plan = [e for e in node["events"] if e["kind"] == "agent.progress" and "plan:" in e["reason"]][-1]
        assert "layout raid1 on /dev/vda /dev/vdb" in plan["reason"], plan
        assert "raid1" in vm.serial()  # the installed kernel assembled md0 (md/raid1:md0: active ...)
    for i in (0, 1):  # both disks carry a GPT (and GRUB's BIOS boot code in the MBR)
        head = vm.disk_head(i)
        assert head[512:520] == b"EFI PART" and head[0x1FE:0x200] == b"\x55\xaa", i
    assert server.api("POST", f"/api/v1/nodes/{host}/erase")["state"] == "erasing"
    with vm.running(fresh=False):  # no BMC here: the test power-cycles the VM itself
        node = vm.wait_node(lambda n: n["state"] in ("discovered", "failed"), 600, "discovered", ref=host)
        assert node["state"] == "discovered", dv.tail_events(node)
        assert "erase.finished" in [e["kind"] for e in node["events"]]
    for i in (0, 1):
        assert vm.disk_head(i) == bytes(1 << 20), f"disk {i} not wiped"


FAILURES = {
    # profile, what the failed event's reason must say
    "missing-disk": ("deploy-missing-disk", "no disk matches serial NOPE"),
    "corrupt-image": ("deploy-corrupt", "image sha256 mismatch"),
    "dgxie-away": ("deploy", "image stream failed"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_deploy_failures_leave_a_failed_node_and_a_blank_disk(server: dv.Server, case: str) -> None:
    """Bad input and a lost dgxie: the node ends `failed` with the reason, never `installed`, and
    the disk holds no partition table (the agent wiped what it wrote)."""
    profile, reason = FAILURES[case]
    vm = dv.VM(server, "bios", index=2 + list(FAILURES).index(case))
    host = f"vm-{case}"
    with vm.running():
        node = vm.wait_node(lambda n: n["state"] == "discovered" and n["facts"].get("commissioning"), 600,
                            "commissioned")
        server.api("POST", f"/api/v1/nodes/{node['hostname']}/enroll", {"profile": profile, "hostname": host})
        if case == "dgxie-away":  # the link to dgxie goes away for 30 s once the image is streaming
            vm.wait_node(lambda n: any("image: writing" in e["reason"] for e in n["events"]), 300, "writing",
                         ref=host)
            time.sleep(5)
            vm.link(up=False)
            time.sleep(30)
            vm.link(up=True)
        node = vm.wait_node(lambda n: n["state"] in ("failed", "installed", "ready"), 600, "failed", ref=host)
        assert node["state"] == "failed", dv.tail_events(node)
        failed = [e for e in node["events"] if e["kind"] == "install.failed"][-1]
        assert reason in failed["reason"], failed
        assert "install.finished" not in [e["kind"] for e in node["events"]]
        if case != "missing-disk":
            assert vm.disk_head() == bytes(1 << 20), "the agent left something on the disk"
