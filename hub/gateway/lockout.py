"""`AuthenticationLockout`: failed client authentications back off, before any secret is checked.

Two rules, both checked before the (deliberately slow, scrypt) secret check runs, so refused
guesses cost the hub nothing:

- per client and address: after `threshold` consecutive failures the pair is locked for
  `base` seconds, doubling with each further failure up to `ceiling`; a success clears it.
  Keyed by the pair, so a stranger guessing from elsewhere cannot lock a real client out.
- per address: at most `per_address` failures in any `window` seconds, whatever client ids
  they name (junk ids would otherwise each get a fresh threshold). Attempts still being checked
  count as failures until they succeed, so a burst of concurrent guesses cannot all slip past
  the check before the first one has failed.

Use: `wait = attempt(client, address)`; when `wait` is 0 the attempt is admitted and must be
closed with `finished(client, address, succeeded)`. Only an attempt in which the client did
authenticate clears its pair: one refused before any credential was checked (`succeeded` None)
must not, or a request with a bad grant type between guesses would reset the count.

Counts live in process memory (bounded: at most `max_keys` pairs, the oldest forgotten first).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class LockoutRules:
    threshold: int = 5
    base: float = 1.0
    ceiling: float = 300.0
    per_address: int = 30
    window: float = 60.0
    max_keys: int = 10_000

    @property
    def enabled(self) -> bool:
        return self.threshold > 0


@dataclass
class _Failures:
    consecutive: int = 0
    locked_until: float = 0.0


@dataclass
class AuthenticationLockout:
    rules: LockoutRules = field(default_factory=LockoutRules)
    clock: Callable[[], float] = time.monotonic
    _pairs: "OrderedDict[tuple[str, str], _Failures]" = field(default_factory=OrderedDict)
    _addresses: dict[str, "deque[float]"] = field(default_factory=dict)
    _pending: dict[str, int] = field(default_factory=dict)

    def attempt(self, client_id: str, address: str) -> int:
        """Seconds until `client_id` may try again from `address`; 0 admits the attempt (close it
        with `finished`)."""
        wait = self.retry_after(client_id, address)
        if wait == 0 and self.rules.enabled:
            self._pending[address] = self._pending.get(address, 0) + 1
        return wait

    def retry_after(self, client_id: str, address: str) -> int:
        """Seconds until `client_id` may try again from `address` (0: now); admits nothing."""
        if not self.rules.enabled:
            return 0
        now = self.clock()
        waits = [0.0]
        failures = self._pairs.get((client_id, address))
        if failures is not None and failures.locked_until > now:
            waits.append(failures.locked_until - now)
        recent = [t for t in self._addresses.get(address, ()) if t > now - self.rules.window]
        pending = self._pending.get(address, 0)
        if len(recent) + pending >= self.rules.per_address:
            waits.append(recent[0] + self.rules.window - now if recent else 1.0)
        return math.ceil(max(waits))

    def finished(self, client_id: str, address: str, succeeded: bool | None) -> None:
        """An admitted attempt has been decided: True the client authenticated (its pair is
        cleared), False it failed to, None it was refused before any credential was checked
        (an unsupported grant type, a repeated parameter): that clears nothing and counts nothing."""
        if not self.rules.enabled:
            return
        pending = self._pending.get(address, 0) - 1
        if pending > 0:
            self._pending[address] = pending
        else:
            self._pending.pop(address, None)
        if succeeded is True:
            self.succeeded(client_id, address)
        elif succeeded is False:
            self.failed(client_id, address)

    def failed(self, client_id: str, address: str) -> None:
        if not self.rules.enabled:
            return
        now = self.clock()
        key = (client_id, address)
        failures = self._pairs.pop(key, None) or _Failures()
        failures.consecutive += 1
        over = failures.consecutive - self.rules.threshold
        if over >= 0:
            failures.locked_until = now + min(self.rules.ceiling, self.rules.base * 2**over)
        self._pairs[key] = failures
        while len(self._pairs) > self.rules.max_keys:
            self._pairs.popitem(last=False)
        recent = self._addresses.get(address)
        if recent is None:
            if len(self._addresses) >= self.rules.max_keys:
                self._addresses.pop(next(iter(self._addresses)))
            recent = self._addresses[address] = deque(maxlen=max(1, self.rules.per_address))
        recent.append(now)

    def succeeded(self, client_id: str, address: str) -> None:
        self._pairs.pop((client_id, address), None)
