"""How the Redfish action client authenticates: a session when the BMC gives a token, else basic.

`login(client, endpoint)` POSTs the credentials to the session collection (DSP0266 13.3.4: the
root's `Links.Sessions`, else the fixed `/redfish/v1/SessionService/Sessions`). A 2xx answer with
an `X-Auth-Token` header makes the client send that token from then on. Any other answer falls
back to HTTP basic auth on every request:

- a 2xx without a token (sushy-static serving the DGX H100 capture answers every POST with 204
  and no body),
- 404/405/501 (no SessionService: the update test peer),
- 401/403 (sessions refused, or sushy-emulator, which asks for basic auth on the login POST;
  basic auth is tried, and a 401 to it is `BmcAuthError`),
- other 4xx/5xx errors except 503, which is `BmcTimeout` (busy, retried by the caller).

Basic auth is checked once with a GET of the session collection (DSP0266: it needs
authentication), so wrong credentials fail here, as one `BmcAuthError` line, not at the action.
This module drives the `redfish` library's low-level request only: its `login()` warns on the
terminal and fails with a bare KeyError on a 2xx with no body and no Location header, which is
exactly what the DGX capture gives. The session is never logged out (see `dgxie.bmc.redfish`).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any, Literal

from dgxie.bmc.base import BmcAuthError, BmcTimeout, Endpoint

SESSIONS = "/redfish/v1/SessionService/Sessions"
log = logging.getLogger("dgxie.bmc")


def login(client: Any, endpoint: Endpoint) -> Literal["session", "basic"]:
    """Authenticate `client` (a `redfish.redfish_client` made without credentials) for `endpoint`;
    returns how. Raises `BmcAuthError` (credentials rejected) or `BmcTimeout` (503)."""
    base = endpoint.base
    uri = _sessions_uri(client, base)
    body = {"UserName": endpoint.username, "Password": endpoint.password or ""}
    r = client._rest_request(uri, method="POST", body=body, allow_redirects=False)
    if r.status == 503:
        raise BmcTimeout(f"{base}{uri}: session login: HTTP 503 (busy)")
    text = r.text or ""
    if "PasswordChangeRequired" in text:
        raise BmcAuthError(f"{base}: the BMC requires a new password for user {endpoint.username} "
                           "before it accepts requests (Base.PasswordChangeRequired); change it on the BMC")
    token = r.getheader("x-auth-token") if r.status < 300 else None
    if token:
        client.set_session_key(token)
        return "session"
    log.debug("%s: session login answered HTTP %s without a token; using HTTP basic auth", base, r.status)
    key = base64.b64encode(f"{endpoint.username}:{endpoint.password or ''}".encode()).decode()
    client.set_authorization_key(f"Basic {key}")
    check = client._rest_request(uri)
    if check.status in (401, 403):
        raise BmcAuthError(f"{base}: credentials rejected (session login HTTP {r.status}, "
                           f"basic auth HTTP {check.status})")
    if check.status == 503:
        raise BmcTimeout(f"{base}{uri}: HTTP 503 (busy)")
    return "basic"


def _sessions_uri(client: Any, base: str) -> str:
    """The root's `Links.Sessions`, or the fixed URI when the root does not say (or needs a login)."""
    r = client._rest_request("/redfish/v1")
    if r.status == 503:
        raise BmcTimeout(f"{base}/redfish/v1: HTTP 503 (busy)")
    try:
        root = json.loads(r.text or "{}") if r.status == 200 else {}
        uri = ((root.get("Links") or {}).get("Sessions") or {}).get("@odata.id")
    except (ValueError, AttributeError):
        uri = None
    return uri if isinstance(uri, str) and uri.startswith("/redfish/") else SESSIONS
