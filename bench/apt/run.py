"""APT mirror benchmark: a signed repository of N small packages on loopback (stdlib
http.server in a subprocess); `dgxie mirror sync` first run, no-op re-run, and `wget -r` of the
same pool from the same server, in the same run.

    .venv/bin/python bench/apt/run.py [--packages 10000] [--size 3000] [--workdir /tmp/dgxie-bench-apt]

The .deb files are random bytes of the given size listed in a generated Packages file (the mirror
never unpacks them; only their sha256 and size matter); Release by apt-ftparchive, signed by gpg.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml


def sh(*cmd: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, check=True, capture_output=True, **kw)  # type: ignore[call-overload,no-any-return]


def build_repo(root: Path, n: int, size: int, home: Path) -> Path:
    stanzas = []
    for i in range(n):
        name = f"pkg{i:05d}"
        rel = f"pool/main/p/{name}/{name}_1.0_amd64.deb"
        data = os.urandom(size)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        stanzas.append(f"Package: {name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: b <b@example.org>\n"
                       f"Filename: {rel}\nSize: {size}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
                       f"Description: bench package {i}\n")
    d = root / "dists/stable"
    b = d / "main/binary-amd64"
    b.mkdir(parents=True, exist_ok=True)
    text = "\n".join(stanzas).encode()
    (b / "Packages").write_bytes(text)
    (b / "Packages.gz").write_bytes(gzip.compress(text))
    rel = sh("apt-ftparchive", "-o", "APT::FTPArchive::Release::Suite=stable", "release", str(d)).stdout
    (d / "Release").write_bytes(rel)
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--quiet", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", ""]
    sh(*gpg, "--quick-gen-key", "Bench <b@example.org>", "ed25519", "sign", "never")
    sh(*gpg, "--clearsign", "--output", str(d / "InRelease"), str(d / "Release"))
    kr = root.parent / "keyring.gpg"
    kr.write_bytes(sh(*gpg, "--export").stdout)
    sh("gpgconf", "--homedir", str(home), "--kill", "all")
    return kr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packages", type=int, default=10000)
    ap.add_argument("--size", type=int, default=3000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/dgxie-bench-apt"))
    a = ap.parse_args()
    w = a.workdir
    shutil.rmtree(w, ignore_errors=True)
    (w / "up").mkdir(parents=True)
    t = time.monotonic()
    kr = build_repo(w / "up", a.packages, a.size, w / "gnupg")
    print(f"built repo of {a.packages} packages in {time.monotonic() - t:.1f}s", file=sys.stderr)
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                            "--directory", str(w / "up")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        url = f"http://127.0.0.1:{port}"
        cfg = w / "dgxie.yaml"
        cfg.write_text(yaml.safe_dump({"database_url": f"sqlite:///{w}/dgxie.db", "data_dir": str(w / "data"),
                                       "mirrors": [{"name": "bench", "kind": "apt", "url": url, "suites": ["stable"],
                                                    "keyring": str(kr)}]}))
        env = dict(os.environ, DGXIE_CONFIG=str(cfg))
        dgxie = str(Path(sys.executable).parent / "dgxie")
        sh(dgxie, "db", "upgrade", env=env)
        results = {}
        for label in ("dgxie mirror sync (first)", "dgxie mirror sync (no-op)"):
            t = time.monotonic()
            sh(dgxie, "mirror", "sync", "bench", "-q", env=env)
            results[label] = time.monotonic() - t
            job = json.loads(sh(dgxie, "mirror", "jobs", "bench", "--json", env=env).stdout)[0]
            took = datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])
            results[label.replace("dgxie mirror sync", "  of which the sync job")] = took.total_seconds()
        t = time.monotonic()
        subprocess.run(["wget", "-q", "-r", "-np", "-nH", "-P", str(w / "wget"), f"{url}/pool/"], check=False)
        results["wget -r pool/ (crawls 10,000 dir listings too)"] = time.monotonic() - t
        got = sum(1 for p in (w / "wget").rglob("*.deb"))
        urls = w / "urls.txt"
        urls.write_text("".join(f"{url}/{p.relative_to(w / 'up')}\n" for p in sorted((w / "up/pool").rglob("*.deb"))))
        t = time.monotonic()
        subprocess.run(["wget", "-q", "-x", "-nH", "-P", str(w / "wget-i"), "-i", str(urls)], check=False)
        results["wget -i urls.txt (same files, no crawl)"] = time.monotonic() - t
        mb = a.packages * a.size / 1e6
        print("| step | seconds | files/s | MB/s |\n|---|---|---|---|")
        for k, v in results.items():
            files = 0 if "no-op" in k else a.packages
            print(f"| {k} | {v:.1f} | {files / v:.0f} | {(mb if files else 0) / v:.2f} |")
        print(f"\nwget -r fetched {got} .deb files")
    finally:
        srv.terminate()
        srv.wait(timeout=10)


if __name__ == "__main__":
    main()
