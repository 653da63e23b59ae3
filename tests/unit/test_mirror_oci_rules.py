"""Pure parts of the OCI mirror: auth challenges, Link pagination, tag rules, platforms, the
mirror's config keys and the snapshot document."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from dgxie.config import load
from dgxie.errors import ConfigError, Invalid
from dgxie.mirror.oci.auth import load_credentials, next_link, parse_challenge
from dgxie.mirror.oci.rules import filter_tags, natural_key, newest_first, parse_created, platform_matches, select_tags
from dgxie.mirror.oci.snapshot import OciSnapshot, RepoSnapshot
from dgxie.sections import OciMirrorConfig

D = "sha256:" + "a" * 64
E = "sha256:" + "b" * 64


def test_parse_bearer_challenge() -> None:
    ch = parse_challenge('Bearer realm="https://nvcr.io/proxy_auth",service="ngc",'
                         'scope="repository:nvidia/pytorch:pull,push"')
    assert ch.scheme == "bearer"
    assert ch.params == {"realm": "https://nvcr.io/proxy_auth", "service": "ngc",
                         "scope": "repository:nvidia/pytorch:pull,push"}
    assert parse_challenge('Basic realm="Registry Realm"') .scheme == "basic"
    assert parse_challenge('bearer realm=https://a/t, service=a').params == {"realm": "https://a/t", "service": "a"}
    assert parse_challenge('Bearer realm="a\\"b"').params["realm"] == 'a"b'


def test_next_link() -> None:
    assert next_link('</v2/x/tags/list?n=2&last=b>; rel="next"') == "/v2/x/tags/list?n=2&last=b"
    assert next_link('<http://a/p>; rel="prev", <http://a/n>; rel=next') == "http://a/n"
    assert next_link(None) is None and next_link('<http://a/p>; rel="prev"') is None


def test_natural_order_and_filters() -> None:
    tags = ["24.10-py3", "24.9-py3", "24.01-py3", "23.12-py3", "24.03-igpu", "latest"]
    # text before numbers: a moving tag like `latest` ranks oldest in the fallback order
    assert sorted(tags, key=natural_key) == ["latest", "23.12-py3", "24.01-py3", "24.03-igpu", "24.9-py3", "24.10-py3"]
    assert filter_tags(tags, [r"^24\."], ["igpu$"]) == ["24.01-py3", "24.9-py3", "24.10-py3"]
    assert filter_tags(tags, [], []) == sorted(tags, key=natural_key)
    with pytest.raises(Invalid, match=r"repository nvidia/pytorch: no tag matches include \['\^25'\]"):
        select_tags("nvidia/pytorch", tags, ["^25"], [])


def test_newest_first_by_created_then_tag() -> None:
    t = lambda s: datetime.fromisoformat(s).replace(tzinfo=UTC)  # noqa: E731
    order = newest_first({"24.01": t("2024-05-01"), "24.02": t("2024-02-01"), "24.03": t("2024-03-01"),
                          "24.9": None, "24.10": None, "24.04": t("2024-03-01")})
    assert order == ["24.01", "24.04", "24.03", "24.02", "24.10", "24.9"]


def test_parse_created() -> None:
    assert parse_created("2024-02-10T08:00:00.123456789Z") == datetime(2024, 2, 10, 8, 0, 0, 123456, tzinfo=UTC)
    assert parse_created("2024-02-10T08:00:00Z") is not None
    assert parse_created("2024-02-10T08:00:00") is None  # no zone: not comparable
    assert parse_created("yesterday") is None and parse_created(None) is None


def test_platforms() -> None:
    amd = {"os": "linux", "architecture": "amd64"}
    arm = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert platform_matches(amd, []) and platform_matches(None, [])
    assert platform_matches(amd, ["linux/amd64"]) and not platform_matches(arm, ["linux/amd64"])
    assert platform_matches(arm, ["linux/arm64"]) and platform_matches(arm, ["linux/arm64/v8"])
    assert not platform_matches(arm, ["linux/arm64/v7"])
    assert not platform_matches({"os": "unknown", "architecture": "unknown"}, ["linux/amd64"])


def test_config_keys(tmp_path: Path) -> None:
    cfg = tmp_path / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump({"mirrors": [
        {"name": "ngc", "kind": "oci", "registry": "nvcr.io", "username": "$oauthtoken", "password_file": "/k",
         "repositories": ["nvidia/pytorch"], "tags": {"include": [r"^24\."], "keep_newest": 3},
         "platforms": ["linux/amd64"]}]}))
    spec = load(cfg).mirrors[0]
    assert isinstance(spec, OciMirrorConfig) and spec.registry == "https://nvcr.io"
    assert spec.upstream_host == "nvcr.io" and spec.tags.keep_newest == 3 and spec.keep_snapshots == 3
    cfg.write_text(yaml.safe_dump({"mirrors": [
        {"name": "ngc", "kind": "oci", "registry": "ftp://x", "repositories": ["Bad Name"],
         "tags": {"include": ["("], "keep_newest": 0}, "platforms": ["amd64"], "typo": 1}]}))
    with pytest.raises(ConfigError) as exc:
        load(cfg)
    assert exc.value.detail.splitlines() == [
        "mirrors[0].registry: 'ftp://x' is not a registry URL like https://nvcr.io",
        "mirrors[0].repositories: 'Bad Name' is not a repository name like nvidia/pytorch",
        "mirrors[0].tags.include: '(' is not a regular expression (missing ), unterminated subpattern at position 0)",
        "mirrors[0].tags.keep_newest: Input should be greater than or equal to 1",
        "mirrors[0].platforms: 'amd64' is not a platform like linux/amd64 or linux/arm64/v8",
        "mirrors[0].typo: Extra inputs are not permitted"]


def test_credentials(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("nvapi-secret\n")
    creds = load_credentials("$oauthtoken", tmp_path / "key")
    assert creds is not None and creds.password == "nvapi-secret" and "nvapi" not in repr(creds)
    assert load_credentials(None, None) is None
    with pytest.raises(Invalid, match="both"):
        load_credentials("$oauthtoken", None)
    with pytest.raises(Invalid, match="No such file"):
        load_credentials("$oauthtoken", tmp_path / "missing")


def test_snapshot_round_trip() -> None:
    snap = OciSnapshot(name="ngc", registry="https://nvcr.io", repositories={
        "nvidia/pytorch": RepoSnapshot(tags={"24.01": D}, manifests={D: ("application/vnd.oci.image.index.v1+json", 10)},
                                       blobs={E: 5})})
    again = OciSnapshot.from_manifest(snap.to_manifest())
    assert again == snap and again.blob_digests() == {D, E} and again.stats() == (2, 15)
    doc = snap.to_manifest()
    doc["repositories"]["nvidia/pytorch"]["tags"]["bad"] = E
    with pytest.raises(Invalid, match="unlisted manifest"):
        OciSnapshot.from_manifest(doc)
    with pytest.raises(Invalid):
        OciSnapshot.from_manifest({"format": "dgxie.oci-snapshot/1"})
