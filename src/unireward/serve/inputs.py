"""Turning request fields into judge inputs, safely.

A media field is a string or an object:
- `"data:image/png;base64,..."`, `"data:video/mp4;base64,..."`: inline bytes (any format PIL or PyAV reads);
- `"data:video/jpeg;base64,<frame>,<frame>,..."` (as vLLM accepts; also video/png): a video as its frames;
- `{"base64": "..."}`: inline bytes without a data-URL header;
- `{"frames": [<media>, ...]}`: a video as a list of frames, each itself a media field;
- `"/abs/path.png"` or `{"path": ...}`: a local file or frame directory, only under the server's allowed roots;
- `"https://..."` or `{"url": ...}`: fetched only when the server runs with --allow-urls, by a `Fetcher` before
  anything else happens to the request (each within the fetch deadline, in threads of their own).
Local files are opened as `ConfinedPath`s: the file actually opened must lie under an allowed root.
Every refusal is a `RequestError` carrying the HTTP status and the reason.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import functools
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import MediaError, MediaMissingError, MediaRefusedError, MediaTooLargeError
from .config import ServeConfig

_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*)(;base64)?,", re.IGNORECASE)
_URL = re.compile(r"^https?://", re.IGNORECASE)
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)  # file:, ftp:, s3:, ... (not data:, http(s):)
_B64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")
_URLSAFE = str.maketrans("-_", "+/")


class RequestError(Exception):
    """A request the server refuses: `status` is the HTTP code, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def media_refusal(e: MediaError, field: str) -> RequestError:
    """The HTTP answer to a media error: 403 refused by policy, 413 over a limit, 422 unusable; names the field."""
    status = 403 if isinstance(e, MediaRefusedError) else 413 if isinstance(e, MediaTooLargeError) else 422
    return RequestError(status, f"{field}: {e}")


def media_candidates(task) -> bool:
    """Whether a task's candidates are media (generation: generated images or videos; editing: edited images)
    rather than text answers (understanding)."""
    return task.domain in ("gen", "edit")


def context_media(task, item: dict, where: str) -> Any:
    """The media a request's candidates are judged against, as sent (`media`, or `source` for an edit's source
    image): none for generation tasks, required for the others."""
    media = item.get("media", item.get("source"))
    if task.domain == "gen":
        if media is not None:
            raise RequestError(422, f"{where}media: task {task.name} judges generated media; send the candidates "
                                    "as media and no `media` field")
    elif media is None:
        what = "the source image that was edited" if task.domain == "edit" else (
            f"the {task.modality} the answers are about")
        raise RequestError(422, f"{where}media is required: task {task.name} judges candidates against {what}")
    return media


def check_text(value: Any, field: str, cfg: ServeConfig) -> str:
    from ..judge import text_problem

    if not isinstance(value, str):
        raise RequestError(422, f"{field} must be a string, got {type(value).__name__}")
    if len(value) > cfg.max_prompt_chars:
        raise RequestError(413, f"{field} has {len(value):,} characters, over the limit of {cfg.max_prompt_chars:,}")
    problem = text_problem(value, field, allow_empty=True)  # a lone surrogate: no tokenizer can encode it
    if problem:
        raise RequestError(422, problem)
    return value


def _b64(data: str, field: str) -> bytes:
    data = re.sub(r"\s+", "", data)
    if not _B64.fullmatch(data):
        raise RequestError(422, f"{field}: invalid base64 data")
    data = data.rstrip("=").translate(_URLSAFE)  # accept the url-safe alphabet and missing padding
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(422, f"{field}: invalid base64 data") from None


