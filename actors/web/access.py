"""The access guard: who may use which route, decided in one place.

Every route declares the scope it needs with `requires(scope)` (a view without one is refused,
500); `AccessGuard.install(app)` decides every request of the API app before its view runs, the
probe fast path asks the same guard about `/api/health`, and the /metrics listener asks it about
`/metrics`. The decision itself is `AccessPolicy.decide`, pure (no I/O, no event loop):

- `public`: everyone (`/api/health/live`, `/api/health/ready`; not even `allow_from`).
- `read`: clients inside `allow_from`; with `read_requires_token`, only with a token holding
  `read`.
- `read+token`: clients inside `allow_from` with a token holding `read`, always (the audit log).
- `metrics`: clients inside `allow_from`, with `metrics_token` when it is set.
- `events:write`, `silences:write`, `alerts:test`, `config:reload`: clients inside `allow_from`,
  without a foreign `Origin`, without a form or `text/plain` body, with a token holding the scope.

Tokens are the `[security] api_token` (name "api_token", every scope) and each
`[[security.tokens]]` entry (its name, its scopes). They are read from the `Authorization: Bearer`
header only, never from a cookie or the query string, and compared in constant time (SHA-256
digests, every token compared). When no token is configured, writes pass from a loopback
listener (the laptop case) and are refused (403, saying how to set a token) when the API listens
on any other address.

Answers: 401 (with `WWW-Authenticate: Bearer`) for a missing or unknown token, 403 for a token
without the scope, an address outside `allow_from`, a foreign `Origin` or writes without any
token configured, 415 for a form or `text/plain` body on a write route, 413 for a body larger
than `max_body_bytes` (the one limit of every route). Every answer is `{"error": "..."}`.

`AccessGuard.configure(security)` swaps the policy at once (a reload): tokens, scopes,
`allow_from`, `read_requires_token`, `metrics_token`, `max_body_bytes` and the failed
authentication limit apply to the next request, without a restart.

Audit (`actors.web.audit`): the guard records each successful silence creation and expiry,
reload and test alert with the token's name and the client's address, and each failed
authentication (a 401: token "none"; a token without the route's scope: its name). An address
with `auth_failures` failed authentications within `auth_failure_window` gets 429 with
`Retry-After` on every route but live and ready until the oldest leaves the window.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from quart import Quart, Response, g, request

from actors.clock import Clock, SystemClock
from actors.store.errors import StoreError
from actors.web.audit import AuditLog, FailureLimiter
from actors.web.responses import json_error

if TYPE_CHECKING:
    from actors.web.config import SecurityConfig

__all__ = [
    "TOKEN_SCOPES",
    "AccessGuard",
    "AccessPolicy",
    "AllowList",
    "Decision",
    "Presented",
    "Scope",
    "listen_is_loopback",
    "required_scope",
    "requires",
    "unprotected_writes",
]


class Scope(StrEnum):
    """What a route needs. The middle five are the scopes a token may hold (`TOKEN_SCOPES`)."""

    PUBLIC = "public"
    READ = "read"
    EVENTS_WRITE = "events:write"
    SILENCES_WRITE = "silences:write"
    ALERTS_TEST = "alerts:test"
    CONFIG_RELOAD = "config:reload"
    METRICS = "metrics"
    READ_WITH_TOKEN = "read+token"


TOKEN_SCOPES: tuple[Scope, ...] = (
    Scope.READ,
    Scope.EVENTS_WRITE,
    Scope.SILENCES_WRITE,
    Scope.ALERTS_TEST,
    Scope.CONFIG_RELOAD,
)
"""The scopes a token may hold, as `[[security.tokens]] scopes` names them."""

_ALL_SCOPES = frozenset(TOKEN_SCOPES)
# Content types a browser sends cross-origin without a preflight (an HTML form, `fetch` with a
# string body): a page the operator visits could post them to the monitor.
_SIMPLE_TYPES = frozenset(
    ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
)
_REALM = 'Bearer realm="blipee-monitor"'
_SCOPE_ATTRIBUTE = "access_scope"

V = TypeVar("V", bound=Callable[..., Any])


def requires(scope: Scope) -> Callable[[V], V]:
    """Declare the scope a view needs (put it under the route decorator); returns the view."""

    def declare(view: V) -> V:
        setattr(view, _SCOPE_ATTRIBUTE, scope)
        return view

    return declare


def required_scope(view: Callable[..., Any]) -> Scope | None:
    """The scope `view` declared with `requires`, or None if it declared none."""
    scope = getattr(view, _SCOPE_ATTRIBUTE, None)
    return scope if isinstance(scope, Scope) else None


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


def listen_is_loopback(listen: str) -> bool:
    """Whether the listen address "host:port" binds a loopback address only (127.0.0.0/8,
    [::1], `localhost`). A name other than `localhost` is not known to be loopback."""
    host = listen.rpartition(":")[0].strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unprotected_writes(security: SecurityConfig, listen: str) -> str | None:
    """The warning (and 403 answer) when no token is configured and the API listens on a
    non-loopback `listen`: write routes are then refused. None when writes are protected (a
    token is set) or only reachable from this host."""
    if security.api_token.get_secret_value() or security.tokens or listen_is_loopback(listen):
        return None
    return (
        f"no API token is configured and the API listens on {listen}, which is not a loopback"
        " address, so write routes (events, silences, test alerts, reload) answer 403: set"
        ' [security] api_token (e.g. api_token = "${BLIPEE_API_TOKEN}" and export'
        " BLIPEE_API_TOKEN=$(openssl rand -hex 32)) or add a [[security.tokens]] entry, or"
        " listen on 127.0.0.1"
    )


@dataclass(frozen=True, slots=True)
class Presented:
    """What a request shows the guard: its address and the few headers that matter."""

    address: str | None = None
    authorization: str | None = None
    origin: str | None = None
    host: str | None = None
    content_type: str | None = None
    scheme: str = "http"

    @classmethod
    def from_headers(
        cls, address: str | None, headers: Mapping[str, str], scheme: str = "http"
    ) -> Presented:
        """From a mapping of lower-case header names."""
        return cls(
            address=address,
            authorization=headers.get("authorization"),
            origin=headers.get("origin"),
            host=headers.get("host"),
            content_type=headers.get("content-type"),
            scheme=scheme,
        )

    @classmethod
    def from_asgi(cls, scope: Mapping[str, Any]) -> Presented:
        """From an ASGI HTTP scope."""
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", ()):
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        client = scope.get("client")
        return cls.from_headers(client[0] if client else None, headers, scope.get("scheme", "http"))


@dataclass(frozen=True, slots=True)
class Decision:
    """The guard's answer: `allowed`, or the status, message and headers of the refusal.
    `token` names the token the request authenticated with (None: none)."""

    allowed: bool
    status: int = 200
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    token: str | None = None

    def asgi(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """(status, headers, body) of the refusal as raw ASGI parts (JSON body)."""
        body = json.dumps({"error": self.message}).encode()
        head = [(b"content-type", b"application/json")]
        head += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        return self.status, head, body


_ALLOWED = Decision(True)


def _deny(status: int, message: str, *headers: tuple[str, str]) -> Decision:
    return Decision(False, status, message, tuple(headers))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True, slots=True)
class _Token:
    name: str
    digest: bytes
    scopes: frozenset[Scope]


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, presented = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return None
    return presented.strip()


def _origin_key(scheme: str, host: str, port: int | None) -> tuple[str, int]:
    default = 443 if scheme == "https" else 80
    return host.lower(), port if port is not None else default


def _parse_origin(text: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return _origin_key(parts.scheme, parts.hostname, port)


class AccessPolicy:
    """One configuration's access rules (immutable; see the module docstring). Pure."""

    __slots__ = (
        "_allow",
        "_metrics",
        "_origins",
        "_read_requires_token",
        "_tokens",
        "_unprotected",
        "max_body_bytes",
    )

    def __init__(
        self,
        *,
        tokens: Iterable[tuple[str, str, Iterable[Scope]]] = (),
        allow_from: Sequence[str] = (),
        read_requires_token: bool = False,
        metrics_token: str = "",
        unprotected: str | None = None,
        origins: Iterable[str] = (),
        max_body_bytes: int = 1_048_576,
    ) -> None:
        """`tokens` are (name, token, scopes); `unprotected` the refusal of writes when no token
        is set (None: writes pass without one); `origins` URLs trusted besides the request's
        own host (e.g. `server.external_url`).

        Raises:
            ValueError: an `allow_from` entry is not a CIDR network.
        """
        self._tokens = tuple(
            _Token(name, _digest(token), frozenset(scopes)) for name, token, scopes in tokens
        )
        self._allow = AllowList(allow_from)
        self._read_requires_token = read_requires_token
        self._metrics = _digest(metrics_token) if metrics_token else None
        self._unprotected = unprotected
        self._origins = frozenset(
            key for key in (_parse_origin(url) for url in origins if url) if key is not None
        )
        self.max_body_bytes = max_body_bytes

    @classmethod
    def from_config(
        cls, security: SecurityConfig, *, listen: str, external_url: str = ""
    ) -> AccessPolicy:
        """The policy of `[security]` for an API listening on `listen`."""
        tokens: list[tuple[str, str, Iterable[Scope]]] = []
        if security.api_token.get_secret_value():
            tokens.append(("api_token", security.api_token.get_secret_value(), _ALL_SCOPES))
        for entry in security.tokens:
            scopes = (Scope(name) for name in entry.scopes)
            tokens.append((entry.name, entry.token.get_secret_value(), scopes))
        return cls(
            tokens=tokens,
            allow_from=security.allow_from,
            read_requires_token=security.read_requires_token,
            metrics_token=security.metrics_token.get_secret_value(),
            unprotected=unprotected_writes(security, listen),
            origins=(external_url,),
            max_body_bytes=security.max_body_bytes,
        )

    def decide(self, scope: Scope, presented: Presented) -> Decision:
        """May `presented` use a route that needs `scope`? See the module docstring."""
        if scope is Scope.PUBLIC:
            return _ALLOWED
        if not self._allow.allows(presented.address):
            return _deny(403, "client address not allowed")
        if scope is Scope.METRICS:
            return self._metrics_token(presented)
        if scope is Scope.READ:
            if not self._read_requires_token:
                return _ALLOWED
            return self._authenticate(scope, presented)
        if scope is Scope.READ_WITH_TOKEN:
            if not self._tokens:
                return _deny(
                    403,
                    "this route needs a token with the read scope, and none is configured:"
                    " set [security] api_token or add a [[security.tokens]] entry with"
                    ' scopes = ["read"]',
                )
            return self._authenticate(Scope.READ, presented)
        refused = self._cross_site(presented)
        if refused is not None:
            return refused
        if not self._tokens:
            if self._unprotected is not None:
                return _deny(403, self._unprotected)
            return _ALLOWED
        return self._authenticate(scope, presented)

    def decide_address(self, presented: Presented) -> Decision:
        """The address rule alone (a path that matches no route: 404/405 for allowed clients)."""
        if self._allow.allows(presented.address):
            return _ALLOWED
        return _deny(403, "client address not allowed")

    def _authenticate(self, scope: Scope, presented: Presented) -> Decision:
        token = self._match(_bearer(presented.authorization))
        if token is None:
            return _deny(401, "missing or invalid bearer token", ("WWW-Authenticate", _REALM))
        if scope not in token.scopes:
            challenge = f'{_REALM}, error="insufficient_scope", scope="{scope}"'
            return Decision(
                False,
                403,
                f"the token '{token.name}' does not have the scope '{scope}' this route needs",
                (("WWW-Authenticate", challenge),),
                token.name,
            )
        return Decision(True, token=token.name)

    def _match(self, presented: str | None) -> _Token | None:
        """The token presented (constant time: every token's digest is compared)."""
        if presented is None:
            return None
        digest = _digest(presented)
        found: _Token | None = None
        for token in self._tokens:
            if hmac.compare_digest(token.digest, digest) and found is None:
                found = token
        return found

    def _metrics_token(self, presented: Presented) -> Decision:
        if self._metrics is None:
            return _ALLOWED
        given = _bearer(presented.authorization)
        if given is not None and hmac.compare_digest(_digest(given), self._metrics):
            return _ALLOWED
        challenge = ("WWW-Authenticate", 'Bearer realm="metrics"')
        return _deny(401, "missing or invalid bearer token", challenge)

    def _cross_site(self, presented: Presented) -> Decision | None:
        """A refusal for what a web page could send from an operator's browser: a foreign
        `Origin`, a form or `text/plain` body."""
        if presented.origin is not None and not self._same_origin(presented):
            shown = presented.origin[:200]
            return _deny(
                403,
                f"cross-origin request refused: Origin {shown} is not this server (write"
                " routes take requests from tools, which send no Origin, or from this origin)",
            )
        media = (presented.content_type or "").split(";", 1)[0].strip().lower()
        if media in _SIMPLE_TYPES:
            return _deny(
                415,
                f"Content-Type {media} is not accepted by write routes: send the body as"
                " application/json",
            )
        return None

    def _same_origin(self, presented: Presented) -> bool:
        origin = _parse_origin(presented.origin or "")
        if origin is None:  # "null" (a sandboxed page, a file), or not a URL
            return False
        if origin in self._origins:
            return True
        if not presented.host:
            return False
        host = _parse_origin(f"{presented.scheme}://{presented.host}")
        if host is None:
            return False
        if ":" in presented.host.rpartition("]")[2]:  # the Host names its port: compare both
            return origin == host
        # No port in Host (a proxy may terminate TLS in front): the names must agree and the
        # Origin use its scheme's default port.
        return origin[0] == host[0] and origin[1] in (80, 443)


