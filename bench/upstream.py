"""A minimal upstream on 127.0.0.1 that answers 200, at once or after a delay, in its own process.

Cheap on purpose: the throughput benchmark compares against Celery tasks that make
no HTTP call, so the stand-in should cost as little CPU as an upstream can. With a
delay it stands in for a slow upstream: each request waits on asyncio.sleep, so
hundreds of keep-alive connections waiting at once cost next to nothing.

    python bench/upstream.py [--delay 0.1]   # prints its URL, serves until stdin closes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator

RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while True:  # keep-alive: one request after the other on the connection
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if delay:
                await asyncio.sleep(delay)
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(delay: float) -> None:
    server = await asyncio.start_server(
        lambda reader, writer: handle(reader, writer, delay), "127.0.0.1", 0, backlog=1024
    )
    host, port = server.sockets[0].getsockname()[:2]
    print(f"http://{host}:{port}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()


@contextlib.contextmanager
def running(delay: float = 0.0) -> Iterator[str]:
    """Start the upstream in a child process, answering after delay seconds; yields its URL."""
    from bench.common import stdin_child

    with stdin_child([__file__, "--delay", repr(delay)]) as child:
        yield child.stdout.readline().strip()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer (default 0)")
    asyncio.run(serve(parser.parse_args().delay))
