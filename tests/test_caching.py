"""The bounded cache behind the process-local memos (upload hashes, verified passwords, the
Simple root index)."""

from __future__ import annotations

import threading

from app import caching
from app.caching import BoundedCache


def test_least_recently_used_goes_first():
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


def test_entries_expire(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(caching.time, "monotonic", lambda: now[0])
    cache: BoundedCache[str, int] = BoundedCache(8, ttl=60)
    cache.put("a", 1)
    now[0] += 59
    assert cache.get("a") == 1
    now[0] += 2
    assert cache.get("a") is None
    cache.put("b", 2)
    now[0] += 61
    assert cache.pop("b") is None and len(cache) == 0


def test_pop_takes_the_entry():
    cache: BoundedCache[str, int] = BoundedCache(4)
    cache.put("a", 1)
    assert cache.pop("a") == 1
    assert cache.pop("a") is None


def test_many_threads_never_exceed_the_bound():
    cache: BoundedCache[int, int] = BoundedCache(50)

    def work(base: int) -> None:
        for i in range(2000):
            cache.put(base * 10_000 + i, i)
            cache.get(base * 10_000 + i - 1)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 50
