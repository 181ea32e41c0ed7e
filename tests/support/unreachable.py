"""Addresses where a dependency cannot be reached: a closed port, and a silent server.

A closed port refuses at once (nothing listens); a silent server accepts the connection
and then never says a word, so only a client's own timeout ends the wait (a hung
process, or a firewall that drops packets, looks the same from the client's side).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def closed_port() -> int:
    """A loopback port nothing listens on: bound, read and closed again."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def loopback_server(
    on_connection: Callable[[socket.socket], None], *, name: str = "loopback-server"
) -> Iterator[int]:
    """A loopback port whose every connection goes to ``on_connection`` (in the server's
    thread); yields the port. Connections the handler leaves open are closed at the end."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)
            on_connection(connection)

    thread = threading.Thread(target=accept, name=name, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in accepted:
            connection.close()
        listener.close()


@contextmanager
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers; yields the port."""
    with loopback_server(lambda connection: None, name="silent-server") as port:
        yield port
