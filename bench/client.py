"""The benches' own HTTP load client: plain keep-alive HTTP/1.1 connections on asyncio
streams. httpx costs the bench a core of its own at a few hundred requests a second, on a
machine of two cores that the server under test shares."""

from __future__ import annotations

import asyncio
from typing import NamedTuple
from urllib.parse import urlsplit


class Answer(NamedTuple):
    status: int
    content: bytes
    etag: str | None


class Pool:
    """Keep-alive HTTP/1.1 connections to one service, each served by a worker that takes
    the next request from a queue. The bench's own client for the open loop: httpx's pool
    spends time quadratic in the requests queued on it, which at 500/s starves the bench."""

    def __init__(self, base: str, size: int) -> None:
        parsed = urlsplit(base)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.queue: asyncio.Queue[tuple[bytes, asyncio.Future[Answer]]] = asyncio.Queue()
        self.workers = [asyncio.create_task(self._work()) for _ in range(size)]

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> int:
        """POST ``body`` (JSON); the status code."""
        return (await self.request("POST", path, headers, body)).status

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> asyncio.Future[Answer]:
        """Queue a request; its future gives the status code, the body and the ETag."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body or method == "POST":
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        done: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((("\r\n".join(lines) + "\r\n\r\n").encode() + body, done))
        return done

    async def _work(self) -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while True:
            raw, done = await self.queue.get()
            try:
                if conn is None:
                    conn = await asyncio.open_connection(self.host, self.port)
                reader, writer = conn
                writer.write(raw)
                status = int((await reader.readline()).split()[1])
                length, close, etag = 0, False, None
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and "close" in value.lower():
                        close = True
                    elif name.lower() == "etag":
                        etag = value.strip()
                content = await reader.readexactly(length)
                if close:
                    writer.close()
                    conn = None
                done.set_result(Answer(status, content, etag))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if conn is not None:
                    conn[1].close()
                conn = None
                done.set_exception(exc)

    async def close(self) -> None:
        for worker in self.workers:
            worker.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
