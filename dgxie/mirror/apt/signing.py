"""dgxie's own archive key, for filtered mirrors whose indexes are rewritten and so re-signed.

The key is generated with gpg on first use in `<mirror dir>/gnupg` (one per mirror). Its secret
half is protected by a random passphrase that is stored only sealed with the site's secret box
(`passphrase.sealed`, encrypted at rest) and handed to gpg through a pipe, never on a command
line. Its public half is served as `/mirror/apt/NAME/dgxie-archive-key.gpg` for `Signed-By`.
"""

from __future__ import annotations

import gzip
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from dgxie.crypto import SecretBox
from dgxie.mirror.apt.repository import FileRef, Package

UID = "dgxie archive signing key <dgxie@localhost>"


class ArchiveKey:
    def __init__(self, home: Path, box: SecretBox) -> None:
        self.home = home
        self.box = box

    @contextmanager
    def _session(self, *, save: bool = False) -> Iterator[Path]:
        """A copy of the key's home in a short temporary directory (gpg-agent's socket path must
        stay under 108 bytes, which a deep data dir exceeds); the agent is stopped afterwards."""
        tmp = Path(tempfile.mkdtemp(prefix="dgxie-gpg-"))
        work = tmp / "h"
        try:
            shutil.copytree(self.home, work, ignore=shutil.ignore_patterns("S.*"))
            os.chmod(work, 0o700)
            yield work
            if save:
                shutil.copytree(work, self.home, dirs_exist_ok=True, ignore=shutil.ignore_patterns("S.*"))
        finally:
            subprocess.run(["gpgconf", "--homedir", str(work), "--kill", "gpg-agent"], capture_output=True,
                           timeout=30, check=False)
            shutil.rmtree(tmp, ignore_errors=True)

    def _gpg(self, home: Path, *args: str, data: bytes | None = None, passphrase: str | None = None) -> bytes:
        cmd = ["gpg", "--batch", "--quiet", "--homedir", str(home)]
        fds: tuple[int, ...] = ()
        if passphrase is not None:
            r, w = os.pipe()
            os.write(w, passphrase.encode() + b"\n")
            os.close(w)
            cmd += ["--pinentry-mode", "loopback", "--passphrase-fd", str(r)]
            fds = (r,)
        try:
            res = subprocess.run([*cmd, *args], input=data, capture_output=True, timeout=120, pass_fds=fds)
        finally:
            for fd in fds:
                os.close(fd)
        if res.returncode != 0:
            raise RuntimeError(f"gpg {args[0]}: {res.stderr.decode(errors='replace').strip()[:300]}")
        return res.stdout

    def _passphrase(self) -> str:
        return self.box.open((self.home / "passphrase.sealed").read_bytes())

    def ensure(self) -> None:
        if (self.home / "dgxie-key.done").exists():
            return
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(32)
        (self.home / "passphrase.sealed").write_bytes(self.box.seal(secret))
        with self._session(save=True) as home:
            self._gpg(home, "--quick-gen-key", UID, "ed25519", "sign", "never", passphrase=secret)
        (self.home / "dgxie-key.done").write_text("ok\n")

    def public_key(self) -> bytes:
        self.ensure()
        with self._session() as home:
            return self._gpg(home, "--export", UID)

    def sign(self, release: bytes) -> dict[str, bytes]:
        """Release, Release.gpg (detached) and InRelease (clearsigned) for `release`."""
        self.ensure()
        common = ("--digest-algo", "SHA512", "--local-user", UID)
        pw = self._passphrase()
        with self._session() as home:
            return {"Release": release,
                    "Release.gpg": self._gpg(home, *common, "--armor", "--detach-sign", data=release, passphrase=pw),
                    "InRelease": self._gpg(home, *common, "--clearsign", data=release, passphrase=pw)}


def packages_files(packages: Iterable[Package]) -> list[tuple[str, bytes]]:
    text = "\n\n".join(p.stanza for p in sorted(packages, key=lambda p: (p.name, p.version))) + "\n"
    data = text.encode()
    return [("Packages", data), ("Packages.gz", gzip.compress(data, mtime=0))]


def release_text(upstream: dict[str, str], suite: str, refs: list[FileRef], components: list[str],
                 architectures: list[str]) -> bytes:
    """A Release for the filtered indexes: upstream's identity, only the mirrored parts."""
    keys = {"origin": "Origin", "label": "Label", "suite": "Suite", "codename": "Codename",
            "version": "Version", "description": "Description"}
    lines = [f"{k}: {upstream[lk]}" for lk, k in keys.items() if lk in upstream]
    lines += [f"Architectures: {' '.join(architectures)}", f"Components: {' '.join(components)}"]
    if "suite" not in upstream and "codename" not in upstream:
        lines.append(f"Suite: {suite}")
    lines.append("Date: " + datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S UTC"))
    lines.append("Acquire-By-Hash: yes")
    lines.append("SHA256:")
    lines += [f" {r.sha256} {r.size:>16} {r.path}" for r in sorted(refs, key=lambda r: r.path)]
    return ("\n".join(lines) + "\n").encode()
