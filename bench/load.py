"""An HTTP load generator: N concurrent asyncio workers, each on its own keep-alive connection.

The load runs in this (the benchmark's) process, the server in its own. The
workers speak HTTP/1.1 over asyncio streams (:class:`Connection`) or, with
``client="httpx"``, through an ``httpx.AsyncClient``. A load
is a number of requests or a time span; every request's latency is kept, so
p50/p99 are exact. The server's peak memory during one load comes from
``VmHWM`` in ``/proc/<pid>/status``, reset to the current RSS at the start of
the load (``echo 5 > /proc/<pid>/clear_refs``); when the reset is refused, the
peak since the server started is reported and marked so.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.machine import CpuMeter


@dataclass(frozen=True)
class Call:
    """One request: method, path (with query string), an optional JSON body and headers."""

    method: str
    path: str
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


#: Makes the n-th request of a load (n counts from 0 across all workers).
CallSource = Callable[[int], Call]


@dataclass
class LoadResult:
    """What one load measured; latencies in milliseconds."""

    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    first_error: str | None = None
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    peak_rss_mib: float | None = None
    peak_rss_since_start: bool = False
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        ok = self.requests - self.errors
        return ok / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        """CPU time (user + system) the server process used per request."""
        if self.server_cpu_seconds is None or not self.requests:
            return None
        return round(self.server_cpu_seconds * 1000 / self.requests, 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "throughput": round(self.throughput, 1),
            "p50_ms": round(self.percentile(0.5), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "mean_ms": round(sum(self.latencies_ms) / len(self.latencies_ms), 2)
            if self.latencies_ms
            else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "first_error": self.first_error,
            "client_cpu_share": round(self.client_cpu_seconds / self.seconds, 3)
            if self.seconds > 0
            else None,
            "server_cpu_ms_per_request": self.server_cpu_ms_per_request,
            "peak_rss_mib": None if self.peak_rss_mib is None else round(self.peak_rss_mib, 1),
            "peak_rss_since_start": self.peak_rss_since_start,
            "cpu": self.cpu,
        }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of ``values``; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def merge(results: list[LoadResult]) -> LoadResult:
    """Several loads of the same kind (rounds) as one: summed counts, pooled latencies."""
    merged = LoadResult()
    for r in results:
        merged.requests += r.requests
        merged.errors += r.errors
        merged.seconds += r.seconds
        merged.latencies_ms += r.latencies_ms
        merged.client_cpu_seconds += r.client_cpu_seconds
        if r.server_cpu_seconds is not None:
            merged.server_cpu_seconds = (merged.server_cpu_seconds or 0.0) + r.server_cpu_seconds
        for status, n in r.statuses.items():
            merged.statuses[status] = merged.statuses.get(status, 0) + n
        merged.first_error = merged.first_error or r.first_error
        merged.peak_rss_since_start |= r.peak_rss_since_start
    peaks = [r.peak_rss_mib for r in results if r.peak_rss_mib is not None]
    merged.peak_rss_mib = max(peaks) if peaks else None
    meters = [r.cpu for r in results if r.cpu]
    if meters:
        merged.cpu = {k: round(sum(m[k] for m in meters) / len(meters), 3) for k in meters[0]}
    return merged


# -- server memory ------------------------------------------------------------------------------


def _status_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mib(pid: int) -> float | None:
    """The process's resident memory now (``VmRSS``)."""
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else kib / 1024


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident memory (``VmHWM``) since start or the last reset."""
    kib = _status_kib(pid, "VmHWM")
    return None if kib is None else kib / 1024


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used (``/proc/<pid>/stat``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def reset_peak_rss(pid: int) -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ≥ 4.0); False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# -- the load ---------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just what the load needs.

    Far cheaper per request than httpx (measured: about 0.1 ms of client CPU per
    request instead of about 1.4 ms), which matters on a 2-CPU machine where the
    client competes with the server and the database for the same CPUs.
    Responses must carry ``Content-Length`` (uvicorn's JSON responses do).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, call: Call) -> tuple[int, bytes]:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        head = f"{call.method} {call.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in call.headers)
        if call.body is not None:
            payload = json.dumps(call.body).encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        else:
            payload = b""
        writer.write(head.encode() + b"\r\n" + payload)
        headers = await reader.readuntil(b"\r\n\r\n")
        status = int(headers[9:12])
        length = None
        close = False
        for line in headers.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise ConnectionError(f"response without Content-Length: {headers[:200]!r}")
        body = await reader.readexactly(length)
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


async def _load(
    base_url: str,
    source: CallSource,
    *,
    expect: int,
    concurrency: int,
    count: int | None,
    seconds: float | None,
    client: str,
) -> LoadResult:
    result = LoadResult()
    numbers = itertools.count()
    url = httpx.URL(base_url)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120.0) as pool:
        started = time.perf_counter()
        deadline = started + seconds if seconds is not None else math.inf

        async def send(connection: Connection, call: Call) -> tuple[int, bytes]:
            if client == "httpx":
                response = await pool.request(
                    call.method, call.path, json=call.body, headers=dict(call.headers)
                )
                return response.status_code, response.content
            return await asyncio.wait_for(connection.request(call), timeout=120.0)

        async def worker() -> None:
            connection = Connection(url.host, url.port or 80)
            try:
                while True:
                    n = next(numbers)
                    if (count is not None and n >= count) or time.perf_counter() >= deadline:
                        return
                    call = source(n)
                    began = time.perf_counter()
                    try:
                        status, body = await send(connection, call)
                        problem = None if status == expect else f"{status}: {body[:300]!r}"
                    except (httpx.HTTPError, OSError, asyncio.IncompleteReadError) as exc:
                        await connection.close()
                        status, problem = 0, f"{type(exc).__name__}: {exc}"
                    except TimeoutError:
                        await connection.close()
                        status, problem = 0, "no response within 120 s"
                    result.latencies_ms.append((time.perf_counter() - began) * 1000)
                    result.requests += 1
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    if problem is not None:
                        result.errors += 1
                        if result.first_error is None:
                            result.first_error = f"{call.method} {call.path}: {problem}"
            finally:
                await connection.close()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


def run_load(
    base_url: str,
    source: CallSource,
    *,
    expect: int,
    concurrency: int,
    count: int | None = None,
    seconds: float | None = None,
    server_pid: int | None = None,
    client: str = "asyncio",
) -> LoadResult:
    """Send ``count`` requests (or for ``seconds``) from ``concurrency`` workers.

    A response with another status than ``expect`` counts as an error (the first one
    is kept). With ``server_pid``, the server's peak RSS during the load is recorded.
    ``client`` is ``asyncio`` (:class:`Connection`, the default) or ``httpx``.
    """
    if count is None and seconds is None:
        raise ValueError("a load needs a request count or a duration")
    reset = reset_peak_rss(server_pid) if server_pid is not None else False
    server_cpu = cpu_seconds(server_pid) if server_pid is not None else None
    meter = CpuMeter()
    meter.start()
    cpu_before = time.process_time()
    result = asyncio.run(
        _load(
            base_url,
            source,
            expect=expect,
            concurrency=concurrency,
            count=count,
            seconds=seconds,
            client=client,
        )
    )
    result.client_cpu_seconds = time.process_time() - cpu_before
    result.cpu = meter.stop()
    if server_pid is not None:
        result.peak_rss_mib = peak_rss_mib(server_pid)
        result.peak_rss_since_start = not reset
        server_cpu_after = cpu_seconds(server_pid)
        if server_cpu is not None and server_cpu_after is not None:
            result.server_cpu_seconds = server_cpu_after - server_cpu
    return result
