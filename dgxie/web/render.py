"""The dashboard's one Jinja2 environment (templates shipped in the package, autoescaped) and
the answers pages give: a page, a redirect."""

from __future__ import annotations

from functools import cache
from typing import Any

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


def page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A rendered template with the dashboard's security headers (no inline script is allowed)."""
    html = environment().get_template(name).render(**values)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def redirect(url: str) -> RedirectResponse:
    """303 See Other: after a form POST the browser GETs `url` (a reload does not resubmit)."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
