"""HTTP API of alerting (a Quart blueprint): alerts and silences.

- `GET /api/v1/alerts`: pending and firing alerts, firing first: `{"alerts": [{fingerprint, rule,
  state, labels, annotations, activeSince (RFC 3339), activeSinceUnix, value, silencedBy,
  inhibited, heldBy, maintenance}]}`. Optional `?state=firing|pending` and repeatable
  `?filter=<matcher>` (e.g. `filter=severity=critical`).
- `GET /api/v1/silences` (`{"silences": [...]}`), `GET /api/v1/silences/<id>`.
- `POST /api/v1/silences` (token): `{"matchers": ["alertname=X"] | [{"name", "value",
  "isRegex", "isEqual"}], "startsAt"?: RFC 3339, "endsAt": RFC 3339 | "duration"?: "2h",
  "createdBy"?, "comment"?}` -> 201 with the silence.
- `DELETE /api/v1/silences/<id>` (token): expires it -> 200 with the silence; 404 if unknown.

Alertmanager's API v2 for silences, enough for `amtool silence add|query|expire` (see
docs/configuration.md, "[[silences]]"):

- `GET /api/v2/status`: `{cluster: {status: "disabled", peers: []}, versionInfo, config,
  uptime}`; amtool reads it before every command.
- `POST /api/v2/silences` (token): a `postableSilence`, `{"matchers": [{"name", "value",
  "isRegex", "isEqual"?}], "startsAt"?, "endsAt", "createdBy"?, "comment"?, "id"?}` -> 200
  `{"silenceID": "..."}`. With the `id` of an existing silence the new one replaces it (it is
  created first, then the old one expired); an unknown `id` is 404.
- `GET /api/v2/silences` (`[gettableSilence]`, matchers as objects), with repeatable
  `?filter=<matcher>` applied to the silences' own matchers as Alertmanager does;
  `GET /api/v2/silence/<id>`; `DELETE /api/v2/silence/<id>` (token) -> 200, 404 if unknown.

Limits (`actors.routing.limits`, answered 400 saying which): filters per request and their
length; a silence's matchers, their length, its comment, its length in time, its start; the
number of live silences; the nesting of a body.

Each route declares its scope (`read`, or `silences:write` for the writes); the access guard of
the app (`actors.web.access`) decides tokens, `allow_from` and the body limit before the view
runs. Errors are `{"error": "..."}`: 400 bad body, 404 unknown silence (401, 403, 413 and 415
come from the guard). Reads are answered from the actors' state; nothing is evaluated.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import pydantic
from quart import Blueprint, Response, jsonify, request

from actors.configtypes import parse_duration
from actors.models import Alert, AlertStatus
from actors.routing.actor import MuteStatus
from actors.routing.exceptions import RoutingError, SilenceNotFound
from actors.routing.limits import (
    MAX_COMMENT,
    MAX_CREATED_BY,
    MAX_JSON_DEPTH,
    MAX_MATCHERS,
    check_filters,
    check_silence_times,
    json_too_deep,
    timestamp_of,
)
from actors.routing.matchers import (
    MAX_MATCHER_LENGTH,
    Matcher,
    format_matcher,
    matches_all,
    parse_matchers,
    split_matcher,
)
from actors.routing.silences import Silence, make_silence
from actors.routing.silencing import Silences
from actors.web.access import Scope, requires
from actors.web.responses import json_error

if TYPE_CHECKING:
    from actors.clock import Clock
    from actors.rules.actor import AlertView

__all__ = [
    "AlertsProvider",
    "MuteView",
    "create_blueprint",
    "gettable_silence",
    "silence_json",
]


class AlertsProvider(Protocol):
    """The rules actor's read side."""

    def alerts(self) -> list[AlertView]:
        """Pending and firing instances."""
        ...


class MuteView(Protocol):
    """Why an alert is muted now (the routing actor that runs now answers)."""

    def mute_status(self, alert: Alert) -> MuteStatus:
        """Why `alert` is muted, if it is."""
        ...


def _rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def silence_json(silence: Silence, now: float) -> dict[str, object]:
    """The API view of a silence."""
    return {
        "id": silence.id,
        "matchers": list(silence.matchers),
        "startsAt": _rfc3339(silence.starts_at),
        "endsAt": _rfc3339(silence.ends_at),
        "updatedAt": _rfc3339(silence.updated_at),
        "createdBy": silence.created_by,
        "comment": silence.comment,
        "status": {"state": silence.state(now).value},
    }


_MatcherText = Annotated[str, pydantic.StringConstraints(max_length=MAX_MATCHER_LENGTH)]


