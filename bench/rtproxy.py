#!/usr/bin/env python3
"""A counting TCP proxy for the round-trip figures of docs/performance.md
(the same counting as tests/suite/roundtrip_support.rs, for any binary).

Pipes every client connection to its own upstream connection, parses the
HTTP/1.1 requests on it (head, then a Content-Length or chunked body), and
records per request: connection, method, path, when its head arrived and
when the last answering byte went back. DELAY_MS is added before every chunk
relayed in either direction. On SIGUSR1 it writes what it saw as JSON to
OUT and forgets it.

Usage: rtproxy.py LISTEN_PORT UPSTREAM_HOST:PORT OUT [DELAY_MS]
"""
import asyncio
import json
import signal
import sys
import time

port, upstream, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
delay = (float(sys.argv[4]) if len(sys.argv) > 4 else 0.0) / 1000
state = {"connections": 0, "tls_probes": 0, "requests": []}


def dump(*_):
    with open(out, "w") as f:
        json.dump(state, f)
    state.update(connections=0, tls_probes=0, requests=[])


async def pause():
    if delay:
        await asyncio.sleep(delay)


async def handle(cr, cw):
    state["connections"] += 1
    conn = state["connections"]
    host, p = upstream.rsplit(":", 1)
    ur, uw = await asyncio.open_connection(host, int(p))

    async def back():
        while True:
            data = await ur.read(65536)
            if not data:
                break
            await pause()
            cw.write(data)
            await cw.drain()
            for r in reversed(state["requests"]):
                if r["conn"] == conn:
                    r["answered"] = time.monotonic()
                    break
        cw.close()

    task = asyncio.ensure_future(back())
    try:
        first = await cr.read(1)
        if first == b"\x16":
            state["tls_probes"] += 1
            uw.write(first)
            while True:
                data = await cr.read(65536)
                if not data:
                    break
                uw.write(data)
        else:
            buf = first
            while True:
                while b"\r\n\r\n" not in buf:
                    data = await cr.read(65536)
                    if not data:
                        raise EOFError
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                length, chunked = 0, False
                for l in lines[1:]:
                    k, _, v = l.partition(":")
                    k, v = k.strip().lower(), v.strip()
                    if k == "content-length":
                        length = int(v)
                    elif k == "transfer-encoding" and "chunked" in v.lower():
                        chunked = True
                now = time.monotonic()
                state["requests"].append(
                    {"conn": conn, "method": method, "path": target.split("?")[0], "sent": now, "answered": now})
                await pause()
                uw.write(head + b"\r\n\r\n")
                if chunked:
                    while True:
                        while b"\r\n" not in buf:
                            buf += await cr.read(65536)
                        size_line, buf = buf.split(b"\r\n", 1)
                        size = int(size_line.split(b";")[0], 16)
                        need = size + 2
                        while len(buf) < need:
                            data = await cr.read(65536)
                            if not data:
                                raise EOFError
                            buf += data
                        uw.write(size_line + b"\r\n" + buf[:need])
                        buf = buf[need:]
                        if size == 0:
                            break
                else:
                    while length > 0:
                        if not buf:
                            buf = await cr.read(min(65536, length))
                            if not buf:
                                raise EOFError
                        n = min(len(buf), length)
                        await pause()
                        uw.write(buf[:n])
                        await uw.drain()
                        buf, length = buf[n:], length - n
    except (EOFError, ConnectionError, ValueError):
        pass
    try:
        uw.write_eof()
    except OSError:
        pass
    await task


async def main():
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
