"""Test peers for the APT mirror: real .debs (dpkg-deb), a real repository (apt-ftparchive), a
real throwaway gpg key, a loopback HTTP server (stdlib, with Range), and a real apt-get."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def run(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: bytes | None = None) -> str:
    res = subprocess.run(cmd, cwd=cwd, env=env, input=input, capture_output=True, timeout=300)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {res.returncode}\n{res.stdout.decode()}\n{res.stderr.decode()}")
    return res.stdout.decode()


def build_deb(out_dir: Path, name: str, version: str = "1.0", arch: str = "amd64", depends: str = "",
              payload: int = 2000) -> Path:
    """A real, tiny .deb built with dpkg-deb from a temp tree."""
    tree = out_dir / f".build-{name}-{version}"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr/share" / name).mkdir(parents=True)
    (tree / "usr/share" / name / "data").write_bytes(os.urandom(payload))
    ctrl = [f"Package: {name}", f"Version: {version}", f"Architecture: {arch}", "Maintainer: t <t@example.org>",
            "Section: misc", "Priority: optional", f"Description: test package {name}"]
    if depends:
        ctrl.insert(4, f"Depends: {depends}")
    (tree / "DEBIAN/control").write_text("\n".join(ctrl) + "\n")
    deb = out_dir / f"{name}_{version}_{arch}.deb"
    run("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb))
    shutil.rmtree(tree)
    return deb


@dataclass
class GpgKey:
    home: Path
    uid: str

    def gpg(self, *args: str, input: bytes | None = None) -> str:
        return run("gpg", "--batch", "--quiet", "--homedir", str(self.home), *args, input=input)

    def export(self, dest: Path) -> Path:
        dest.write_bytes(subprocess.run(["gpg", "--batch", "--homedir", str(self.home), "--export", self.uid],
                                        capture_output=True, check=True).stdout)
        return dest


def make_key(home: Path, uid: str, expire: str = "never") -> GpgKey:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = GpgKey(home, uid)
    key.gpg("--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key", uid, "ed25519", "sign", expire)
    return key


@dataclass
class Repo:
    root: Path
    suite: str = "stable"
    component: str = "main"
    arch: str = "amd64"
    key: GpgKey | None = None
    debs: list[Path] = field(default_factory=list)

    def add(self, deb: Path) -> None:
        pool = self.root / "pool" / self.component / deb.name[0]
        pool.mkdir(parents=True, exist_ok=True)
        shutil.copy(deb, pool / deb.name)
        self.debs.append(pool / deb.name)

    def publish(self, *, sign: bool = True, inrelease: bool = True, faked_time: str | None = None,
                by_hash: bool = False) -> None:
        """Regenerate Packages(.gz) and Release with apt-ftparchive, then sign."""
        d = self.root / "dists" / self.suite
        bdir = d / self.component / f"binary-{self.arch}"
        bdir.mkdir(parents=True, exist_ok=True)
        pk = run("apt-ftparchive", "packages", f"pool/{self.component}", cwd=self.root)
        (bdir / "Packages").write_text(pk)
        run("gzip", "-kf9n", str(bdir / "Packages"))
        for f in ("Release", "InRelease", "Release.gpg"):
            (d / f).unlink(missing_ok=True)
        rel = run("apt-ftparchive", "-o", f"APT::FTPArchive::Release::Suite={self.suite}",
                  "-o", f"APT::FTPArchive::Release::Codename={self.suite}",
                  "-o", f"APT::FTPArchive::Release::Components={self.component}",
                  "-o", f"APT::FTPArchive::Release::Architectures={self.arch}", "release", str(d))
        if by_hash:  # Debian-style: indexes also under by-hash/SHA256/<hex>, announced in Release
            bh = bdir / "by-hash/SHA256"
            bh.mkdir(parents=True, exist_ok=True)
            for f in ("Packages", "Packages.gz"):
                shutil.copy(bdir / f, bh / hashlib.sha256((bdir / f).read_bytes()).hexdigest())
            rel = "Acquire-By-Hash: yes\n" + rel
        (d / "Release").write_text(rel)
        if sign and self.key is not None:
            extra = ["--faked-system-time", faked_time] if faked_time else []
            common = ["--pinentry-mode", "loopback", "--passphrase", "", *extra, "--local-user", self.key.uid]
            if inrelease:
                self.key.gpg(*common, "--clearsign", "--output", str(d / "InRelease"), str(d / "Release"))
            self.key.gpg(*common, "--armor", "--detach-sign", "--output", str(d / "Release.gpg"), str(d / "Release"))


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with `Range: bytes=N-` support; `fail` paths answer 404; requests logged."""

    fail: set[str] = set()
    log: list[tuple[str, str]] = []
    truncate: dict[str, int] = {}  # path -> stop after this many bytes (then drop the connection)
    stall: dict[str, int] = {}  # path -> stop after this many bytes, then hang (<= 30 s) before dropping

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        type(self).log.append((path, self.headers.get("Range", "")))
        if path in self.fail:
            self.send_error(404)
            return
        fs = Path(self.translate_path(path))
        rng = self.headers.get("Range", "")
        if not fs.is_file() or (not rng and path not in self.truncate and path not in self.stall):
            super().do_GET()
            return
        data = fs.read_bytes()
        start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
        body = data[start:]
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.truncate.get(path, self.stall.get(path))
        self.wfile.write(body[:cut] if cut is not None else body)
        if path in self.stall:
            self.wfile.flush()
            deadline = time.monotonic() + 30
            while path in self.stall and time.monotonic() < deadline:
                time.sleep(0.05)
        if cut is not None:
            self.close_connection = True