class _MatcherObject(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    name: str = pydantic.Field(max_length=MAX_MATCHER_LENGTH)
    value: str = pydantic.Field(max_length=MAX_MATCHER_LENGTH)
    isRegex: bool = False
    isEqual: bool = True

    def text(self) -> str:
        op = (
            ("=" if self.isEqual else "!=")
            if not self.isRegex
            else ("=~" if self.isEqual else "!~")
        )
        return format_matcher(self.name, op, self.value)


class _SilenceBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True)

    matchers: list[_MatcherText | _MatcherObject] = pydantic.Field(
        min_length=1, max_length=MAX_MATCHERS
    )
    startsAt: pydantic.AwareDatetime | None = None
    endsAt: pydantic.AwareDatetime | None = None
    duration: str | None = pydantic.Field(default=None, max_length=100)
    createdBy: str = pydantic.Field(default="", max_length=MAX_CREATED_BY)
    comment: str = pydantic.Field(default="", max_length=MAX_COMMENT)


class _PostableSilence(_SilenceBody):
    """Alertmanager's v2 `postableSilence` (plus our `duration` and string matchers)."""

    id: str | None = pydantic.Field(default=None, max_length=200)


def _matcher_object(text: str) -> dict[str, object]:
    name, op, value = split_matcher(text)
    return {"name": name, "value": value, "isRegex": "~" in op, "isEqual": op[0] == "="}


def gettable_silence(silence: Silence, now: float) -> dict[str, object]:
    """Alertmanager's v2 view of a silence (`gettableSilence`: matchers as objects)."""
    return {
        **silence_json(silence, now),
        "matchers": [_matcher_object(m) for m in silence.matchers],
    }


def _filter_matches(filters: Sequence[Matcher], silence: Silence) -> bool:
    """Alertmanager's `CheckSilenceMatchesFilterLabels`: each filter matcher is applied to the
    silence's matchers seen as labels (name -> value or pattern); an empty filter value only
    asks that the name is absent (`=`, `=~`) or present (`!=`, `!~`)."""
    own = {name: value for name, _, value in (split_matcher(m) for m in silence.matchers)}
    for matcher in filters:
        present = matcher.name in own
        if matcher.value == "" and present == (matcher.op in ("!=", "!~")):
            continue
        if not matcher.matches_value(own.get(matcher.name, "")):
            return False
    return True


def _version() -> str:
    try:
        return importlib.metadata.version("blipee-monitor")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


_Body = TypeVar("_Body", bound=pydantic.BaseModel)


def _describe(exc: pydantic.ValidationError) -> str:
    """The first few errors, each `where: what` (never the value sent)."""
    errors = exc.errors(include_input=False, include_url=False)
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return "; ".join(parts)[:2000]


def _filters() -> tuple[Matcher, ...]:
    """The request's `filter` matchers.

    Raises:
        RoutingError: too many or too long (`check_filters`), or not a matcher.
    """
    texts = request.args.getlist("filter")
    check_filters(texts)
    return parse_matchers(texts)


