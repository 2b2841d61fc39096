"""TLS client contexts, one per verification mode, shared by the checks they are handed to.

A `ssl.SSLContext` holds its own copy of the system CA store (about 0.9 MB), so one per check
adds up: 200 https checks would hold 180 MB of identical certificates. A context is safe to share
between connections and tasks, so the composition root creates one `ClientContexts` and hands it
to every check it builds; each check then uses one of its two contexts.
"""

from __future__ import annotations

import ssl

__all__ = ["ClientContexts"]


class ClientContexts:
    """The client contexts of the checks that share this object, each built on first use.

    `get()` returns the verifying context: `verifying` when given (e.g. one that trusts a private
    CA), else a default context (the system CA store, hostname checks). `get(verify=False)`
    returns a context that verifies nothing (a check's `tls_verify = false`). Every call for a
    mode returns the same object, so the CA store is loaded once per mode and not once per check.
    The contexts are shared: do not modify them.
    """

    __slots__ = ("_lax", "_verifying")

    def __init__(self, verifying: ssl.SSLContext | None = None) -> None:
        self._verifying = verifying
        self._lax: ssl.SSLContext | None = None

    def get(self, *, verify: bool = True) -> ssl.SSLContext:
        """The context for `verify` (see the class docstring)."""
        if verify:
            if self._verifying is None:
                self._verifying = ssl.create_default_context()
            return self._verifying
        if self._lax is None:
            lax = ssl.create_default_context()
            lax.check_hostname = False
            lax.verify_mode = ssl.CERT_NONE
            self._lax = lax
        return self._lax
