"""``/docs`` and ``/redoc``: the API's reference pages, with nothing fetched from the internet.

FastAPI's own pages load Swagger UI and ReDoc from a CDN and are blank on an operations
centre's closed network. These load the same programs from the npm packages the project
installs (``swagger-ui-dist``, ``redoc``), served from ``/vendor/`` beside the viewer's
libraries (:mod:`api.routes.viewer`). Like ``/openapi.json`` they hold no city data and need
no key; "Authorize" in Swagger UI takes one for the calls made from the page.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

SWAGGER_UI = "/vendor/swagger-ui-dist"
REDOC = "/vendor/redoc/bundles/redoc.standalone.js"
FAVICON = f"{SWAGGER_UI}/favicon-32x32.png"
#: What the pages may load: this server only. ReDoc's sidebar asks a CDN for the Redocly
#: logo whatever its options; the policy stops that (and anything like it) in the browser.
CONTENT_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",  # the pages' inline start-up scripts
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",  # ReDoc's search index
        "connect-src 'self'",
    )
)


def mount_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) for ``app.openapi_url``; build
    ``app`` with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not there."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _local(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} · API",
                swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
                swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
                swagger_favicon_url=FAVICON,
                # no badge from the public validator: the page asks nothing of the internet
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _local(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} · API",
                redoc_js_url=REDOC,
                redoc_favicon_url=FAVICON,
                with_google_fonts=False,
            )
        )


def _local(page: HTMLResponse) -> HTMLResponse:
    """``page`` allowed to load from this server only."""
    page.headers["Content-Security-Policy"] = CONTENT_POLICY
    return page
