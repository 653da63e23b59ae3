"""The dashboard's one Jinja2 environment (templates shipped in the package, autoescaped) and
the answers pages give: a page, a redirect."""

from __future__ import annotations

import base64
import contextlib
import json
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
           "X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                      "form-action 'self'; base-uri 'none'"}


@cache
def environment() -> Environment:
    return Environment(loader=PackageLoader("dgxie.web", "templates"), autoescape=select_autoescape(["html"]),
                       trim_blocks=True, lstrip_blocks=True)


FLASH = "dgxie_flash"


def page(name: str, status: int = 200, request: Request | None = None, **values: Any) -> HTMLResponse:
    """A rendered template with the dashboard's security headers (no inline script is allowed).
    With `request`, the flash message a redirect left (`redirect(..., flash=)`) is shown once."""
    if request is not None and (raw := request.cookies.get(FLASH)):
        with contextlib.suppress(ValueError, TypeError):  # binascii.Error is a ValueError
            values["message"], values["error"] = json.loads(base64.urlsafe_b64decode(raw.encode()))
    html = environment().get_template(name).render(**values)
    response = HTMLResponse(html, status_code=status, headers=HEADERS)
    if request is not None and FLASH in request.cookies:
        response.delete_cookie(FLASH, path="/ui", httponly=True, samesite="strict")
    return response


def redirect(url: str, flash: str | None = None, error: bool = False) -> RedirectResponse:
    """303 See Other: after a form POST the browser GETs `url` (a reload does not resubmit). A
    `flash` message rides in a short-lived cookie, not in the URL (no link can forge one)."""
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    if flash is not None:
        value = base64.urlsafe_b64encode(json.dumps([flash[:300], error]).encode()).decode()
        response.set_cookie(FLASH, value, max_age=60, path="/ui", httponly=True, samesite="strict")
    return response
