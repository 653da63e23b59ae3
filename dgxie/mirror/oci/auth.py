"""Registry authentication, pure parts: `WWW-Authenticate` challenges (RFC 7235 section 4.1) and
NGC-style credentials, plus the `Link` header of paginated tag lists (RFC 8288).

The Docker/OCI token flow (distribution "Token Authentication Specification"): a 401 carries
`WWW-Authenticate: Bearer realm="...",service="...",scope="..."`; the client GETs the realm with
`service` and `scope` (Basic credentials when it has some) and retries with the returned token.
NGC (nvcr.io) uses user `$oauthtoken` and an API key as the password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dgxie.errors import Invalid

_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer" or "basic"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge:
    """Parse one `WWW-Authenticate` value such as `Bearer realm="https://a/token",service="a"`."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            break
        value = m.group(2) if m.group(2) is not None else (m.group(3) or "")
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    return Challenge(scheme=scheme.lower(), params=params)


def next_link(header: str | None) -> str | None:
    """The `rel="next"` target of a `Link` header (`<url>; rel="next"`), or None."""
    if not header:
        return None
    for part in header.split(","):
        m = re.match(r'\s*<([^>]*)>\s*;(.*)', part)
        if m and re.search(r'rel\s*=\s*"?next"?', m.group(2)):
            return m.group(1)
    return None


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(username={self.username!r}, password=***)"


def load_credentials(username: str | None, password_file: Path | None) -> Credentials | None:
    """Credentials from a user name and a file holding the password or API key (first line).

    NGC: `username: $oauthtoken`, the file holds the NGC API key.
    """
    if username is None and password_file is None:
        return None
    if username is None or password_file is None:
        raise Invalid("registry credentials need both username and password_file")
    try:
        text = password_file.read_text()
    except OSError as exc:
        raise Invalid(f"password_file {password_file}: {exc.strerror}") from None
    secret = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not secret:
        raise Invalid(f"password_file {password_file} is empty")
    return Credentials(username=username, password=secret)
