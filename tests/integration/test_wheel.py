"""dgxie as an operator installs it (issue 17): the sdist and the wheel carry every shipped file,
and the installed wheel runs from `/` with only a config file.

How it is built and installed, and why that is the real thing and still fast:
- The checkout is copied to a temporary directory first (the build leaves nothing in the
  repository). The sdist comes from setuptools' PEP 517 hook, the wheel from `pip wheel` OF THAT
  SDIST, as `python -m build` does, so a file the sdist forgets is missing from the wheel too. pip
  builds it with its normal build isolation (the `setuptools>=68` of pyproject.toml from pip's
  configured index, as `make venv`'s `pip install -e` needs too; here a local one, so no network).
- The wheel is installed with `pip --python VENV install --no-deps --no-index` into a fresh
  virtual environment under the test's tmp directory, outside the repository. Its dependencies are
  not downloaded again: a `.pth` file in the new environment's site-packages appends the
  development environment's site-packages after its own. Python does not read `.pth` files in a
  directory that a `.pth` file adds, so the checkout's editable-install finder stays out; the test
  checks that `dgxie` and its shipped folders are imported from the new environment before it runs
  anything else.
- Every command runs with cwd `/`, without PYTHONPATH and with no `DGXIE_*` variable but
  DGXIE_CONFIG; the config names only the data directory (the database is its default SQLite
  file there), the listen port and the site's variables. SQLite only: this is about what the
  package carries, not about the database backend (the other tests run both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from dgxie import __version__, resources
from tests.support.lifecycle import SSH_KEY
from tests.support.net import free_port
from tests.support.paths import REPO

JUNK = shutil.ignore_patterns(".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                              ".*_cache", ".pytest_cache")
NOT_PACKAGED = {"tests", "bench", "docs", ".ci"}  # top-level folders the sdist does not carry


def shipped_files() -> dict[str, set[str]]:
    """Every file of the repository's shipped folders, by folder, as paths relative to the folder."""
    return {name: {str(p.relative_to(REPO / name)) for p in (REPO / name).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
            for name in resources.SHIPPED}


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    src = tmp_path_factory.mktemp("src") / "dgxie"
    shutil.copytree(REPO, src, ignore=lambda d, names: set(JUNK(d, names)) | (
        NOT_PACKAGED & set(names) if Path(d) == REPO else set()))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"],
                   cwd=src, check=True, capture_output=True)
    (sdist,) = out.glob("dgxie-*.tar.gz")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(sdist)],
                       cwd=out, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = out.glob("dgxie-*.whl")
    return Dist(sdist, wheel)


def test_the_version_is_in_one_place(dist: Dist) -> None:
    assert dist.wheel.name == f"dgxie-{__version__}-py3-none-any.whl"
    assert dist.sdist.name == f"dgxie-{__version__}.tar.gz"
    with zipfile.ZipFile(dist.wheel) as z:
        meta = z.read(f"dgxie-{__version__}.dist-info/METADATA").decode()
    assert f"\nVersion: {__version__}\n" in meta
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]  # dgxie/__init__.py's __version__


def test_the_sdist_and_the_wheel_carry_every_shipped_file(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as z:
        in_wheel = set(z.namelist())
    with tarfile.open(dist.sdist) as t:
        in_sdist = set(t.getnames())
    top = f"dgxie-{__version__}"
    expected = shipped_files()
    assert expected["templates"] and expected["migrations"] and "dgx-h100.yaml" in expected["firmware"]
    for name, files in expected.items():
        missing_wheel = sorted(f for f in files if f"dgxie/_data/{name}/{f}" not in in_wheel)
        missing_sdist = sorted(f for f in files if f"{top}/{name}/{f}" not in in_sdist)
        assert missing_wheel == [], f"the wheel lacks {name}/: {missing_wheel}"
        assert missing_sdist == [], f"the sdist lacks {name}/: {missing_sdist}"
    with zipfile.ZipFile(dist.wheel) as z:  # the agent's scripts stay executable
        mode = z.getinfo("dgxie/_data/images/agent/rootfs/init").external_attr >> 16
    assert mode & 0o111


@dataclass(frozen=True)
class Installed:
    venv: Path
    config: Path
    data: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([str(self.venv / "bin" / "dgxie"), *args], cwd="/", env=self.env, capture_output=True,
                           text=True, timeout=120)
        if check:
            assert r.returncode == 0, f"dgxie {' '.join(args)}: {r.stdout}{r.stderr}"
        return r


@pytest.fixture(scope="module")
def installed(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("installed")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, cwd="/")
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz-dgxie-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                        str(dist.wheel)], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stdout + r.stderr
    port = free_port()
    config = tmp / "dgxie.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(tmp / "data"), "api": {"listen": f"127.0.0.1:{port}"},
        "public_url": f"http://127.0.0.1:{port}",
        "site": {"name": "lab", "domain": "lab.example", "ssh_authorized_keys": [SSH_KEY],
                 "vars": {"admin_user": "ops"}},
        "profiles": {"dgx": {"image": "ubuntu-img", "template": "ubuntu/autoinstall", "role": "k8s-worker"}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DGXIE_", "PYTHON"))} | {
        "DGXIE_CONFIG": str(config), "COLUMNS": "1000"}  # rich wraps nothing
    return Installed(venv, config, tmp / "data", env)


