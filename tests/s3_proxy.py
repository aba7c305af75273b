"""A loopback TCP proxy in front of the S3 server that stalls one PUT where a test wants to kill its writer.

It forwards HTTP/1.1 both ways, reading the client's requests by their framing (request line, headers,
``Content-Length`` body). The first PUT whose path contains ``match`` is held at the chosen point:

- ``stall="body:<fraction>"``: the headers and that fraction of the body reach the server, the rest never does
  (the writer is killed with its PUT in flight; when its socket closes, the server's is closed too, mid-body);
- ``stall="response"``: the whole body reaches the server, and its answer is held back (the store has committed,
  the writer never learns it).

:attr:`StallingProxy.stalled` is set once the PUT is held (for ``response``: once the server's answer arrived,
so the store has finished the write). Everything else passes through untouched.

Example:
    >>> with StallingProxy("127.0.0.1:8333", match="/bars/1m/SPY.", stall="body:0.5") as proxy:
    ...     proxy.url
    'http://127.0.0.1:40123'
"""

from __future__ import annotations

import contextlib
import socket
import threading


class StallingProxy:
    """See the module docstring. ``errors`` collects what the proxy could not handle (e.g. a chunked body)."""

    def __init__(self, upstream: str, *, match: str, stall: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.match = match.encode()
        kind, _, fraction = stall.partition(":")
        if kind not in ("body", "response"):
            raise ValueError(f"stall {stall!r}: use body:<fraction> or response")
        self.hold_response = kind == "response"
        self.fraction = float(fraction) if kind == "body" else 1.0
        self.stalled = threading.Event()
        self.errors: list[str] = []
        self.puts_seen = 0
        self._triggered = False
        self._lock = threading.Lock()
        self._closing = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> StallingProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing = True
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(timeout=10)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._sockets += [client, upstream]
            state = {"held": False, "body_sent": False}
            self._spawn(self._requests, client, upstream, state)
            self._spawn(self._responses, upstream, client, state)

    def _requests(self, client: socket.socket, upstream: socket.socket, state: dict[str, bool]) -> None:
        """Client -> server, one request at a time, the body streamed as it comes."""
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = client.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                method, path = lines[0].split(b" ")[:2]
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
                if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                    self.errors.append(f"a chunked {method.decode()} body: the proxy frames by Content-Length")
                    return
                length = int(headers.get(b"content-length", b"0"))
                with self._lock:
                    self.puts_seen += method == b"PUT"
                    trigger = method == b"PUT" and self.match in path and not self._triggered
                    self._triggered = self._triggered or trigger
                # Set before the last byte goes out, so the server's answer is never forwarded.
                state["held"] = trigger and self.hold_response
                upstream.sendall(head + b"\r\n\r\n")
                allowed = int(length * self.fraction) if trigger else length
                sent = 0
                while sent < length:
                    if not buffer:
                        buffer = client.recv(65536)
                        if not buffer:
                            return
                    take = min(len(buffer), length - sent)
                    part, buffer = buffer[:take], buffer[take:]
                    if sent < allowed:
                        upstream.sendall(part[: allowed - sent])
                    sent += take
                    if trigger and not self.hold_response and sent >= allowed:
                        break
                if not trigger:
                    continue
                if not self.hold_response:
                    self.stalled.set()
                # Held: wait for the writer to die (its socket closes), then close the server's side.
                while client.recv(65536):
                    pass
                return
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_RDWR)

    def _responses(self, upstream: socket.socket, client: socket.socket, state: dict[str, bool]) -> None:
        """Server -> client; once the held PUT is sent whole, its answer is swallowed."""
        try:
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    return
                if state["held"]:
                    self.stalled.set()  # the server answered: the write is committed (or refused) in the store
                    continue
                client.sendall(chunk)
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)
