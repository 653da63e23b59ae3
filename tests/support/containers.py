"""Podman for the container tests (tests/e2e/test_compose.py): the images built offline, and the
settings podman needs inside this sandbox (docs/deploy-ha.md, "Podman in a restricted sandbox").

- The base image comes from deploy/container/build-base.sh (mmdebstrap from the Debian archive and
  release suite of this machine's APT sources, `podman import`; the rootfs is cached under
  /var/cache/dgxie-test).
- `CONTAINERS_CONF` points podman at a containers.conf whose default ulimits are at or below this
  process's hard limits: podman's defaults (nofile 1048576, nproc = the host's) need
  CAP_SYS_RESOURCE, which the sandbox lacks ("error setting rlimit type 7: operation not permitted").
- `podman build` runs with `--network host` and, when the host has one, the host's CA bundle bind
  mounted read-only over the image's for the build's `pip install` (a TLS-inspecting proxy's CA is
  only in the host's bundle). Nothing of it stays in the image.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from tests.support.debian_mirror import host_debian_source
from tests.support.paths import REPO

BASE_IMAGE = "localhost/dgxie-base:bookworm"
DB_IMAGE = "localhost/dgxie-postgres:15"
DGXIE_IMAGE = "localhost/dgxie:test"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
COMPOSE = [sys.executable, "-m", "podman_compose"]  # PyPI podman-compose (dev extra), see the docs


def podman_env(workdir: Path) -> dict[str, str]:
    """The environment for podman and podman-compose: os.environ plus CONTAINERS_CONF (see above)."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nproc = 8192 if nproc_hard == resource.RLIM_INFINITY else min(nproc_hard // 2, 8192)
    conf = workdir / "containers.conf"
    conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n')
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def run(cmd: list[str], env: dict[str, str], timeout: float, cwd: Path = REPO) -> str:
    """Run CMD; its stdout, or an AssertionError with the tail of its output."""
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(cmd[:4])} ... exit {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p.stdout


def build_images(env: dict[str, str]) -> None:
    """The base image (cached), the PostgreSQL image and the dgxie image from this checkout."""
    mirror, suite = host_debian_source()  # the Debian archive this machine's APT uses
    base_env = {**env, "DGXIE_BASE_IMAGE": BASE_IMAGE, "DGXIE_BASE_MIRROR": mirror, "DGXIE_BASE_SUITE": suite}
    assert run(["bash", str(REPO / "deploy/container/build-base.sh")], base_env, timeout=1200).strip() == BASE_IMAGE
    build = ["podman", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    if CA_BUNDLE.is_file():
        build += ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    run([*build, "-t", DB_IMAGE, str(REPO / "deploy/container/postgres")], env, timeout=600)
    run([*build, "-t", DGXIE_IMAGE, str(REPO)], env, timeout=1200)
    run(["podman", "image", "prune", "-f"], env, timeout=300)  # the images these tags had before
