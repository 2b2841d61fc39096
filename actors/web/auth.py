"""Access control shared by every blueprint: bearer tokens, the CIDR allow-list, JSON errors.

- `json_error(status, message)`: the one shape of error answers, `{"error": "..."}`.
- `token_matches(authorization_header, token)`: constant-time bearer token comparison.
- `require_token(token)`: decorator for Quart views; 401 (with `WWW-Authenticate: Bearer`) unless
  the request carries `Authorization: Bearer <token>`. An empty token means no token is
  configured: the view is open (the default configuration runs on a laptop).
- `AllowList(cidrs)`: `allows(address)`; an empty list allows everyone.
- `install_allow_list(app, allow_list, prefixes)`: a before-request hook answering 403 for
  clients outside the list on paths under `prefixes` (by default `/api/v1/`).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from pydantic import SecretStr
from quart import Quart, Response, jsonify, request

__all__ = [
    "AllowList",
    "install_allow_list",
    "json_error",
    "require_token",
    "secret_value",
    "token_matches",
]

P = ParamSpec("P")
R = TypeVar("R")


def secret_value(token: SecretStr | str | None) -> str:
    """The plain value of a token given as a `SecretStr`, a string or None ("" when unset)."""
    if token is None:
        return ""
    if isinstance(token, SecretStr):
        return token.get_secret_value()
    return token


def json_error(status: int, message: str, **extra: Any) -> Response:
    """A JSON error answer `{"error": message, ...extra}` with `status`."""
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


def token_matches(authorization: str | None, token: str) -> bool:
    """True when `authorization` is "Bearer <token>" (constant-time); empty token: always."""
    if not token:
        return True
    if not authorization:
        return False
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def _unauthorized() -> Response:
    response = json_error(401, "missing or invalid bearer token")
    response.headers["WWW-Authenticate"] = 'Bearer realm="blipee-monitor"'
    return response


def require_token(
    token: SecretStr | str | None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R | Response]]]:
    """Decorate a Quart view so it answers 401 unless the request carries the bearer token."""
    expected = secret_value(token)

    def decorate(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | Response]]:
        @functools.wraps(view)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            if not token_matches(request.headers.get("Authorization"), expected):
                return _unauthorized()
            return await view(*args, **kwargs)

        return wrapper

    return decorate


class AllowList:
    """Client addresses allowed by a list of CIDR networks (empty list: everyone)."""

    def __init__(self, networks: Sequence[str] = ()) -> None:
        """Raises ValueError for an entry that is not a network or an address."""
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def allows(self, address: str | None) -> bool:
        """True when `address` is inside one of the networks (or the list is empty)."""
        if not self._networks:
            return True
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self._networks)


def install_allow_list(
    app: Quart, allow_list: AllowList, prefixes: Sequence[str] = ("/api/v1/",)
) -> None:
    """Answer 403 to clients outside `allow_list` on paths starting with any of `prefixes`."""
    if not allow_list:
        return
    wanted = tuple(prefixes)

    @app.before_request
    async def _guard() -> Response | None:
        if request.path.startswith(wanted) and not allow_list.allows(request.remote_addr):
            return json_error(403, "client address not allowed")
        return None
