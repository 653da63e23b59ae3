"""The curl examples in docs/api.md ("Examples with curl") run, in order, against a real `dgxie serve`
and a Redfish emulator as the node's BMC; plain `curl -d` (form content type) bodies are read as JSON."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx

from tests.support.bmc import INSECURE_HTTP, sushy_emulator
from tests.support.paths import REPO
from tests.support.serve import served

DOC = (REPO / "docs" / "api.md").read_text()
SYSTEM = "/redfish/v1/Systems/11111111-1111-4111-8111-111111111111"
AREAS = ("tokens", "images", "profiles", "nodes", "power", "reprovision", "firmware", "secrets", "mirrors",
         "inventory")


def _blocks() -> list[str]:
    section = DOC.split("## Examples with curl", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def test_every_area_has_an_example() -> None:
    blocks = _blocks()
    assert blocks[0].startswith("export DGXIE=")
    calls = "\n".join(blocks[1:])
    for area in AREAS:
        assert f"/api/v1/{area}" in calls or f"/{area}" in calls, area


def test_the_curl_examples_work(tmp_path: Path, db_url: str) -> None:
    blocks = _blocks()
    with sushy_emulator(tmp_path / "bmc") as bmc, served(tmp_path, db_url, bmc=INSECURE_HTTP) as srv:
        env = {"PATH": "/usr/bin:/bin", "DGXIE": srv.url, "TOKEN": srv.token, "BMC": bmc + SYSTEM}
        prelude = 'set -euo pipefail\nauth="Authorization: Bearer $TOKEN"\n'
        outputs = []
        for block in blocks[1:]:
            r = subprocess.run(["bash", "-c", prelude + block], env=env, capture_output=True, text=True, timeout=60,
                               check=False)
            assert r.returncode == 0, (block, r.stdout, r.stderr)
            outputs.append(r.stdout)
        nodes = httpx.get(f"{srv.url}/api/v1/nodes/dgx01", headers=srv.auth, timeout=10).json()
    text = "\n".join(outputs)
    assert '"role":"viewer"' in text and '"token":"dgxie_' in text
    assert nodes["profile"] == "gpu" and nodes["bmc"]["password_set"] is True
    assert json.loads(outputs[4]) == {"node": "dgx01", "power": "off"}
    assert '"kind":"reprovision"' in outputs[5] and '"kind":"node.pxe_cycle"' in outputs[5]
    assert "_meta" in json.loads(outputs[-1])


def test_a_body_that_is_not_json_says_what_to_send(tmp_path: Path, db_url: str) -> None:
    with served(tmp_path, db_url) as srv:
        r = httpx.post(f"{srv.url}/api/v1/profiles", content=b"name=gpu", headers=srv.auth | {
            "content-type": "application/x-www-form-urlencoded"}, timeout=10)
        assert r.status_code == 422 and r.json() == {
            "detail": "body: not JSON (send a JSON object, with Content-Type: application/json)"}
        r = httpx.post(f"{srv.url}/api/v1/profiles", content=b'{"name": "gpu"}', headers=srv.auth | {
            "content-type": "text/plain"}, timeout=10)
        assert r.status_code == 201 and r.json()["name"] == "gpu"
        r = httpx.post(f"{srv.url}/api/v1/profiles", content=b'{"name": "gpu2"}', headers=srv.auth, timeout=10)
        assert r.status_code == 201, r.text