def create_blueprint(
    *, rules: AlertsProvider, routing: MuteView, silences: Silences, clock: Clock
) -> Blueprint:
    """The alerting blueprint (routes in the module docstring); register it on the web app,
    whose access guard enforces the scope each route declares.

    Silences are created, listed and expired through `silences` (the object the routing actor
    mutes with); `routing` says why each listed alert is muted.
    """
    bp = Blueprint("alerting", __name__)

    def _after(silence: Silence) -> float:
        """Now, but not before the silence was last written (by the silences' clock)."""
        return max(clock.now(), silence.updated_at)

    @bp.get("/api/v1/alerts")
    @requires(Scope.READ)
    async def list_alerts() -> Response:
        state = request.args.get("state")
        if state not in (None, "", "firing", "pending"):
            return json_error(400, "state must be firing or pending")
        try:
            filters = _filters()
        except RoutingError as exc:
            return json_error(400, str(exc))
        out: list[dict[str, object]] = []
        for view in rules.alerts():
            if state and view.state != state:
                continue
            if filters and not matches_all(filters, dict(view.labels)):
                continue
            item = view.to_json()
            item["activeSinceUnix"] = view.active_since
            item["activeSince"] = _rfc3339(view.active_since)
            if item["value"] != item["value"]:  # NaN is not JSON
                item["value"] = None
            mute = routing.mute_status(
                Alert(
                    view.fingerprint,
                    view.labels,
                    view.annotations,
                    AlertStatus.FIRING,
                    view.active_since,
                    None,
                )
            )
            item["silencedBy"] = list(mute.silenced_by)
            item["inhibited"] = mute.inhibited
            item["heldBy"] = list(mute.held_by)
            item["maintenance"] = mute.maintenance
            out.append(item)
        return jsonify({"alerts": out})

    @bp.get("/api/v1/silences")
    @requires(Scope.READ)
    async def list_silences() -> Response:
        now = clock.now()
        return jsonify({"silences": [silence_json(s, now) for s in silences.all()]})

    @bp.get("/api/v1/silences/<silence_id>")
    @requires(Scope.READ)
    async def get_silence(silence_id: str) -> Response:
        try:
            silence = silences.get(silence_id)
        except SilenceNotFound as exc:
            return json_error(404, str(exc))
        return jsonify(silence_json(silence, clock.now()))

    async def _read_body(model: type[_Body]) -> _Body | Response:
        """The request body as `model`, or the error answer (400; the guard's 413 is raised
        while reading a body over the limit)."""
        raw = await request.get_data(as_text=False)
        try:
            data: Any = json.loads(raw)
        except RecursionError:
            return json_error(400, f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
        except (ValueError, UnicodeDecodeError):
            return json_error(400, "the body is not valid JSON")
        if json_too_deep(data):
            return json_error(400, f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            return json_error(400, _describe(exc))

    async def _create(body: _SilenceBody) -> Silence | Response:
        """Create the silence `body` describes, or the error answer (400)."""
        now = clock.now()
        try:
            starts = timestamp_of(body.startsAt, "startsAt") if body.startsAt else None
            if body.endsAt is not None:
                ends = timestamp_of(body.endsAt, "endsAt")
            elif body.duration is not None:
                try:
                    length = parse_duration(body.duration)
                except ValueError as exc:
                    return json_error(400, f"duration: {exc}")
                ends = (starts if starts is not None else now) + length
            else:
                return json_error(400, "endsAt or duration is required")
            matchers = [m if isinstance(m, str) else m.text() for m in body.matchers]
            # Validated as any silence is first (matchers, times), then within the API's limits.
            make_silence(
                matchers=matchers,
                starts_at=starts,
                ends_at=ends,
                created_by=body.createdBy,
                comment=body.comment,
                now=now,
            )
            check_silence_times(starts, ends, now)
        except RoutingError as exc:
            return json_error(400, str(exc))
        try:
            return await silences.add(
                matchers=matchers,
                starts_at=starts,
                ends_at=ends,
                created_by=body.createdBy,
                comment=body.comment,
            )
        except RoutingError as exc:
            return json_error(400, str(exc))

    @bp.post("/api/v1/silences")
    @requires(Scope.SILENCES_WRITE)
    async def post_silence() -> Response:
        body = await _read_body(_SilenceBody)
        if isinstance(body, Response):
            return body
        silence = await _create(body)
        if isinstance(silence, Response):
            return silence
        # The state as of the answer, never earlier than the silence's creation: the clock
        # was read before the silences read theirs, and a silence starting "now" (or in
        # the past) is active at once, as the next GET shows.
        response = jsonify({"silenceID": silence.id, **silence_json(silence, _after(silence))})
        response.status_code = 201
        return response

    @bp.delete("/api/v1/silences/<silence_id>")
    @requires(Scope.SILENCES_WRITE)
    async def delete_silence(silence_id: str) -> Response:
        try:
            silence = await silences.expire(silence_id)
        except SilenceNotFound as exc:
            return json_error(404, str(exc))
        return jsonify(silence_json(silence, _after(silence)))

    started = clock.now()
    version = _version()

    @bp.get("/api/v2/status")
    @requires(Scope.READ)
    async def v2_status() -> Response:
        return jsonify(
            {
                "cluster": {"status": "disabled", "peers": []},
                "versionInfo": {
                    "version": version,
                    "revision": "",
                    "branch": "",
                    "buildUser": "",
                    "buildDate": "",
                    "goVersion": "",
                },
                "config": {"original": ""},
                "uptime": _rfc3339(started),
            }
        )

    @bp.get("/api/v2/silences")
    @requires(Scope.READ)
    async def v2_list_silences() -> Response:
        try:
            filters = _filters()
        except RoutingError as exc:
            return json_error(400, str(exc))
        now = clock.now()
        return jsonify(
            [gettable_silence(s, now) for s in silences.all() if _filter_matches(filters, s)]
        )

    @bp.get("/api/v2/silence/<silence_id>")
    @requires(Scope.READ)
    async def v2_get_silence(silence_id: str) -> Response:
        try:
            silence = silences.get(silence_id)
        except SilenceNotFound as exc:
            return json_error(404, str(exc))
        return jsonify(gettable_silence(silence, clock.now()))

    @bp.post("/api/v2/silences")
    @requires(Scope.SILENCES_WRITE)
    async def v2_post_silence() -> Response:
        body = await _read_body(_PostableSilence)
        if isinstance(body, Response):
            return body
        if body.id:
            try:
                silences.get(body.id)
            except SilenceNotFound as exc:
                return json_error(404, str(exc))
        silence = await _create(body)
        if isinstance(silence, Response):
            return silence
        if body.id and body.id != silence.id:
            # Replaced: the new silence exists before the old one ends, so a failure here
            # leaves both rather than neither.
            with contextlib.suppress(SilenceNotFound):  # gone meanwhile: nothing to replace
                await silences.expire(body.id)
        return jsonify({"silenceID": silence.id})

    @bp.delete("/api/v2/silence/<silence_id>")
    @requires(Scope.SILENCES_WRITE)
    async def v2_delete_silence(silence_id: str) -> Response:
        try:
            await silences.expire(silence_id)
        except SilenceNotFound as exc:
            return json_error(404, str(exc))
        return Response("", status=200)

    return bp
