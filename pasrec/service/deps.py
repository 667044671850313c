"""FastAPI dependencies: the service context and scope-checked authentication."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from pasrec.service.auth import Principal
from pasrec.service.context import ServiceContext
from pasrec.service.errors import ApiError
from pasrec.service.settings import Scope

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key.")
_ANONYMOUS = Principal("anonymous (auth disabled)", frozenset({"ingest", "read", "admin"}))


def get_ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


Ctx = Annotated[ServiceContext, Depends(get_ctx)]


def require(scope: Scope) -> Callable[..., Principal]:
    def check(
        ctx: Ctx,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> Principal:
        if not ctx.settings.auth_enabled:
            return _ANONYMOUS
        key = bearer.credentials if bearer is not None else header
        challenge = {"WWW-Authenticate": "Bearer"}
        if not key:
            raise ApiError(
                401,
                "unauthorized",
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                headers=challenge,
            )
        principal = ctx.auth.authenticate(key)
        if principal is None:
            raise ApiError(401, "unauthorized", "invalid or revoked API key", headers=challenge)
        if scope not in principal.scopes:
            held = ", ".join(sorted(principal.scopes))
            raise ApiError(
                403,
                "forbidden",
                f"API key {principal.name!r} lacks the {scope!r} scope (it has: {held})",
            )
        return principal

    return check
