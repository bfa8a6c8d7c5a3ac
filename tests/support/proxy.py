"""A TCP proxy that can cut every connection at once: answers already on their way are lost
while the requests behind them were processed, the fault clients' retries must survive."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from tests.support.ports import free_port


class CuttingProxy:
    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self._answers_lost = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                if answers and self._answers_lost.is_set():
                    continue
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source, sink)

    def _close(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                self._sockets.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def cut(self) -> None:
        """Drop every connection now, whatever is in flight in either direction."""
        self.cuts += 1
        with self._lock:
            sockets = list(self._sockets)
        self._close(*sockets)

    @contextlib.contextmanager
    def answers_lost(self) -> Iterator[None]:
        """Inside: requests pass on but the broker's answers are dropped; on exit every
        connection is cut. What was sent inside was processed, and its client never heard."""
        self._answers_lost.set()
        try:
            yield
        finally:
            self.cut()
            self._answers_lost.clear()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()
