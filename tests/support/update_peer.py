"""A small Redfish update peer for the firmware update tests.

No emulator here implements updates (sushy-static is read-only, sushy-emulator has no
UpdateService), so this is a fake BMC of our own that follows the DMTF schemas: ServiceRoot,
ComputerSystem, UpdateService (SimpleUpdate with ImageURI, MultipartHttpPushUri with
UpdateParameters + UpdateFile), TaskService/Tasks (TaskState New -> Running -> Completed or
Exception, PercentComplete, Messages), and a FirmwareInventory whose versions change when a task
completes. It really downloads the ImageURI over HTTP. The image is a text file `VERSION=x.y.z`;
an image containing `FAIL` makes the task end in Exception.
"""

from __future__ import annotations

import email.parser
import email.policy
import http.server
import json
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

R = "/redfish/v1"


class Peer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, versions: dict[str, str], fail: bool = False, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), Handler)
        self.fail = fail
        self.versions = dict(versions)
        self.tasks: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, tuple[list[str], str | None, str]] = {}
        self.lock = threading.Lock()
        self.fetched: list[str] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client killed mid-request: not news
            super().handle_error(request, client_address)

    def docs(self, path: str) -> dict[str, Any] | None:
        fw = f"{R}/UpdateService/FirmwareInventory"
        if path == R:
            return {"@odata.id": R, "Id": "RootService", "Systems": {"@odata.id": f"{R}/Systems"},
                    "UpdateService": {"@odata.id": f"{R}/UpdateService"}, "Tasks": {"@odata.id": f"{R}/TaskService"}}
        if path == f"{R}/Systems":
            return {"@odata.id": path, "Members": [{"@odata.id": f"{R}/Systems/1"}], "Members@odata.count": 1}
        if path == f"{R}/Systems/1":
            return {"@odata.id": path, "Id": "1", "Model": "UpdPeer", "Manufacturer": "dgxie-tests", "PowerState": "On"}
        if path == f"{R}/UpdateService":
            return {"@odata.id": path, "Id": "UpdateService", "FirmwareInventory": {"@odata.id": fw},
                    "MultipartHttpPushUri": f"{R}/UpdateService/upload",
                    "Actions": {"#UpdateService.SimpleUpdate": {
                        "target": f"{R}/UpdateService/Actions/UpdateService.SimpleUpdate"}}}
        if path == fw:
            return {"@odata.id": fw, "Members": [{"@odata.id": f"{fw}/{c}"} for c in sorted(self.versions)],
                    "Members@odata.count": len(self.versions)}
        if path.startswith(fw + "/") and path.rsplit("/", 1)[1] in self.versions:
            cid = path.rsplit("/", 1)[1]
            return {"@odata.id": path, "Id": cid, "Version": self.versions[cid], "Updateable": True}
        if path.startswith(f"{R}/TaskService/Tasks/"):
            return self.advance(path.rsplit("/", 1)[1])
        return None

    def new_task(self, targets: list[str], image_uri: str | None, content: str) -> dict[str, Any]:
        with self.lock:
            tid = str(len(self.tasks) + 1)
            self.tasks[tid] = {"@odata.id": f"{R}/TaskService/Tasks/{tid}", "@odata.type": "#Task.v1_7_0.Task",
                               "Id": tid, "TaskState": "New", "PercentComplete": 0, "Messages": []}
            self.pending[tid] = (targets, image_uri, content)
            return dict(self.tasks[tid])

    def advance(self, tid: str) -> dict[str, Any] | None:
        """Each GET moves the task one step: New -> Running -> Completed/Exception."""
        with self.lock:
            task = self.tasks.get(tid)
            if task is None:
                return None
            if task["TaskState"] == "New":
                task.update(TaskState="Running", PercentComplete=50)
            elif task["TaskState"] == "Running":
                targets, uri, content = self.pending.pop(tid)
                if uri is not None:
                    with urllib.request.urlopen(uri, timeout=10) as r:
                        content = r.read().decode()
                    self.fetched.append(uri)
                if self.fail or "FAIL" in content or "VERSION=" not in content:
                    task.update(TaskState="Exception", PercentComplete=50,
                                Messages=[{"MessageId": "Update.1.0.ApplyFailed", "Message": "image rejected"}])
                else:
                    version = content.split("VERSION=", 1)[1].split()[0]
                    for t in targets or ["BMC"]:
                        self.versions[t.rstrip("/").rsplit("/", 1)[-1]] = version
                    task.update(TaskState="Completed", PercentComplete=100,
                                Messages=[{"MessageId": "Update.1.0.UpdateSuccessful", "Message": "updated"}])
            return dict(task)


class Handler(http.server.BaseHTTPRequestHandler):
    server: Peer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        doc = self.server.docs(self.path.split("?", 1)[0].rstrip("/"))
        self._json(200, doc) if doc is not None else self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        path = self.path.rstrip("/")
        if path == f"{R}/SessionService/Sessions":
            return self._json(405, {"error": {"message": "no sessions here; use basic auth"}})
        if path == f"{R}/UpdateService/Actions/UpdateService.SimpleUpdate":
            body = json.loads(raw or b"{}")
            if not str(body.get("ImageURI", "")).startswith("http"):
                return self._json(400, {"error": {"message": "ImageURI required"}})
            task = self.server.new_task(body.get("Targets") or [], body["ImageURI"], "")
        elif path == f"{R}/UpdateService/upload":
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + raw)
            parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                     for p in msg.iter_parts()}
            if "UpdateParameters" not in parts or "UpdateFile" not in parts:
                return self._json(400, {"error": {"message": "UpdateParameters and UpdateFile required"}})
            params = json.loads(parts["UpdateParameters"])
            task = self.server.new_task(params.get("Targets") or [], None, parts["UpdateFile"].decode())
        else:
            return self._json(404, {"error": {"message": "not found"}})
        self._json(202, task, {"Location": task["@odata.id"]})


@contextmanager
def update_peer(versions: dict[str, str], fail: bool = False, host: str = "127.0.0.1") -> Iterator[tuple[str, Peer]]:
    srv = Peer(versions, fail, host)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://{host}:{srv.server_address[1]}", srv
    finally:
        srv.shutdown()
        srv.server_close()
