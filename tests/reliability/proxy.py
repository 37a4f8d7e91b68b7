"""A TCP proxy on loopback that passes bytes through, and on request misbehaves as a failing endpoint:

- ``cut_after``: drops each connection after that many bytes from the server (a stream cut short);
- ``disappear_after(n)``: the same, and from the first cut on every connection is reset at once (an
  endpoint that disappears mid-stream and stays gone, so a retry that resumes cannot finish);
- ``hold()`` / ``release()``: holds the server's bytes back (a silent endpoint); ``hold_on`` holds them
  from the first request that carries those bytes on (an endpoint that goes silent part way);
- ``delay``: waits that long before passing on each chunk of at most ``chunk`` bytes from the server
  (a slow endpoint that keeps sending);
- ``fail_with``: answers every HTTP request itself with that status (an endpoint returning errors),
  recording them in ``failed_requests``.
"""

from __future__ import annotations

import socket
import struct
import threading
import time


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut_after: int | None = None
        """Close each connection once this many bytes came back from the server (None: never)."""
        self.delay = 0.0
        """Seconds to wait before passing on each chunk from the server."""
        self.chunk = 65536
        """The most bytes passed on from the server at once."""
        self.hold_on: bytes | None = None
        """Hold (as ``hold()``) once a request carrying these bytes (matched in lower case) comes by."""
        self.fail_with: int | None = None
        """An HTTP status to answer every request with, without asking the server (None: pass through)."""
        self.failed_requests: list[str] = []
        """The request line (``GET /path HTTP/1.1``) of each request answered with ``fail_with``."""
        self.released = threading.Event()
        self.released.set()
        self.gone = threading.Event()
        """Set once the endpoint disappeared (``disappear_after``): every connection is reset."""
        self.connections = 0
        self._vanish_on_cut = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def hold(self) -> None:
        """Holds the server's bytes back (the client sees a silent endpoint) until ``release()``."""
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def disappear_after(self, size: int) -> None:
        """Cuts the first connection to send ``size`` bytes back, and resets every connection from then on."""
        self.cut_after = size
        self._vanish_on_cut = True

    def close(self) -> None:
        self._closed = True
        self.released.set()
        self.listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.gone.is_set():
                _reset(client)
                continue
            if self.fail_with is not None:
                threading.Thread(target=self._answer_with_failures, args=(client, self.fail_with), daemon=True).start()
                continue
            server = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, downstream: bool) -> None:
        """Copies ``source`` to ``sink``; only the server-to-client (``downstream``) side is held, slowed or cut."""
        limit = self.cut_after if downstream else None
        sent = 0
        try:
            while not self.gone.is_set():
                data = source.recv(self.chunk if downstream else 65536)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    sink.sendall(data[: limit - sent])
                    if self._vanish_on_cut:
                        self._disappear()
                    break
                if not downstream and self.hold_on is not None and self.hold_on in data.lower():
                    self.hold()  # before the request goes on, so its answer is held
                if downstream:
                    self.released.wait()
                    if self.delay:
                        time.sleep(self.delay)  # the fault being simulated: a slow endpoint
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _disappear(self) -> None:
        self.gone.set()
        with self._lock:
            sockets, self._sockets = list(self._sockets), []
        for sock in sockets:
            _reset(sock)

    def _answer_with_failures(self, client: socket.socket, status: int) -> None:
        """Answers each request on the connection with ``status`` (keep-alive, as real endpoints do)."""
        body = b'{"error": {"code": %d, "message": "injected fault"}}' % status
        answer = (
            b"HTTP/1.1 %d Injected Fault\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (status, len(body))
            + body
        )
        buffered = b""
        try:
            with client:
                while True:
                    while b"\r\n\r\n" not in buffered:
                        data = client.recv(65536)
                        if not data:
                            return
                        buffered += data
                    head, _, buffered = buffered.partition(b"\r\n\r\n")
                    length = _content_length(head)
                    while len(buffered) < length:  # read the body, so none is left unread when answering
                        data = client.recv(65536)
                        if not data:
                            return
                        buffered += data
                    buffered = buffered[length:]
                    with self._lock:
                        self.failed_requests.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
                    client.sendall(answer)
        except OSError:
            pass


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _reset(sock: socket.socket) -> None:
    """Closes ``sock`` with a TCP reset, as a vanished host's network stack answers."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Wakes a pump blocked reading it (close alone would not), without the FIN that SHUT_WR sends.
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()
