"""The reward server: native rank/score/rank-group endpoints and an OpenAI-compatible chat completions API.

    unireward serve --model path/to/judge --port 8000            # loopback only, no key
    curl -s localhost:8000/v1/score -d '{"task": "image-gen/point", "prompt": "a red circle",
                                          "candidate": "data:image/png;base64,..."}'

`create_app(reward_model, ServeConfig(...))` builds the ASGI app; `serve(...)` runs it under uvicorn;
`ServerThread` runs it on a free loopback port in a background thread (tests, benchmarks, notebooks).
"""

from .config import ServeConfig

__all__ = ["ServeConfig", "create_app", "serve", "ServerThread"]


def __getattr__(name):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name in ("serve", "ServerThread"):
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module 'unireward.serve' has no attribute {name!r}")
