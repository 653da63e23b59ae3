"""Real peers for the OCI mirror tests: an OCI image layout written by hand, Debian's
`docker-registry` (htpasswd or token auth) on 127.0.0.1, skopeo to push/pull, and two small
stand-ins where no packaged peer exists (a token server, `oci_token.py`, and a fault-injecting
proxy, `oci_proxy.py`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.net import free_port as free_port  # re-exported for the tests that import it from here

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


# -- an OCI image layout, by hand (image-spec v1.1 "image layout") ------------------------------


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self.refs: list[dict[str, object]] = []

    def blob(self, data: bytes, media_type: str) -> dict[str, object]:
        d = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / d).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{d}", "size": len(data)}

    def save(self) -> None:
        (self.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                          "manifests": self.refs}))


def layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzipped tar layer (deterministic) and its diff_id (sha256 of the uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def add_image(layout: Layout, tag: str, created: str, *, archs: tuple[str, ...] = ("amd64", "arm64"),
              extra: bytes = b"") -> dict[str, object]:
    """A multi-arch image: per arch a shared base layer + a tag-specific layer, a config, a manifest.
    Returns {"index": digest, "<arch>": manifest digest, "layers": {digest: size}}."""
    entries = []
    info: dict[str, object] = {}
    layers: dict[str, int] = {}
    for arch in archs:
        base, base_id = layer({f"etc/base-{arch}": f"base {arch}\n".encode()})
        top, top_id = layer({"app/version": f"{tag} {arch}\n".encode() + extra})
        config = json.dumps({"created": created, "architecture": arch, "os": "linux",
                             "config": {"Env": ["PATH=/usr/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": [base_id, top_id]}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": layout.blob(config, "application/vnd.oci.image.config.v1+json"),
            "layers": [layout.blob(base, "application/vnd.oci.image.layer.v1.tar+gzip"),
                       layout.blob(top, "application/vnd.oci.image.layer.v1.tar+gzip")]}).encode()
        doc = json.loads(manifest)
        layers.update({str(x["digest"]): int(x["size"]) for x in doc["layers"]})
        entry = layout.blob(manifest, OCI_MANIFEST)
        info[arch] = entry["digest"]
        entry["platform"] = {"os": "linux", "architecture": arch}
        entries.append(entry)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    ref = layout.blob(index, OCI_INDEX)
    ref["annotations"] = {"org.opencontainers.image.ref.name": tag}
    layout.refs.append(ref)
    info["index"], info["layers"] = ref["digest"], layers
    return info


# -- docker-registry -------------------------------------------------------------------------


@dataclass
class Registry:
    port: int
    root: Path
    creds: str | None  # "user:password" for skopeo

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def docker_registry(tmp: Path, auth: dict[str, object] | None) -> Iterator[Registry]:
    port = free_port()
    cfg = {"version": 0.1, "log": {"level": "warn", "accesslog": {"disabled": True}},
           "storage": {"filesystem": {"rootdirectory": str(tmp / "storage")}},
           "http": {"addr": f"127.0.0.1:{port}", "secret": "test-secret"}}
    if auth:
        cfg["auth"] = auth
    (tmp / "config.yml").write_text(yaml.safe_dump(cfg))
    log = (tmp / "registry.log").open("wb")
    proc = subprocess.Popen(["docker-registry", "serve", str(tmp / "config.yml")], stdout=log, stderr=log)
    try:
        wait_port(port, proc)
        yield Registry(port=port, root=tmp, creds=None)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def htpasswd(path: Path, user: str, password: str) -> None:
    out = subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True)
    path.write_text(out.stdout)


def skopeo(*args: str, timeout: float = 120) -> str:
    r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def push(layout: Path, tag: str, reg: Registry, repo: str = "nvidia/pytorch") -> None:
    creds = ["--dest-creds", reg.creds] if reg.creds else []
    skopeo("copy", "--all", "--dest-tls-verify=false", *creds, f"oci:{layout}:{tag}", f"docker://{reg.host}/{repo}:{tag}")


def raw_digest(ref: str, creds: str | None = None) -> str:
    extra = ["--creds", creds] if creds else []
    raw = skopeo("inspect", "--raw", "--tls-verify=false", *extra, ref)
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


# -- dgxie side --------------------------------------------------------------------------------


@dataclass
class CliRun:
    code: int
    out: str
    err: str


def run_cli(config: Path, *args: str) -> CliRun:
    """`dgxie --config CONFIG ARGS...` in-process (against the SQLite database `write_config` names)."""
    import contextlib

    from dgxie.cli import common, main

    common.CONFIG_PATH[0] = None
    common.reset()
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["--config", str(config), *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
    common.reset()
    return CliRun(code, out.getvalue(), err.getvalue())


def write_config(path: Path, data_dir: Path, mirrors: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"database_url": f"sqlite:///{data_dir}/dgxie.db", "data_dir": str(data_dir),
                                    "mirrors": mirrors}))
    return path


@contextmanager
def serve_dgxie(data_dir: Path, database_url: str) -> Iterator[int]:
    """The real dgxie app under uvicorn on 127.0.0.1:<free port>, in a thread."""
    import threading

    import uvicorn

    from dgxie.app import create_app
    from dgxie.compose import build_context
    from dgxie.config import Settings

    ctx = build_context(Settings(database_url=database_url, data_dir=data_dir), migrate=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        thread.join(15)
        ctx.engine.dispose()


@contextmanager
def containerd(tmp: Path) -> Iterator[str]:
    """A real containerd (CRI plugin off) with root, state and sockets under `tmp`; yields the socket."""
    tmp.mkdir(parents=True, exist_ok=True)
    sock = tmp / "ctd.sock"
    (tmp / "config.toml").write_text(
        f'version = 2\nroot = "{tmp}/root"\nstate = "{tmp}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{tmp}/ctd-ttrpc.sock"\n'
        f'[debug]\n  address = "{tmp}/ctd-debug.sock"\n')
    log = (tmp / "containerd.log").open("wb")
    proc = subprocess.Popen(["containerd", "--config", str(tmp / "config.toml")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not start: {(tmp / 'containerd.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield str(sock)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
