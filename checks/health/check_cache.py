"""The Redis cache: answers PING, memory against maxmemory, evictions, hit ratio.

Set ``REDIS_URL``. Thresholds (``[tool.fraiseql-checks.thresholds]``), with defaults:
``cache.ping_max_seconds`` (0.25), ``cache.memory_max_percent`` (85),
``cache.evictions_max_per_second`` (1), ``cache.eviction_sample_seconds`` (1),
``cache.hit_ratio_min_percent`` (75).
"""

from __future__ import annotations

import asyncio

import pytest

from fraiseql_checks import check, record, stopwatch


@check(
    interval="30s",
    severity="critical",
    tags=["cache"],
    runbook="docs/runbooks/CacheDown.md",
    panel={"value": "ping_seconds", "unit": "s", "thresholds": [0.25]},
)
async def check_cache_answers(cache, config):
    """Redis answers PING within 250ms (seed alert CacheDown), on an open connection."""
    limit = config.threshold("cache.ping_max_seconds")
    # The first command opens the connection (TCP, HELLO): a refused or timed-out connect
    # fails the check here; what is timed is the round trip, as redis-cli --latency does.
    assert await cache.ping() is True
    with stopwatch() as took:  # time other checks held the event loop is not the cache's
        assert await cache.ping() is True
    elapsed = took.seconds
    record("ping_seconds", elapsed)
    assert elapsed <= limit, f"PING took {elapsed * 1000:.1f}ms, above {limit * 1000:g}ms"


@check(
    interval="1m",
    severity="warning",
    tags=["cache"],
    runbook="docs/runbooks/CacheMemoryHigh.md",
    panel={"value": "memory_used_ratio", "unit": "percentunit", "thresholds": [0.85]},
)
async def check_cache_memory(cache, config):
    """Memory in use stays at or below 85% of maxmemory."""
    maximum = config.threshold("cache.memory_max_percent")
    memory = await cache.info("memory")
    used, limit = memory["used_memory"], memory.get("maxmemory", 0)
    record("memory_used_bytes", used)
    if not limit:
        pytest.skip("maxmemory is 0 (no limit): set maxmemory so Redis evicts instead of growing without bound")
    ratio = used / limit
    record("memory_used_ratio", ratio)
    assert 100 * ratio <= maximum, f"{used} of maxmemory={limit} bytes in use ({100 * ratio:.1f}%), above {maximum:g}%"


@check(interval="1m", severity="warning", tags=["cache"], runbook="docs/runbooks/CacheMemoryHigh.md")
async def check_cache_evictions(cache, config):
    """Redis evicts at most 1 key per second (measured over a 1s sample): evictions mean the cache is too small."""
    maximum = config.threshold("cache.evictions_max_per_second")
    sample = config.threshold("cache.eviction_sample_seconds")
    before = (await cache.info("stats"))["evicted_keys"]
    await asyncio.sleep(sample)
    after = (await cache.info("stats"))["evicted_keys"]
    rate = (after - before) / sample
    record("evictions_per_second", rate)
    assert rate <= maximum, f"{after - before} keys evicted in {sample:g}s ({rate:g}/s), above {maximum:g}/s"


@check(
    interval="5m",
    severity="info",
    tags=["cache"],
    runbook="docs/runbooks/LowCacheHitRate.md",
    panel={"value": "hit_ratio", "unit": "percentunit", "thresholds": [0.75], "bad": "below"},
)
async def check_cache_hit_ratio(cache, config):
    """At least 75% of key lookups hit (INFO stats, since the server started; seed alert LowCacheHitRate)."""
    minimum = config.threshold("cache.hit_ratio_min_percent")
    stats = await cache.info("stats")
    hits, misses = stats["keyspace_hits"], stats["keyspace_misses"]
    if not hits + misses:
        pytest.skip("no key lookups recorded since the server started")
    ratio = hits / (hits + misses)
    record("hit_ratio", ratio)
    assert 100 * ratio >= minimum, f"{hits} hits, {misses} misses: {100 * ratio:.1f}% hit ratio, below {minimum:g}%"