def test_dgxie_and_its_data_come_from_the_installed_wheel(installed: Installed) -> None:
    probe = ("import json, dgxie, dgxie.resources as r; "
             "print(json.dumps([dgxie.__file__] + [str(r.shipped(n)) for n in r.SHIPPED]))")
    r = subprocess.run([str(installed.venv / "bin" / "python"), "-c", probe], cwd="/", env=installed.env,
                       capture_output=True, text=True, check=True)
    package = Path(json.loads(r.stdout)[0]).parent
    assert package.is_relative_to(installed.venv), package
    assert [Path(p) for p in json.loads(r.stdout)[1:]] == [package / "_data" / n for n in resources.SHIPPED]


@pytest.fixture(scope="module")
def enrolled(installed: Installed) -> Installed:
    """The database migrated, an image and a node enrolled on the config's profile, all by the CLI."""
    installed.run("db", "upgrade")
    assert (installed.data / "dgxie.db").is_file()  # the default database: in data_dir, not in the cwd
    kernel, initrd = installed.data.parent / "vmlinuz", installed.data.parent / "initrd"
    kernel.write_bytes(b"kernel")
    initrd.write_bytes(b"initrd")
    installed.run("image", "add", "ubuntu-img", "--kernel", str(kernel), "--initrd", str(initrd), "--os", "ubuntu")
    installed.run("node", "add", "dgx01", "--mac", "aa:bb:cc:00:00:01", "--ip", "10.0.0.11", "--profile", "dgx")
    return installed


def test_version(installed: Installed) -> None:
    assert installed.run("--version").stdout == f"dgxie {__version__}\n"


def test_serve_answers_healthz_and_the_dashboard(enrolled: Installed) -> None:
    url = yaml.safe_load(enrolled.config.read_text())["public_url"]
    log = enrolled.data.parent / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(enrolled.venv / "bin" / "dgxie"), "serve"], cwd="/", env=enrolled.env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"{url}/healthz", timeout=2)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, f"dgxie serve exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no /healthz in 60 s:\n{log.read_text()}"
            time.sleep(0.2)
        # the dashboard's templates and static files, and the offline Swagger UI, are package data
        assert "API token" in httpx.get(f"{url}/ui/login", timeout=10).text
        for path in ("/ui/static/app.js", "/ui/static/app.css", "/ui/static/swagger/swagger-ui-bundle.js",
                     "/ui/static/swagger/LICENSE"):
            assert httpx.get(f"{url}{path}", timeout=10).status_code == 200, path
        assert "/ui/static/swagger/swagger-ui.css" in httpx.get(f"{url}/docs", timeout=10).text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_render_uses_the_shipped_templates(enrolled: Installed) -> None:
    templates = enrolled.venv / "lib"  # the wheel's dgxie/_data/templates, somewhere under the venv
    auto = yaml.safe_load(enrolled.run("render", "dgx01", "user-data").stdout)["autoinstall"]
    assert auto["identity"]["username"] == "ops" and auto["identity"]["hostname"] == "dgx01"
    first = enrolled.run("render", "dgx01", "user-data", "--explain").stdout.splitlines()[0]
    assert first.startswith("# template: ubuntu/user-data.j2 (shipped: ") and first.endswith(")")
    used = Path(first.split("(shipped: ", 1)[1].removesuffix(")"))
    assert used.is_relative_to(templates) and used.parts[-4:] == ("_data", "templates", "ubuntu", "user-data.j2")
    ipxe = enrolled.run("render", "dgx01", "ipxe").stdout
    assert ipxe.startswith("#!ipxe") and "/images/ubuntu-img/vmlinuz" in ipxe
    line = next(ln for ln in enrolled.run("render", "dgx01", "ipxe", "--explain").stdout.splitlines()
                if ln.startswith("# template: "))
    assert line.startswith("# template: ipxe/install.ipxe.j2 (shipped: ")
    assert Path(line.split("(shipped: ", 1)[1].removesuffix(")")).is_relative_to(templates)


def test_firmware_baselines_are_the_shipped_ones(enrolled: Installed) -> None:
    out = enrolled.run("firmware", "baseline", "check").stderr
    h100 = next(w for w in out.split() if w.endswith("dgx-h100.yaml:"))
    assert Path(h100.removesuffix(":")).is_relative_to(enrolled.venv)
    assert f"{h100} ok (dgx-h100, " in out and "models DGXH100, DGX H100" in out
    assert "generic.yaml: ok (generic," in out


def test_inventory(enrolled: Installed) -> None:
    inv = json.loads(enrolled.run("inventory", "ansible", "--list", "--all").stdout)
    assert inv["_meta"]["hostvars"]["dgx01"]["ansible_host"] == "10.0.0.11"
    assert "dgx01" in inv["kube_node"]["hosts"]
    assert json.loads(enrolled.run("inventory", "ansible", "--list").stdout)["_meta"]["hostvars"] == {}  # not installed

