"""A light HTTP/1.1 load generator for the benchmarks (loopback only).

Requests are prebuilt bytes sent over keep-alive connections with asyncio streams, so the
generator spends microseconds per request; a full HTTP client library (httpx) costs about a
millisecond of CPU per request, which on a 2-core machine is taken from the server being
measured and shows up as server latency."""
import asyncio
import time
from urllib.parse import urlsplit


def build(method: str, url: str, *, body: bytes = b"", headers: dict | None = None) -> bytes:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the load generator talks to loopback only")
    return parts.hostname, parts.port or 80


async def _exchange(reader, writer, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def closed_loop(url: str, requests: list[bytes], concurrency: int) -> tuple[list[float], float]:
    """`concurrency` connections, each sending its next request as soon as the answer came."""
    host, port = _target(url)
    todo = iter(requests)
    latencies: list[float] = []

    async def connection():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for request in todo:
                t = time.perf_counter()
                status = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - t)
                if status >= 400:
                    raise RuntimeError(f"HTTP {status}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


async def open_loop(url: str, requests: list[bytes], rate: float, max_in_flight: int) -> list[float]:
    """A request every 1/rate s whatever the answers (up to max_in_flight at once), as webhooks
    arrive in life; latency counts from the planned send time, so a backlog shows."""
    host, port = _target(url)
    idle: asyncio.Queue = asyncio.Queue()
    opened = 0
    latencies: list[float] = []

    async def one(request: bytes, planned: float):
        nonlocal opened
        if idle.empty() and opened < max_in_flight:
            opened += 1
            idle.put_nowait(await asyncio.open_connection(host, port))
        reader, writer = await idle.get()
        status = await _exchange(reader, writer, request)
        latencies.append(time.perf_counter() - planned)
        idle.put_nowait((reader, writer))
        if status >= 400:
            raise RuntimeError(f"HTTP {status}")

    tasks, start = [], time.perf_counter()
    for i, request in enumerate(requests):
        planned = start + i / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, planned)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait()[1].close()
    return latencies
