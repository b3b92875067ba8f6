"""Running the app: `serve()` in the foreground (the CLI), `ServerThread` in the background (tests, benchmarks).

Shutdown is graceful: on SIGINT/SIGTERM (or `ServerThread.stop()`) uvicorn stops accepting connections, waits
up to `graceful_timeout_s` for in-flight requests (the batcher keeps judging them), cancels those still running
(their queued work is dropped), and the app then finishes the model call under way.

HTTP/1.1 is uvicorn's h11 protocol with one change: a request line and headers over `max_header_bytes` get an
HTTP 431 answer naming the limit (uvicorn answers 400 and closes while the client still sends, which the client
sees as a dropped connection).
"""

from __future__ import annotations

import json
import socket
import threading
import time

from ..judge import RewardModel
from .config import ServeConfig


def _protocol():
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        draining = False

        def send_400_response(self, msg: str) -> None:
            limit = self.config.h11_max_incomplete_event_size
            if limit is None or len(self.conn.trailing_data[0]) <= limit:  # not the size: uvicorn's own 400
                return super().send_400_response(msg)
            body = json.dumps({"error": {"message": f"the request line and headers are over the limit of {limit:,} "
                                                   "bytes (max_header_bytes)",
                                         "type": "request_too_large", "code": 431}}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            for event in (h11.Response(status_code=431, headers=headers), h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
            # read (and drop) what the client is still sending for a moment, so that it reads this answer
            # rather than a connection reset; then close
            self.draining = True
            self.loop.call_later(5.0, self.transport.close)

        def data_received(self, data: bytes) -> None:
            if not self.draining:
                super().data_received(data)

    return Protocol


def _uvicorn_config(app, cfg: ServeConfig, log_level: str):
    import uvicorn

    return uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level=log_level, access_log=False,
                          timeout_graceful_shutdown=cfg.graceful_timeout_s, lifespan="on",
                          limit_concurrency=None, timeout_keep_alive=30, http=_protocol(),
                          h11_max_incomplete_event_size=cfg.max_header_bytes)


def serve(rm: RewardModel, cfg: ServeConfig, log_level: str = "info") -> None:
    """Run in the foreground until SIGINT/SIGTERM; returns normally after a clean drain (so the process exits 0
    on SIGTERM, where uvicorn would re-raise the signal and die of it)."""
    import contextlib
    import signal

    import uvicorn

    from .app import create_app

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                try:
                    yield
                finally:  # the drain finished: a SIGTERM asked for exactly that, do not die of it afterwards
                    self._captured_signals[:] = [s for s in self._captured_signals if s != signal.SIGTERM]

    _Server(_uvicorn_config(create_app(rm, cfg), cfg, log_level)).run()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerThread:
    """A real uvicorn server on a loopback port, in a daemon thread.

        with ServerThread(rm, ServeConfig(port=0)) as srv:
            httpx.post(srv.url + "/v1/rank", json=...)
    """

    def __init__(self, rm: RewardModel, cfg: ServeConfig | None = None, log_level: str = "warning"):
        import uvicorn

        from .app import create_app

        self.cfg = cfg or ServeConfig()
        if not self.cfg.port:
            self.cfg.port = free_port(self.cfg.host)
        self.app = create_app(rm, self.cfg)
        self.server = uvicorn.Server(_uvicorn_config(self.app, self.cfg, log_level))
        self.server.install_signal_handlers = lambda: None  # not the main thread
        self._thread = threading.Thread(target=self.server.run, daemon=True, name="unireward-serve")

    @property
    def url(self) -> str:
        return f"http://{self.cfg.host}:{self.cfg.port}"

    def start(self, timeout: float = 30.0) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
