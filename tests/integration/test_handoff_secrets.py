"""Secrets: set/list/delete through the CLI and API, names only, never a value in events or logs."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from dgxie import db
from dgxie.models import Event, Secret

VALUE = "s3cr3t-JOIN-token.0123456789abcdef"


def all_event_text(ctx) -> str:
    with db.session_scope(ctx.sessions) as s:
        return "\n".join(f"{e.reason} {json.dumps(e.data)}" for e in s.scalars(select(Event)))


def test_cli_secret_set_list_delete(ctx, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    f = tmp_path / "token"
    f.write_text(VALUE + "\n")
    r = cli("secret", "set", "k8s-join-token", "--from-file", str(f), "--role", "k8s-worker")
    assert r.code == 0, r.err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"munge-base64==\n")))
    assert cli("secret", "set", "munge-key", "--value-stdin").code == 0
    r = cli("secret", "list", "--json")
    rows = json.loads(r.out)
    assert [(x["name"], x["roles"]) for x in rows] == [("k8s-join-token", ["k8s-worker"]), ("munge-key", [])]
    assert VALUE not in r.out
    with db.session_scope(ctx.sessions) as s:
        row = s.scalar(select(Secret).where(Secret.name == "k8s-join-token"))
        assert row is not None and VALUE.encode() not in row.value_enc and ctx.site.box.open(row.value_enc) == VALUE
    # bad input: one clear line, exit 1, nothing stored
    for args in (("secret", "set", "x"), ("secret", "set", "x", "--from-file", str(f), "--value-stdin"),
                 ("secret", "set", "Bad Name", "--from-file", str(f)),
                 ("secret", "set", "x", "--from-file", str(f), "--role", "nosuch"),
                 ("secret", "set", "x", "--from-file", str(tmp_path / "missing")),
                 ("secret", "delete", "nosuch")):
        r = cli(*args)
        assert r.code == 1 and r.err.startswith("dgxie: error: ") and len(r.err.splitlines()) == 1, (args, r.err)
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00binary")
    assert "base64" in cli("secret", "set", "x", "--from-file", str(tmp_path / "bin")).err
    assert cli("secret", "delete", "munge-key").code == 0
    assert [x["name"] for x in json.loads(cli("secret", "list", "--json").out)] == ["k8s-join-token"]
    assert VALUE not in all_event_text(ctx) and VALUE not in caplog.text


def test_api_secrets_are_admin_only_and_write_only(ctx, client, auth) -> None:
    r = client.put("/api/v1/secrets/k8s-join-token", json={"value": VALUE}, headers=auth("admin"))
    assert r.status_code == 200, r.text
    assert VALUE not in r.text and r.json()["name"] == "k8s-join-token"
    assert client.put("/api/v1/secrets/x", json={"value": VALUE}, headers=auth("operator")).status_code == 403
    assert client.get("/api/v1/secrets", headers=auth("viewer")).status_code == 403
    listed = client.get("/api/v1/secrets", headers=auth("admin"))
    assert [x["name"] for x in listed.json()] == ["k8s-join-token"] and VALUE not in listed.text
    assert client.put("/api/v1/secrets/BAD%20NAME", json={"value": "v"}, headers=auth("admin")).status_code == 422
    assert client.put("/api/v1/secrets/x", json={"value": ""}, headers=auth("admin")).status_code == 422
    assert client.put("/api/v1/secrets/x", json={"value": "v", "roles": ["nosuch"]},
                      headers=auth("admin")).status_code == 422
    assert client.delete("/api/v1/secrets/k8s-join-token", headers=auth("admin")).status_code == 204
    assert client.delete("/api/v1/secrets/k8s-join-token", headers=auth("admin")).status_code == 404
    assert VALUE not in all_event_text(ctx)