def _local_path(path: str, field: str, cfg: ServeConfig) -> Any:
    """A `ConfinedPath` (or, for a frame folder, one per frame); the names are checked here for a clear answer,
    and the media reader checks each file it actually opens again (a name can change between the two)."""
    from ..media import ConfinedPath, frame_files

    if "\0" in path:
        raise RequestError(422, f"{field}: the path holds a NUL byte")
    scheme = _SCHEME.match(path)
    if scheme and len(scheme.group(1)) > 1:  # (one letter: a Windows drive)
        raise RequestError(422, f"{field}: {scheme.group(1)}: URLs are not accepted; send an absolute path under "
                                "an allowed root, an http(s) URL (with --allow-urls) or the media inline (base64)")
    if not cfg.allowed_roots:
        raise RequestError(403, f"{field}: local paths are disabled on this server; send the media inline "
                                "(base64) or start the server with --allowed-root DIR")
    p = Path(path).expanduser()
    if not p.is_absolute():
        raise RequestError(422, f"{field}: local paths must be absolute, got {path!r}")
    resolved = _inside_roots(p, path, field, cfg)
    confined = ConfinedPath(resolved, cfg.allowed_roots)
    if resolved.is_dir():  # a video as a frame folder: every frame file read must be under a root too
        try:
            frames = frame_files(resolved)
        except MediaError as e:
            raise RequestError(422, f"{field}: {e}") from None
        return [confined.child(_inside_roots(f, f"{path}/{f.name}", field, cfg)) for f in frames]
    return confined


def _inside_roots(p: Path, shown: str, field: str, cfg: ServeConfig) -> Path:
    try:
        resolved = p.resolve()  # follows symlinks and '..', so neither can escape a root
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise RequestError(422, f"{field}: {shown} cannot be resolved ({e})") from None
    for root in cfg.allowed_roots:
        if resolved == Path(root) or resolved.is_relative_to(root):
            return resolved
    raise RequestError(403, f"{field}: {shown} is outside the allowed roots")


def media_urls(spec: Any) -> list[str]:
    """The http(s) URLs a media field names (itself, or its frames'), to fetch before the rest of the request."""
    if isinstance(spec, str):
        return [spec] if _URL.match(spec) else []
    if isinstance(spec, dict):
        if isinstance(spec.get("url"), str) and _URL.match(spec["url"]):
            return [spec["url"]]
        if isinstance(spec.get("frames"), list):
            return [u for f in spec["frames"] for u in media_urls(f)]
    return []


class Fetcher:
    """URL media for --allow-urls: fetched in threads of their own (`max_fetches` at a time), each within
    `fetch_timeout_s` in total (waiting for a thread included), following at most `max_redirects` redirects within
    the URL's origin. Slow servers delay only other fetches, never decoding, judging or inline requests."""

    def __init__(self, cfg: ServeConfig):
        self.cfg = cfg
        self._pool = ThreadPoolExecutor(cfg.max_fetches, thread_name_prefix="unireward-fetch")

    async def fetch_all(self, urls: Iterable[str]) -> dict[str, bytes | MediaError]:
        """Each URL's bytes, or the MediaError that says why there are none. Nothing is fetched without
        --allow-urls (`raw_media` refuses the URLs then)."""
        unique = list(dict.fromkeys(urls)) if self.cfg.allow_urls else []
        results = await asyncio.gather(*(self._one(u) for u in unique))
        return dict(zip(unique, results))

    async def _one(self, url: str) -> bytes | MediaError:
        from ..media import fetch_url

        cfg = self.cfg
        fetch = functools.partial(fetch_url, url, timeout_s=cfg.fetch_timeout_s, max_bytes=cfg.max_request_bytes,
                                  max_redirects=cfg.max_redirects)
        try:
            return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(self._pool, fetch),
                                          cfg.fetch_timeout_s)
        except asyncio.TimeoutError:
            return MediaMissingError(f"not fetched within {cfg.fetch_timeout_s:g} s (fetch_timeout_s; other slow "
                                     "fetches were ahead of it); send the media inline", url)
        except MediaError as e:
            return e

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _fetched(url: str, field: str, cfg: ServeConfig, fetched: Mapping[str, Any] | None) -> bytes:
    if not cfg.allow_urls:
        raise RequestError(403, f"{field}: fetching URLs is disabled on this server; send the media inline "
                                "(base64) or start the server with --allow-urls")
    got = (fetched or {}).get(url)
    if got is None:
        raise RuntimeError(f"{field}: {url} was not fetched before its request was read")
    if isinstance(got, MediaError):
        raise media_refusal(got, field)
    return got