class AccessGuard:
    """The access policy of the running configuration, and its binding to the apps.

    Args:
        security: `[security]`.
        listen: the address the API listener binds (`server.listen`); with no token configured,
            writes pass only when it is a loopback address.
        external_url: `server.external_url`, an origin trusted besides the request's own host.
        logger: where refusals of undeclared routes are logged.

    Raises:
        ValueError: an `allow_from` entry is not a CIDR network.
    """

    def __init__(
        self,
        security: SecurityConfig,
        *,
        listen: str,
        external_url: str = "",
        logger: logging.Logger | None = None,
        audit: AuditLog | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._listen = listen
        self._external_url = external_url
        self._log = logger or logging.getLogger("blipee_monitor.web.access")
        self._clock: Clock = clock or SystemClock()
        self.audit = audit or AuditLog(database=None, clock=self._clock, logger=self._log)
        self._apps: list[Quart] = []
        self._policy = AccessPolicy.from_config(security, listen=listen, external_url=external_url)
        self._failures = FailureLimiter(
            limit=security.auth_failures, window=security.auth_failure_window
        )

    @property
    def policy(self) -> AccessPolicy:
        """The policy deciding now."""
        return self._policy

    def configure(self, security: SecurityConfig) -> None:
        """Decide by `security` from the next request on (a reload; no restart needed).

        Raises:
            ValueError: an `allow_from` entry is not a CIDR network (validated config never).
        """
        self._policy = AccessPolicy.from_config(
            security, listen=self._listen, external_url=self._external_url
        )
        self._failures.limit = security.auth_failures
        self._failures.window = security.auth_failure_window
        for app in self._apps:
            app.config["MAX_CONTENT_LENGTH"] = self._policy.max_body_bytes

    def decide(self, scope: Scope, presented: Presented) -> Decision:
        """`AccessPolicy.decide` of the current policy."""
        return self._policy.decide(scope, presented)

    def decide_asgi(self, scope: Scope, asgi_scope: Mapping[str, Any]) -> Decision:
        """The decision for a raw ASGI HTTP request (/metrics)."""
        return self._policy.decide(scope, Presented.from_asgi(asgi_scope))

    async def admit(self, scope: Scope, presented: Presented, route: str) -> Decision:
        """The decision for a request, with the failed-authentication limit (429) and the audit
        of a failure applied; see the module docstring."""
        if scope is Scope.PUBLIC:
            return _ALLOWED
        now = self._clock.now()
        wait = self._failures.retry_after(presented.address, now)
        if wait is not None:
            return _deny(
                429,
                "too many failed authentications from this address; try again later",
                ("Retry-After", str(math.ceil(wait))),
            )
        decision = self._policy.decide(scope, presented)
        failed = decision.status == 401 or (decision.status == 403 and decision.token is not None)
        if failed:
            if decision.status == 401:
                self._failures.failed(presented.address, now)
            await self._record(
                "auth.failed",
                decision.token,
                presented.address,
                target=route,
                detail=decision.message,
            )
        return decision

    async def admit_asgi(self, scope: Scope, asgi_scope: Mapping[str, Any]) -> Decision:
        """`admit` for a raw ASGI HTTP request (the probe fast path)."""
        return await self.admit(scope, Presented.from_asgi(asgi_scope), asgi_scope.get("path", ""))

    async def audit_event(self, action: str, *, token: str, address: str) -> None:
        """Record `action` done outside the API (a reload by signal) in the audit log; a store
        failure is logged, never raised."""
        await self._record(action, token, address)

    async def _record(
        self,
        action: str,
        token: str | None,
        address: str | None,
        *,
        target: str = "",
        detail: str = "",
    ) -> None:
        try:
            await self.audit.record(
                action, token=token, address=address, target=target, detail=detail
            )
        except StoreError as exc:  # logged already as a line; the request still answers
            self._log.error("audit entry %s not stored: %s", action, exc)

    def too_large(self) -> Response:
        """The one 413 answer (needs an application context)."""
        limit = self._policy.max_body_bytes
        return json_error(413, f"request body larger than {limit} bytes (security.max_body_bytes)")

    def install(self, app: Quart) -> None:
        """Decide every request of `app` before its view runs, by the scope the view declared;
        answer 413 for bodies over the limit (by Content-Length first, and as they are read)."""
        self._apps.append(app)
        app.config["MAX_CONTENT_LENGTH"] = self._policy.max_body_bytes

        @app.before_request
        async def _guard() -> Response | None:
            endpoint = request.endpoint
            view = app.view_functions.get(endpoint) if endpoint else None
            presented = Presented(
                address=request.remote_addr,
                authorization=request.headers.get("Authorization"),
                origin=request.headers.get("Origin"),
                host=request.headers.get("Host"),
                content_type=request.headers.get("Content-Type"),
                scheme=request.scheme,
            )
            if view is None:
                decision = self._policy.decide_address(presented)
            else:
                scope = required_scope(view)
                if scope is None:
                    self._log.error("route %s declares no access scope: refused", endpoint)
                    return json_error(500, "this route declares no access scope")
                decision = await self.admit(scope, presented, request.path)
                g.access = (scope, decision)
            if not decision.allowed:
                response = json_error(decision.status, decision.message)
                response.headers.update(dict(decision.headers))
                return response
            if (request.content_length or 0) > self._policy.max_body_bytes:
                return self.too_large()
            return None

        @app.after_request
        async def _audit(response: Response) -> Response:
            scope, decision = g.get("access", (None, None))
            if scope in _AUDITED and decision is not None and response.status_code < 400:
                action, target = await _audited(scope, response)
                await self._record(action, decision.token, request.remote_addr, target=target)
            return response

        @app.errorhandler(413)
        async def _too_large(_error: Exception) -> Response:
            return self.too_large()


_AUDITED = frozenset((Scope.SILENCES_WRITE, Scope.ALERTS_TEST, Scope.CONFIG_RELOAD))


async def _audited(scope: Scope, response: Response) -> tuple[str, str]:
    """(action, target) of a successful audited write (needs a request context)."""
    if scope is Scope.ALERTS_TEST:
        return "test_alert", request.args.get("channel", "")
    if scope is Scope.CONFIG_RELOAD:
        return "reload", ""
    if request.method == "DELETE":
        return "silence.expire", str((request.view_args or {}).get("silence_id", ""))
    answer = await response.get_json(silent=True)
    target = answer.get("silenceID", "") if isinstance(answer, dict) else ""
    return "silence.create", str(target)
