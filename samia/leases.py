"""Leases: which client works on which item (an annotation case, a server session), until when.

A client *claims* an item and keeps it by *renewing* (a heartbeat, or any request) within
``seconds``; it *releases* it when done. A lease not renewed in time *expires*: the item is free
and the next claim takes it without asking (a closed tab, a crashed browser, a sleeping laptop).
A live lease is taken over only when the claimant asks to (``take_over``); the client that lost it
is told so by name on its next request, never left to overwrite the new holder's work. This is how
nnInteractive's server hands a session between clients, kept independent of any web framework.

Times come from ``clock`` (monotonic seconds), so tests move time instead of waiting for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item", bound=Hashable)
"""What a lease is on (an annotation case's id, a server session's id)."""


class LeaseError(Exception):
    """A client may not act on an item now (the message says why and what to do)."""


class HeldElsewhereError(LeaseError):
    """Another client holds a live lease on the item."""


class LeaseLostError(LeaseError):
    """The client's lease is gone.

    Attributes:
        taken_over: another client took the item over (else: it expired, or was never held, and
            the client may simply claim it again).
    """

    def __init__(self, message: str, taken_over: bool) -> None:
        super().__init__(message)
        self.taken_over = taken_over


@dataclass(frozen=True)
class Lease:
    """``holder`` holds an item until ``expires`` (clock seconds), last renewed at ``renewed``."""

    holder: str
    renewed: float
    expires: float


class Leases(Generic[Item]):
    """The leases on a set of items, safe to use from several threads.

    Args:
        seconds: how long a lease lasts after its last renewal (> 0).
        describe: how messages name an item (e.g. a case's name rather than its key).
        clock: monotonic seconds (``time.monotonic``).
    """

    def __init__(
        self,
        seconds: float,
        describe: Callable[[Item], str] = str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not seconds > 0:
            raise ValueError(f"a lease lasts > 0 seconds, got {seconds}")
        self.seconds, self.describe, self.clock = seconds, describe, clock
        self._leases: dict[Item, Lease] = {}
        self._taken_from: dict[Item, set[str]] = {}
        self._swept: set[Item] = set()
        self._lock = threading.Lock()

    def holder(self, item: Item) -> str | None:
        """The client holding a live lease on ``item``; None when it is free."""
        with self._lock:
            lease = self._live(item)
            return None if lease is None else lease.holder

    def claim(self, item: Item, client: str, take_over: bool = False) -> Lease:
        """Give ``item`` to ``client`` (or renew its lease).

        Raises:
            HeldElsewhereError: another client holds a live lease and ``take_over`` is False.
        """
        with self._lock:
            lease = self._live(item)
            if lease is not None and lease.holder != client and not take_over:
                idle = self.clock() - lease.renewed
                raise HeldElsewhereError(
                    f"{self.describe(item)} is open in another browser (active {idle:.0f} s ago); "
                    f"take it over to work here, or wait {self.seconds - idle:.0f} s for its lease to expire"
                )
            previous = self._leases.get(item)  # live and taken over, or expired
            if previous is not None and previous.holder != client:
                self._taken_from.setdefault(item, set()).add(previous.holder)
            self._taken_from.get(item, set()).discard(client)
            return self._grant(item, client)

    def renew(self, item: Item, client: str) -> Lease:
        """Extend ``client``'s lease; an expired lease nobody claimed since is given back.

        Raises:
            LeaseLostError: another client took the item over, or ``client`` never held it.
        """
        with self._lock:
            lease = self._leases.get(item)
            if lease is not None and lease.holder == client:
                return self._grant(item, client)
            if client in self._taken_from.get(item, set()):
                raise LeaseLostError(
                    f"{self.describe(item)} was taken over by another browser; what you did before is saved: "
                    "open it again to take it back",
                    taken_over=True,
                )
            raise LeaseLostError(f"{self.describe(item)} is not open in this browser; open it first", taken_over=False)

    def release(self, item: Item, client: str) -> bool:
        """Free ``item`` if ``client`` holds it (even an expired lease); True when it did."""
        with self._lock:
            lease = self._leases.get(item)
            if lease is None or lease.holder != client:
                return False
            del self._leases[item]
            self._swept.discard(item)
            return True

    def expired(self) -> list[Item]:
        """The items whose leases expired since the last call (each is reported once; its holder
        may still renew it while nobody else claims it, see :meth:`renew`)."""
        with self._lock:
            now = self.clock()
            gone = [item for item, lease in self._leases.items() if lease.expires <= now and item not in self._swept]
            self._swept.update(gone)
            return gone

    def _live(self, item: Item) -> Lease | None:
        lease = self._leases.get(item)
        return lease if lease is not None and lease.expires > self.clock() else None

    def _grant(self, item: Item, client: str) -> Lease:
        now = self.clock()
        lease = Lease(client, now, now + self.seconds)
        self._leases[item] = lease
        self._swept.discard(item)
        return lease
