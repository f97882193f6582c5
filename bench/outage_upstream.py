"""The outage benchmark's upstream on 127.0.0.1, in its own process: down or up, and counting.

    python bench/outage_upstream.py PORT MODE DELAY_MS

MODE "down" answers every request 503 at once, without Retry-After (what mrdj's breaker
counts as the upstream being down); "up" answers 200 after DELAY_MS. It prints its URL,
then obeys commands on stdin, one per line, each answered with one line on stdout:
"down" and "up" switch the mode ("ok"); "count" gives the requests received while down
and while up ("<down> <up>"). It serves until stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator


def _answer(status: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


UNAVAILABLE = _answer("503 Service Unavailable", b'{"error":"down"}')
OK = _answer("200 OK", b'{"ok":true}')


mode = "down"
delay_seconds = 0.05
received = {"down": 0, "up": 0}


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            current = mode
            received[current] += 1
            if current == "up":
                await asyncio.sleep(delay_seconds)
                writer.write(OK)
            else:
                writer.write(UNAVAILABLE)
    except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
        pass
    finally:
        writer.close()


def obey(stop: asyncio.Event, loop: asyncio.AbstractEventLoop) -> None:
    """Commands from stdin, on a thread of their own (the counts are read as they stand)."""
    global mode
    for line in sys.stdin:
        command = line.strip()
        if command in ("down", "up"):
            mode = command
            print("ok", flush=True)
        elif command == "count":
            print(f"{received['down']} {received['up']}", flush=True)
        else:
            print(f"unknown command {command!r}", flush=True)
    loop.call_soon_threadsafe(stop.set)


async def serve(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    host, bound = server.sockets[0].getsockname()[:2]
    print(f"http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    threading.Thread(target=obey, args=(stop, asyncio.get_running_loop()), daemon=True).start()
    await stop.wait()
    server.close()


class Upstream:
    """The parent's handle on the child: its URL, the mode switch and the counts."""

    def __init__(self, child: subprocess.Popen):
        self.child = child
        self.url = self._ask(None)

    def _ask(self, command: str | None) -> str:
        if command is not None:
            self.child.stdin.write(command + "\n")
            self.child.stdin.flush()
        answer = self.child.stdout.readline().strip()
        if not answer:
            raise SystemExit("the outage upstream stopped")
        return answer

    def set(self, new_mode: str) -> None:
        self._ask(new_mode)

    def counts(self) -> tuple[int, int]:
        down, up = self._ask("count").split()
        return int(down), int(up)


@contextlib.contextmanager
def running(port: int = 0, start_mode: str = "down", delay_ms: int = 50) -> Iterator[Upstream]:
    """The upstream in a child process on port (0: any free one) until the block ends."""
    from bench.common import stdin_child

    with stdin_child([__file__, str(port), start_mode, str(delay_ms)]) as child:
        yield Upstream(child)


if __name__ == "__main__":
    port, mode, delay = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    delay_seconds = delay / 1000
    asyncio.run(serve(port))
