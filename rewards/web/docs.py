"""The API description for people: Swagger UI at /docs and ReDoc at /redoc, served with their assets from the
package (fastapi-offline ships them), so a command center without internet access still reads them."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/docs"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js
ICON_URL = "/static/web/icon.svg"
# the docs pages load nothing from outside the service, and say so: the browser refuses to even try (ReDoc would
# fetch its maker's logo from a CDN; Swagger UI a validator badge)
OFFLINE_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",  # the pages' own inline start-up script
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SWAGGER_PARAMETERS = {
    "validatorUrl": None,  # Swagger UI would fetch a badge from validator.swagger.io for a non-local spec
    "docExpansion": "list",
    "defaultModelsExpandDepth": 0,
    "tryItOutEnabled": False,
}


def install(app: FastAPI) -> None:
    """Serve /docs, /docs/oauth2-redirect and /redoc from packaged assets (create the app with docs_url=None)."""
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS_URL, StaticFiles(directory=str(assets)), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return offline(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} · API 文档",
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=ICON_URL,
                oauth2_redirect_url=redirect_url,
                swagger_ui_parameters=SWAGGER_PARAMETERS,
            )
        )

    @app.get(redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return offline(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return offline(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} · API 文档",
                redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=ICON_URL,
                with_google_fonts=False,
            )
        )


def offline(page: HTMLResponse) -> HTMLResponse:
    """A docs page with the policy that keeps it to the service's own assets."""
    page.headers["Content-Security-Policy"] = OFFLINE_CSP
    return page
