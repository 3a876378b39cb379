"""Byte forwarders between TCP ports and unix sockets: how a candidate's room and their model server, each in a
network namespace of its own, reach exactly the session's services and nothing else on the machine.

    python3 forward.py LISTEN=TARGET [LISTEN=TARGET ...]      each side tcp:HOST:PORT or unix:PATH

On the host a unix socket per service the room may reach leads to that service's port; inside the room (whose
loopback is its own) the service's port leads to that socket. The standard library only: the file is bound into
the sandboxes, which see none of the repository's packages. It prints `ready` once every listener is bound.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

BUFFER = 65536


def endpoint(text: str) -> tuple:
    """`tcp:HOST:PORT` or `unix:PATH` as ("tcp", host, port) or ("unix", path)."""
    kind, _, rest = text.partition(":")
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        return ("tcp", host, int(port))
    if kind == "unix":
        return ("unix", rest)
    raise ValueError(f"not an endpoint: {text!r} (tcp:HOST:PORT or unix:PATH)")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


def _handler(target: tuple):
    async def handle(client_reader, client_writer):
        try:
            if target[0] == "tcp":
                reader, writer = await asyncio.open_connection(target[1], target[2])
            else:
                reader, writer = await asyncio.open_unix_connection(target[1])
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, writer), _pipe(reader, client_writer))
        for w in (client_writer, writer):
            w.close()

    return handle


async def listen(pairs: list[tuple[tuple, tuple]], socket_mode: int = 0o666) -> list[asyncio.AbstractServer]:
    """Start a listener per (listen, target) pair; the servers, serving."""
    servers = []
    for where, target in pairs:
        if where[0] == "tcp":
            servers.append(await asyncio.start_server(_handler(target), where[1], where[2], reuse_address=True))
        else:
            try:
                os.unlink(where[1])
            except FileNotFoundError:
                pass
            servers.append(await asyncio.start_unix_server(_handler(target), where[1]))
            os.chmod(where[1], socket_mode)
    return servers


def parse(specs: list[str]) -> list[tuple[tuple, tuple]]:
    out = []
    for spec in specs:
        where, _, target = spec.partition("=")
        out.append((endpoint(where), endpoint(target)))
    return out


async def _main(specs: list[str]) -> None:
    servers = await listen(parse(specs))
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
