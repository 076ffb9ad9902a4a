"""One aiohttp middleware for every route: the token rule, and JSON for every error.

Bad input must never surface as a 500: handlers raise `BadRequest` (400) or `Unavailable`
(503); aiohttp's own 404/405 become JSON; anything unexpected is logged and answered 500 JSON
without details. The dashboard's pages and their static assets hold no data and stay public so a
browser can load them; the data they fetch needs the token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from app.errors import ClickstreamError
from app.faust_app import ClickstreamApp

logger = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/", "/products/")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


class WebRequestError(ClickstreamError):
    """A request the web API answers with an error status and a JSON body."""

    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class BadRequest(WebRequestError):
    """A parameter is missing, malformed or out of range."""

    status = 400


class NotFound(WebRequestError):
    """The thing asked for is not known here (an unknown product, a missing report)."""

    status = 404


class Unavailable(WebRequestError):
    """The answer cannot be given right now (rebalance, recovery, a worker unreachable)."""

    status = 503


def json_error(status: int, message: str, **details: Any) -> web.Response:
    return web.json_response({"error": message, "status": status, **details}, status=status)


def presented_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query.get("token")


def authorized(request: web.Request, web_token: SecretStr | None) -> bool:
    """The request may pass: no WEB_TOKEN is set, the path is public, or it carries the token."""
    if web_token is None:
        return True
    if request.method in ("GET", "HEAD") and (
        request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES)
    ):
        return True
    given = presented_token(request)
    expected = web_token.get_secret_value()
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """`handler`'s response, or the JSON error that stands for what it raised."""
    try:
        return await handler(request)
    except WebRequestError as exc:
        return json_error(exc.status, str(exc), **exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = "no such route" if exc.status == 404 else exc.reason
        return json_error(exc.status, message, path=request.path)
    except (TimeoutError, aiohttp.ClientError) as exc:
        logger.warning("another worker did not answer %s: %s", request.path, exc)
        return json_error(503, "another worker did not answer; retry shortly")
    except Exception:
        logger.exception("web request %s %s failed", request.method, request.path)
        return json_error(500, "internal error; see the worker log")


def guard_for(web_token: SecretStr | None) -> Middleware:
    """The middleware: 401 without a valid token (when WEB_TOKEN is set), JSON for errors."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not authorized(request, web_token):
            message = "a valid token is required: 'Authorization: Bearer <token>'"
            response = json_error(401, message)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        return await answer_errors(request, handler)

    return cast(Middleware, guard)


def register(app: ClickstreamApp) -> None:
    """Put the guard in front of every route of the app's web server."""
    cast(Any, app.web).web_app.middlewares.append(guard_for(app.settings.web_token))
