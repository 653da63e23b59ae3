"""/docs: Swagger UI for /openapi.json, from the Swagger UI files shipped in dgxie/web/static/swagger/
(npm `swagger-ui-dist`, Apache-2.0, LICENSE and NOTICE beside them): nothing from a CDN, no web
fonts, no online validator. ReDoc is not served (it would need its own bundle)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse

router = APIRouter(include_in_schema=False)
STATIC = "/ui/static"


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="dgxie API",
                               swagger_js_url=f"{STATIC}/swagger/swagger-ui-bundle.js",
                               swagger_css_url=f"{STATIC}/swagger/swagger-ui.css",
                               swagger_favicon_url=f"{STATIC}/favicon.svg",
                               swagger_ui_parameters={"validatorUrl": None})


@router.get("/")
def home() -> RedirectResponse:
    """The dashboard is the home page."""
    return RedirectResponse("/ui/", status_code=307)
