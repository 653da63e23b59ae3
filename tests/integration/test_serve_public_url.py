"""`dgxie serve` says where it listens and which public_url nodes are sent to, derived from api.listen
when unset (docs/configuration.md); the `make run` banner no longer claims a fixed port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from dgxie.config import Settings
from tests.support.net import free_port
from tests.support.paths import REPO


def test_public_url_follows_api_listen_unless_set() -> None:
    assert Settings().public_url == "http://127.0.0.1:8080"
    assert Settings(api={"listen": "10.0.0.1:9090"}).public_url == "http://10.0.0.1:9090"
    s = Settings(api={"listen": "0.0.0.0:9090"}, dhcp={"subnets": [{"cidr": "127.0.0.0/8"}]})
    assert s.public_url == "http://127.0.0.1:9090" and "DHCP subnet 127.0.0.0/8" in s.public_url_note
    s = Settings(api={"listen": "0.0.0.0:9090"})
    assert s.public_url.endswith(":9090") and "0.0.0.0" not in s.public_url and "host's name" in s.public_url_note
    s = Settings(api={"listen": "0.0.0.0:9090"}, public_url="http://boot.example:80/")
    assert s.public_url == "http://boot.example:80" and s.public_url_note == ""


def test_serve_prints_the_real_listen_address_and_derived_public_url(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    cfg = tmp_path / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": db_url, "data_dir": str(tmp_path / "data"),
                                   "dhcp": {"subnets": [{"cidr": "127.0.0.0/8"}]}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")} | {
        "DGXIE_CONFIG": str(cfg), "DGXIE_API__LISTEN": f"0.0.0.0:{port}", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "dgxie", "serve"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/boot/ipxe", params={"mac": "02:00:00:00:00:09"}, timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "dgxie serve did not come up"
                time.sleep(0.2)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert f"dgxie serving on http://0.0.0.0:{port} (OpenAPI at /docs" in out, out
    assert (f"public_url http://127.0.0.1:{port}: not set, so derived from api.listen 0.0.0.0:{port} is every "
            "address: this host's address towards DHCP subnet 127.0.0.0/8") in out, out
    assert r.status_code == 200 and "8080" not in r.text, r.text
    banner = subprocess.run(["make", "-n", "run"], cwd=REPO, capture_output=True, text=True, check=False).stdout
    assert "dgxie serve" in banner and "8080" not in banner, banner
