"""The silences of a process, as one long-lived object (`Silences`), Alertmanager's silence
component.

The routing actor mutes with it and the silences API (`actors.routing.api`) creates, lists and
expires through it: both hold the same object, so a silence added through the API mutes at once
and keeps muting across a restart of the routing actor (a crash, or a reload that rebuilds it),
without the actor having to be asked. Every change is written to the store before it is seen.

Replicas sharing a PostgreSQL store share the silences table: `refresh()` reads it again and
takes every silence created or expired through another replica's API (a stored copy newer than
this one's). The routing actor refreshes before it flushes due groups, so a notification is never
decided on silences older than that flush; the cluster subsystem also refreshes every heartbeat,
so the API and the status views of every replica list them within one heartbeat.

Configured silences ([[silences]]) get an id derived from their keys; `load()` adds those not
yet known (one expired through the API stays expired).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Protocol

from actors.clock import Clock
from actors.routing.config import SilenceConfig
from actors.routing.exceptions import LimitExceeded, SilenceNotFound
from actors.routing.limits import MAX_LIVE_SILENCES
from actors.routing.silences import Silence, expire, make_silence, silenced_by

__all__ = ["SilenceStore", "Silences", "config_silence_id"]


class SilenceStore(Protocol):
    """Where silences are persisted (`actors.routing.persist.RoutingStore` is one)."""

    async def load_silences(self) -> list[Silence]:
        """Every stored silence (expired ones included)."""
        ...

    async def save_silence(self, silence: Silence) -> None:
        """Insert or replace a silence."""
        ...


def config_silence_id(cfg: SilenceConfig) -> str:
    """The id of a configured silence: derived from its keys, so a restart finds it again."""
    text = "\x00".join([*cfg.matchers, str(cfg.starts), str(cfg.ends), cfg.created_by, cfg.comment])
    return "cfg-" + hashlib.sha256(text.encode()).hexdigest()[:12]


class Silences:
    """Every silence (pending, active, expired), persisted in `store`. See the module docstring.

    Args:
        store: where silences are kept across process restarts.
        clock: wall time (creation and expiry times).
        configured: the [[silences]] of the configuration (see `configure`).

    Attributes:
        max_live: at most this many silences are pending or active at once; `add` refuses
            more (configured silences are not refused, but count).
    """

    def __init__(
        self, *, store: SilenceStore, clock: Clock, configured: Sequence[SilenceConfig] = ()
    ) -> None:
        self._store = store
        self._clock = clock
        self._configured = tuple(configured)
        self._by_id: dict[str, Silence] = {}
        self._loaded = False
        self._adding = 0
        self.max_live = MAX_LIVE_SILENCES

    def configure(self, configured: Sequence[SilenceConfig]) -> None:
        """Replace the configured silences; the next `load()` adds those not yet known.

        A silence dropped from the configuration is not removed (it ends when it ends).
        """
        self._configured = tuple(configured)

    async def load(self) -> None:
        """Read the stored silences (the first time only: afterwards this object is the newer
        copy), then add and persist every configured silence not yet known.

        Raises:
            actors.store.errors.QueryError: the store cannot be read or written (try again).
        """
        if not self._loaded:
            for silence in await self._store.load_silences():
                # A silence created or expired while the store was read is the newer one.
                self._by_id.setdefault(silence.id, silence)
            self._loaded = True
        now = self._clock.now()
        for cfg in self._configured:
            sid = config_silence_id(cfg)
            if sid in self._by_id:
                continue  # already known (maybe expired through the API): keep its state
            silence = make_silence(
                matchers=cfg.matchers,
                starts_at=cfg.starts.timestamp() if cfg.starts else now,
                ends_at=cfg.ends.timestamp(),
                created_by=cfg.created_by,
                comment=cfg.comment,
                now=now,
                silence_id=sid,
            )
            await self._store.save_silence(silence)
            self._by_id[sid] = silence

    async def refresh(self) -> int:
        """Read the store again and take every silence changed elsewhere (another replica): a
        stored copy newer than ours (`updated_at`) replaces it. Returns how many changed.

        Raises:
            actors.store.errors.QueryError: the store cannot be read (try again).
        """
        changed = 0
        for silence in await self._store.load_silences():
            mine = self._by_id.get(silence.id)
            if mine is None or silence.updated_at > mine.updated_at:
                self._by_id[silence.id] = silence
                changed += 1
        self._loaded = True
        return changed

    def all(self) -> list[Silence]:
        """Every silence (pending, active and expired), newest first."""
        return sorted(self._by_id.values(), key=lambda s: (-s.updated_at, s.id))

    def get(self, silence_id: str) -> Silence:
        """One silence.

        Raises:
            SilenceNotFound: no silence has this id.
        """
        try:
            return self._by_id[silence_id]
        except KeyError:
            raise SilenceNotFound(silence_id) from None

    async def add(
        self,
        *,
        matchers: Sequence[str],
        ends_at: float,
        starts_at: float | None = None,
        created_by: str = "",
        comment: str = "",
    ) -> Silence:
        """Create and persist a silence (`starts_at` None: now); it mutes from its start.

        Raises:
            InvalidSilence, InvalidMatcher: the silence is malformed.
            LimitExceeded: `max_live` silences are pending or active already.
            actors.store.errors.QueryError: it could not be persisted.
        """
        now = self._clock.now()
        silence = make_silence(
            matchers=matchers,
            starts_at=starts_at,
            ends_at=ends_at,
            created_by=created_by,
            comment=comment,
            now=now,
        )
        live = sum(1 for s in self._by_id.values() if now < s.ends_at) + self._adding
        if silence.id not in self._by_id and live >= self.max_live:
            raise LimitExceeded(
                f"at most {self.max_live} silences may be pending or active at once; expire"
                " one first"
            )
        self._adding += 1  # counted while it is written, so concurrent adds cannot overshoot
        try:
            await self._store.save_silence(silence)
        finally:
            self._adding -= 1
        self._by_id[silence.id] = silence
        return silence

    async def expire(self, silence_id: str) -> Silence:
        """Expire a silence now (it stays listed as expired); the alerts it muted show again at
        the next tick of their group.

        Raises:
            SilenceNotFound: no silence has this id.
            actors.store.errors.QueryError: the change could not be persisted.
        """
        silence = expire(self.get(silence_id), self._clock.now())
        await self._store.save_silence(silence)
        self._by_id[silence.id] = silence
        return silence

    def silenced_by(self, labels: Mapping[str, str], now: float) -> tuple[str, ...]:
        """Ids of the silences muting `labels` at `now`."""
        return silenced_by(self._by_id.values(), labels, now)

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether any silence mutes `labels` at `now`."""
        return any(s.mutes(labels, now) for s in self._by_id.values())