@contextmanager
def serve(root: Path) -> Iterator[tuple[str, type[Handler]]]:
    handler = type("H", (Handler,), {"fail": set(), "log": [], "truncate": {}, "stall": {}})

    def factory(*a: object, **kw: object) -> Handler:
        return handler(*a, directory=str(root), **kw)  # type: ignore[arg-type]

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)  # type: ignore[arg-type]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", handler
    finally:
        srv.shutdown()
        srv.server_close()


def apt_get(tmp: Path, base_url: str, keyring: Path, *args: str, suite: str = "stable",
            by_hash: bool = False) -> subprocess.CompletedProcess[str]:
    """A real apt-get with its own state, cache, sources and keyring; nothing of the host's."""
    root = tmp / "aptroot"
    for d in ("state/lists/partial", "cache/archives/partial", "etc/preferences.d", "etc/apt.conf.d", "log"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "state/status").touch()
    (root / "etc/sources.list").write_text(f"deb [signed-by={keyring}] {base_url} {suite} main\n")
    conf = root / "apt.conf"
    conf.write_text(f"""Dir::State "{root}/state"; Dir::State::status "{root}/state/status";
Dir::Cache "{root}/cache"; Dir::Etc "{root}/etc"; Dir::Etc::sourcelist "{root}/etc/sources.list";
Dir::Etc::sourceparts "-"; Dir::Etc::trusted "/dev/null"; Dir::Etc::trustedparts "{root}/etc/none";
Dir::Log "{root}/log"; APT::Architecture "amd64"; APT::Architectures {{ "amd64"; }};
Debug::NoLocking "true"; Acquire::Languages "none"; Acquire::Retries "0";
Acquire::By-Hash "{'force' if by_hash else 'yes'}"; APT::Sandbox::User "root";
""")
    env = dict(os.environ, APT_CONFIG=str(conf), DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(["apt-get", "-q", "-y", *args], env=env, capture_output=True, text=True, timeout=120)


@contextmanager
def dgxie_http(ctx: object) -> Iterator[str]:
    """The real dgxie app under uvicorn on a free loopback port, in a thread."""
    import socket
    import time

    import uvicorn

    from dgxie.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), log_level="warning", access_log=False))  # type: ignore[arg-type]
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise AssertionError("dgxie did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(timeout=10)
        sock.close()


@dataclass
class World:
    """An upstream repo (hello, world -> hello) served on loopback, its key and keyring."""

    tmp: Path
    repo: Repo
    keyring: Path
    url: str
    handler: type[Handler]
    debs: Path

    def add(self, name: str, **kw: object) -> Path:
        deb = build_deb(self.debs, name, **kw)  # type: ignore[arg-type]
        self.repo.add(deb)
        return deb

    def mirror(self, name: str = "up", **kw: object) -> dict[str, object]:
        return {"name": name, "kind": "apt", "url": self.url, "suites": ["stable"], "components": ["main"],
                "architectures": ["amd64"], "keyring": str(self.keyring)} | kw


@contextmanager
def world(tmp: Path) -> Iterator[World]:
    key = make_key(tmp / "upstream-gnupg", "Test Repo <repo@example.org>")
    keyring = key.export(tmp / "upstream-keyring.gpg")
    repo = Repo(tmp / "upstream", key=key)
    debs = tmp / "debs"
    debs.mkdir()
    repo.add(build_deb(debs, "hello"))
    repo.add(build_deb(debs, "world", depends="hello (>= 1.0)"))
    repo.publish()
    try:
        with serve(repo.root) as (url, handler):
            yield World(tmp, repo, keyring, url, handler, debs)
    finally:
        stop_gpg_agents(tmp)


def stop_gpg_agents(tmp: Path) -> None:
    """Stop the gpg-agents that gpg started for the test's home directories (and dgxie's)."""
    for home in {p.parent for p in tmp.rglob("pubring.kbx")} | {p.parent for p in tmp.rglob("private-keys-v1.d")}:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, timeout=30)