def raw_media(spec: Any, field: str, cfg: ServeConfig, fetched: Mapping[str, Any] | None = None) -> Any:
    """The request's media as bytes, a confined path, or a list of frames (for videos). No decoding yet.
    URLs are looked up in `fetched` (`Fetcher.fetch_all` of the request's `media_urls`)."""
    if isinstance(spec, dict):
        keys = set(spec) & {"base64", "path", "url", "frames"}
        if len(keys) != 1:
            raise RequestError(422, f"{field}: a media object needs exactly one of base64, path, url, frames")
        key = keys.pop()
        value = spec[key]
        if key == "frames":
            if not isinstance(value, list) or not value:
                raise RequestError(422, f"{field}.frames must be a non-empty list")
            if len(value) > cfg.max_frames:
                raise RequestError(413, f"{field}: {len(value)} frames, over the limit of {cfg.max_frames}")
            return [raw_media(v, f"{field}.frames[{i}]", cfg, fetched) for i, v in enumerate(value)]
        if not isinstance(value, str):
            raise RequestError(422, f"{field}.{key} must be a string")
        if key == "base64":
            return _b64(value, field)
        if key == "url":
            if not _URL.match(value):
                raise RequestError(422, f"{field}.url must be an http(s) URL")
            return _fetched(value, field, cfg, fetched)
        return _local_path(value, field, cfg)
    if not isinstance(spec, str) or not spec:
        raise RequestError(422, f"{field}: expected a data URL, a path, a URL or a media object")
    m = _DATA_URL.match(spec)
    if m:
        mime = (m.group(1) or "").lower()
        if not m.group(3):
            raise RequestError(422, f"{field}: only base64 data URLs are supported")
        body = spec[m.end():]
        if mime in ("video/jpeg", "video/png"):  # vLLM's frame-list video: comma-separated base64 frames
            frames = body.split(",")
            if len(frames) > cfg.max_frames:
                raise RequestError(413, f"{field}: {len(frames)} frames, over the limit of {cfg.max_frames}")
            return [_b64(f, f"{field} frame {i}") for i, f in enumerate(frames)]
        return _b64(body, field)
    if _URL.match(spec):
        return _fetched(spec, field, cfg, fetched)
    return _local_path(spec, field, cfg)


def load(raw: Any, modality: str, field: str, cfg: ServeConfig, image_policy, video_policy) -> Any:
    """Decode raw media under the judge's policies with the server's pixel, aspect and frame limits."""
    from ..media import load_image, load_video

    try:
        if modality == "image":
            if isinstance(raw, list):
                raise RequestError(422, f"{field}: got a frame list where an image is expected")
            policy = dataclasses.replace(image_policy,
                                         max_source_pixels=min(cfg.max_pixels, image_policy.max_source_pixels))
            out = load_image(raw, policy)
            size = out.size
        else:
            policy = dataclasses.replace(video_policy,
                                         max_source_pixels=min(cfg.max_pixels, video_policy.max_source_pixels))
            out = load_video(raw, policy)  # frames sent were counted in raw_media; the policy bounds those sampled
            size = out.frames[0].size
    except MediaError as e:
        raise media_refusal(e, field) from None
    w, h = size
    if max(w, h) > cfg.max_aspect_ratio * min(w, h):
        what = "image" if modality == "image" else "video's frame size"
        raise RequestError(422, f"{field}: the {what} is {w}x{h}, an aspect ratio of {max(w, h) / min(w, h):g}, "
                                f"over the limit of {cfg.max_aspect_ratio:g} (max_aspect_ratio); pad or crop it")
    return out


def media_hash(raw: Any) -> str:
    from ..media import content_hash

    return content_hash(raw)
