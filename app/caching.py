"""One bounded, thread-safe cache for the process-local memos: least recently used entries go
first once `max_size` is reached, and entries may expire `ttl` seconds after they were stored.

Every cache here is an optimisation only: a miss must always be answerable from the database or
the store, so losing an entry (eviction, another worker, a restart) is never wrong.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    def __init__(self, max_size: int, ttl: float | None = None) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[float | None, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires is not None and expires < time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        expires = time.monotonic() + self.ttl if self.ttl is not None else None
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def pop(self, key: K) -> V | None:
        """Remove and return an entry (expired or not): for values one caller takes over."""
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None:
            return None
        expires, value = entry
        return None if expires is not None and expires < time.monotonic() else value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
