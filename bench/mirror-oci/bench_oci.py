"""OCI mirror benchmark: dgxie's sync and /v2/ serving beside skopeo and docker-registry.

    .venv/bin/python bench/mirror-oci/bench_oci.py [--layers 8] [--layer-mib 16] [--small 200]

Builds two images in an OCI layout (one of `--layers` random layers of `--layer-mib` MiB, one of
`--small` 4 KiB layers), pushes them to Debian's docker-registry on 127.0.0.1 and times:
1. pull into local storage: `dgxie` sync_oci (verify + store) vs `skopeo copy --all docker:// oci:`;
2. no-op re-sync vs skopeo copy again into the same layout (both skip what they hold);
3. serving: `skopeo copy --all` from dgxie's /v2/ vs from docker-registry, into fresh layouts.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dgxie import db  # noqa: E402
from dgxie.mirror.kind import mirror_dir, store_for  # noqa: E402
from dgxie.mirror.oci.sync import sync_oci  # noqa: E402
from dgxie.sections import OciMirrorConfig  # noqa: E402
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, Layout, docker_registry, layer, serve_dgxie  # noqa: E402


def image(lay: Layout, tag: str, layers: list[bytes]) -> None:
    import json

    descs, diff_ids = [], []
    for payload in layers:
        blob, diff_id = layer({"data": payload})
        descs.append(lay.blob(blob, "application/vnd.oci.image.layer.v1.tar+gzip"))
        diff_ids.append(diff_id)
    config = json.dumps({"created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": lay.blob(config, "application/vnd.oci.image.config.v1+json"),
                           "layers": descs}).encode()
    entry = lay.blob(manifest, OCI_MANIFEST) | {"platform": {"os": "linux", "architecture": "amd64"}}
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}).encode()
    lay.refs.append(lay.blob(index, OCI_INDEX) | {"annotations": {"org.opencontainers.image.ref.name": tag}})


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def skopeo_copy(src: str, dst: Path) -> None:
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--all", "--src-tls-verify=false", src, f"oci:{dst}"],
                   check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--layer-mib", type=int, default=16)
    ap.add_argument("--small", type=int, default=200)
    args = ap.parse_args()
    rnd = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="bench-oci-") as t:
        tmp = Path(t)
        lay = Layout(tmp / "layout")
        image(lay, "big", [rnd.randbytes(args.layer_mib << 20) for _ in range(args.layers)])
        image(lay, "small", [rnd.randbytes(4096) for _ in range(args.small)])
        lay.save()
        (tmp / "reg").mkdir()
        with docker_registry(tmp / "reg", None) as reg:
            for tag, repo in (("big", "bench/big"), ("small", "bench/small")):
                subprocess.run(["skopeo", "--insecure-policy", "copy", "--all", "--dest-tls-verify=false",
                                f"oci:{tmp / 'layout'}:{tag}", f"docker://{reg.host}/{repo}:{tag}"],
                               check=True, capture_output=True)
            rows = []
            for repo, tag in (("bench/big", "big"), ("bench/small", "small")):
                data = tmp / f"data-{tag}"
                spec = OciMirrorConfig(name=tag, kind="oci", registry=f"http://{reg.host}", repositories=[repo])
                store = store_for(data)
                d1 = timed(lambda: sync_oci(spec, store, mirror_dir(data, "oci", tag)))  # noqa: B023
                s1 = timed(lambda: skopeo_copy(f"docker://{reg.host}/{repo}:{tag}", tmp / f"sk-{tag}"))  # noqa: B023
                d2 = timed(lambda: sync_oci(spec, store, mirror_dir(data, "oci", tag)))  # noqa: B023
                s2 = timed(lambda: skopeo_copy(f"docker://{reg.host}/{repo}:{tag}", tmp / f"sk-{tag}"))  # noqa: B023
                url = f"sqlite:///{data}/dgxie.db"
                db.upgrade(url)
                with serve_dgxie(data, url) as port:
                    p1 = timed(lambda: skopeo_copy(f"docker://127.0.0.1:{port}/{repo}:{tag}", tmp / f"from-dgxie-{tag}"))  # noqa: B023,E501
                p2 = timed(lambda: skopeo_copy(f"docker://{reg.host}/{repo}:{tag}", tmp / f"from-reg-{tag}"))  # noqa: B023
                rows.append((tag, d1, s1, d2, s2, p1, p2))
                shutil.rmtree(data)
    print(f"image big = {args.layers} x {args.layer_mib} MiB layers; small = {args.small} x 4 KiB layers")
    print("| image | dgxie sync | skopeo copy | ratio | dgxie no-op | skopeo no-op | "
          "pull from dgxie | pull from docker-registry | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tag, d1, s1, d2, s2, p1, p2 in rows:
        print(f"| {tag} | {d1:.2f} s | {s1:.2f} s | {s1 / d1:.2f}x | {d2:.2f} s | {s2:.2f} s | "
              f"{p1:.2f} s | {p2:.2f} s | {p2 / p1:.2f}x |")


if __name__ == "__main__":
    main()
