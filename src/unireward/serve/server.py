"""Running the app: `serve()` in the foreground (the CLI), `ServerThread` in the background (tests, benchmarks).

Shutdown is graceful: on SIGINT/SIGTERM (or `ServerThread.stop()`) uvicorn stops accepting connections, waits
up to `graceful_timeout_s` for in-flight requests, and the app then finishes every queued micro-batch.
"""

from __future__ import annotations

import socket
import threading
import time

from ..judge import RewardModel
from .config import ServeConfig


def _uvicorn_config(app, cfg: ServeConfig, log_level: str):
    import uvicorn

    return uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level=log_level, access_log=False,
                          timeout_graceful_shutdown=cfg.graceful_timeout_s, lifespan="on",
                          limit_concurrency=None, timeout_keep_alive=30)


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
