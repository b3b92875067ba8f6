"""Images and videos for the judge: loading, frame sampling, resizing, and clear errors for bad input.

    from unireward.media import VideoPolicy, load_image, load_video
    img = load_image("cat.png")                                    # RGB, at most 1024*1024 pixels
    vid = load_video("clip.mp4", VideoPolicy(num_frames=8))        # 8 frames, uniform over the whole clip
    vid.describe()  # {"source": "clip.mp4", "indices": [0, 4, ...], "fps": ..., "policy": {...}, ...}

One declared policy decides which frames a video contributes and how large they are; it is recorded on every
judge result. Sources may be paths, bytes, PIL images, numpy arrays, frame lists, frame directories, or (only
when asked for) http(s) URLs (`fetch_url`). Bad input raises a `MediaError` subclass that names the source and
the fix. PyAV is imported on first video use, never at import time.

What is read: files the reader opens itself (`open_file`: regular files only; a `ConfinedPath` only under its
roots, checked on the open file), decoded only as IMAGE_FORMATS or VIDEO_CONTAINERS. Decoders get open files,
never names, so no protocol, file pattern or reference is interpreted; playlists and concat lists are refused
(`MediaRefusedError`), never followed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import re
import stat
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import (ConfigError, MediaCorruptError, MediaEmptyError, MediaError, MediaMissingError,
                     MediaRefusedError, MediaTooLargeError, UnsupportedMediaError)

log = logging.getLogger(__name__)
_URL_RE = re.compile(r"^https?://", re.IGNORECASE)

# What the decoders may read: plain files of these formats, opened by us (never by name inside a decoder, so no
# protocol, pattern or reference is ever interpreted). PIL: no EPS (it runs Ghostscript). FFmpeg demuxers of one
# self-contained stream; never hls, dash, concat, image2 (file patterns) or anything else that opens other files.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "PPM", "TGA", "ICO", "AVIF", "JPEG2000")
VIDEO_CONTAINERS = ("mov", "matroska", "avi", "gif", "apng", "mpeg", "mpegts", "flv", "ogg", "asf", "ivf", "h264",
                    "hevc", "mpegvideo", "m4v")
# options for avformat_open_input: the demuxer whitelist, no protocol for any file a demuxer might try to open,
# and no external data references in QuickTime files (the mov demuxer's `enable_drefs`)
_AV_OPTIONS = {"format_whitelist": ",".join(VIDEO_CONTAINERS), "protocol_whitelist": "none", "enable_drefs": "0"}
# the first bytes of files that name other files: HLS and other M3U playlists, ffconcat lists, PLS, DASH/SMIL XML
_REFERENCE_LISTS = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:#EXTM3U|#EXT-X-|ffconcat\b|\[playlist\]|<\?xml|<MPD|<smil)",
                              re.IGNORECASE)


@dataclass(frozen=True)
class ImagePolicy:
    """How images are admitted: a pixel budget to resize down to, and a refusal limit for huge headers."""

    max_pixels: int = 1024 * 1024  # larger images are resized down, keeping aspect, to fit this budget
    max_source_pixels: int = 64_000_000  # decompression-bomb guard: refuse images whose header declares more

    def __post_init__(self) -> None:
        if self.max_pixels < 1 or self.max_source_pixels < 1:
            raise ConfigError(f"ImagePolicy pixel limits must be positive, got {self}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VideoPolicy:
    """Which frames of a video the judge sees, and how large.

    num_frames: k frames uniform over the whole clip, indices = floor(linspace(0, n-1, k)) (the published
        GenAI-Bench protocol; a clip shorter than k repeats frames so every video gives exactly k).
    rounding: "floor" (the published scripts' `linspace(...).astype(int)`) or "nearest".
    fps: instead, about this many frames per second of video, min(n, max_frames) at most, spread uniformly.
    """

    num_frames: int | None = 8
    fps: float | None = None
    max_frames: int = 32
    max_pixels: int = 448 * 448  # per-frame pixel budget, resized down keeping aspect
    max_source_pixels: int = 16_000_000  # per-frame decode limit
    max_duration_s: float = 600.0  # longer videos are refused
    rounding: str = "floor"  # how linspace positions become frame indices: "floor" or "nearest"
    # Qwen2/3-VL video processors: apply qwen-vl-utils' per-frame pixel cap on top of `max_pixels` (True) or not
    # (False, transformers' behaviour so far, which every shipped result used); passed to the processor explicitly
    cap_pixels_per_frame: bool = False

    def __post_init__(self) -> None:
        if self.rounding not in ("floor", "nearest"):
            raise ConfigError(f"VideoPolicy: rounding must be 'floor' or 'nearest', got {self.rounding!r}")
        if (self.num_frames is None) == (self.fps is None):
            raise ConfigError("VideoPolicy: set exactly one of num_frames and fps, e.g. VideoPolicy(num_frames=8) "
                              "or VideoPolicy(num_frames=None, fps=2.0)")
        if self.num_frames is not None and not 1 <= self.num_frames <= self.max_frames:
            raise ConfigError(f"VideoPolicy: num_frames={self.num_frames} must be in 1..max_frames "
                              f"({self.max_frames}); raise max_frames to sample more")
        if self.fps is not None and not self.fps > 0:
            raise ConfigError(f"VideoPolicy: fps must be positive, got {self.fps}")
        if self.max_frames < 1 or self.max_pixels < 1 or self.max_source_pixels < 1 or not self.max_duration_s > 0:
            raise ConfigError(f"VideoPolicy limits must be positive, got {self}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def image_policy(self) -> ImagePolicy:
        """The policy one frame given as an image file or array is loaded under."""
        return ImagePolicy(max_pixels=self.max_pixels, max_source_pixels=self.max_source_pixels)


@dataclass
class Video:
    """Sampled, resized RGB frames of one video and how they were chosen."""

    frames: list[Image.Image]
    fps: float  # effective rate of the sampled frames: source_fps * len(frames) / num_source_frames
    indices: list[int]  # which source frames were taken, in order
    source: str | None  # a path or URL, or a description: "frames", "array", "bytes"
    policy: VideoPolicy

    def to_array(self) -> np.ndarray:
        """The frames as one (T, H, W, 3) uint8 array."""
        return np.stack([np.asarray(f.convert("RGB")) for f in self.frames])

    def describe(self) -> dict[str, Any]:
        w, h = self.frames[0].size if self.frames else (0, 0)
        return {"source": self.source, "indices": list(self.indices), "num_frames": len(self.frames),
                "fps": self.fps, "frame_size": [w, h], "policy": self.policy.to_dict()}


# ---------------------------------------------------------------- images


def load_image(src: Any, policy: ImagePolicy = ImagePolicy(), allow_urls: bool = False) -> Image.Image:
    """An RGB image from a path, bytes, PIL image, numpy array or (with `allow_urls`) an http(s) URL.

    Arrays may be (H, W, 3|4) uint8, floats in [0, 1], or (H, W) grayscale. Images with alpha are composited
    on white; EXIF orientation is applied; images over `policy.max_pixels` are resized down keeping aspect.
    """
    if isinstance(src, Image.Image):
        img = _checked_decode(lambda: src, "<PIL image>", policy.max_source_pixels)
    elif isinstance(src, np.ndarray):
        img = _image_from_array(src)
        _check_pixels(img.size, policy.max_source_pixels, "<array>")
    elif isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        if not data:
            raise MediaEmptyError("image bytes are empty; pass the file's contents")
        img = _checked_decode(lambda: _open_image(io.BytesIO(data)), "<bytes>", policy.max_source_pixels)
    elif isinstance(src, str) and _URL_RE.match(src):
        return load_image(_fetch_allowed(src, allow_urls), policy)
    elif isinstance(src, (str, os.PathLike)):
        with open_file(src) as f:
            img = _checked_decode(lambda: _open_image(f), os.fspath(src), policy.max_source_pixels)
    else:
        raise UnsupportedMediaError(f"cannot load an image from {type(src).__name__}; pass a path, bytes, "
                                    "a PIL image or an (H, W, 3) uint8 array")
    return _fit(img, policy.max_pixels)


def _checked_decode(open_image: Callable[[], Image.Image], name: str, max_source_pixels: int) -> Image.Image:
    """Open lazily, refuse oversized headers before decoding, decode fully, and return an RGB copy."""
    try:
        with warnings.catch_warnings():  # we apply our own, stricter limit below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = open_image()
    except Image.DecompressionBombError as e:
        raise MediaTooLargeError(f"image is too large to decode safely ({e})", name) from None
    except UnidentifiedImageError:
        suffix = Path(name).suffix.lower()
        kind = MediaCorruptError if suffix in Image.registered_extensions() else UnsupportedMediaError
        raise kind(f"not a readable image (contents not recognised as any of {', '.join(IMAGE_FORMATS)}); "
                   "check the file, or re-save it as PNG or JPEG", name) from None
    except OSError as e:
        raise MediaCorruptError(f"image could not be opened ({e}); re-save it as PNG or JPEG", name) from None
    _check_pixels(img.size, max_source_pixels, name)
    try:
        img.load()  # Image.open is lazy: this is where truncated or corrupt data shows up
        img = ImageOps.exif_transpose(img)
        return _to_rgb(img)
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, zlib and struct errors here
        raise MediaCorruptError(f"image data is truncated or corrupt ({type(e).__name__}: {e}); "
                                "re-download or re-save the file", name) from None


def _open_image(f: Any) -> Image.Image:
    """PIL's lazy open, restricted to the allowed image formats (those this Pillow build reads)."""
    Image.init()
    return Image.open(f, formats=[name for name in IMAGE_FORMATS if name in Image.OPEN])


def _check_pixels(size: tuple[int, int], limit: int, name: str) -> None:
    w, h = size
    if w * h > limit:
        raise MediaTooLargeError(f"{w}x{h} = {w * h:,} pixels exceeds the limit of {limit:,} "
                                 "(max_source_pixels); downscale it first or raise the policy's limit", name)


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB; transparent areas become white rather than whatever colour hides under zero alpha."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def _image_from_array(a: np.ndarray) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or a.size == 0:
        raise UnsupportedMediaError(f"image array has shape {a.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0:
            raise UnsupportedMediaError("float image arrays must hold finite values in [0, 1]; "
                                        "pass uint8 for 0-255 data")
        a = np.round(a * 255.0).astype(np.uint8)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        raise UnsupportedMediaError(f"image arrays must be uint8 or float in [0, 1], got {a.dtype}")
    return _to_rgb(Image.fromarray(np.ascontiguousarray(a)))


def _fit_size(w: int, h: int, max_pixels: int) -> tuple[int, int]:
    """The largest size with the same aspect that fits the pixel budget (never upscales)."""
    if w * h <= max_pixels:
        return w, h
    scale = math.sqrt(max_pixels / (w * h))
    return max(1, int(w * scale)), max(1, int(h * scale))


def _fit(img: Image.Image, max_pixels: int, size: tuple[int, int] | None = None) -> Image.Image:
    size = size or _fit_size(*img.size, max_pixels)
    return img if img.size == size else img.resize(size, Image.Resampling.BICUBIC)


# ---------------------------------------------------------------- videos


def load_video(src: Any, policy: VideoPolicy = VideoPolicy(), allow_urls: bool = False) -> Video:
    """Sample a video under `policy`.

    `src` is a video file path, its bytes, a directory of frame images (natural sort order), a list of frames
    (paths, PIL images or arrays), a (T, H, W, 3) array, an existing `Video` (re-sampled; indices keep
    referring to its source), or (with `allow_urls`) an http(s) URL. Frame lists have no timing, so they are
    taken to run at `policy.fps`, or 1 fps when the policy counts frames. Only sampled frames are decoded.
    """
    if isinstance(src, Video):
        return _sample_frames(src.frames, src.fps, policy, src.source, src.indices)
    if isinstance(src, np.ndarray):
        if src.ndim != 4 or src.shape[0] == 0:
            raise UnsupportedMediaError(f"video array has shape {src.shape}; expected (T, H, W, 3)")
        return _sample_frames(list(src), policy.fps or 1.0, policy, "array")
    if isinstance(src, (list, tuple)):
        if not src:
            raise MediaEmptyError("the frame list is empty")
        return _sample_frames(list(src), policy.fps or 1.0, policy, "frames")
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        if not data:
            raise MediaEmptyError("video bytes are empty; pass the file's contents")
        return _decode_file(lambda: io.BytesIO(data), "<bytes>", policy, source="bytes")
    if isinstance(src, str) and _URL_RE.match(src):
        data = _fetch_allowed(src, allow_urls)
        return _decode_file(lambda: io.BytesIO(data), src, policy, source=src)
    if isinstance(src, (str, os.PathLike)):
        if os.path.isdir(src):
            return _sample_frames(folder_frames(src), policy.fps or 1.0, policy, os.fspath(src))
        return _decode_file(lambda: open_file(src), os.fspath(src), policy, source=os.fspath(src))
    raise UnsupportedMediaError(f"cannot load a video from {type(src).__name__}; pass a path, bytes, a frame "
                                "directory, a list of frames or a (T, H, W, 3) array")


def load_media(src: Any, modality: str, image_policy: ImagePolicy = ImagePolicy(),
               video_policy: VideoPolicy = VideoPolicy(), allow_urls: bool = False) -> Image.Image | Video:
    """`load_image` or `load_video`, chosen by `modality` ("image" or "video")."""
    if modality == "image":
        return load_image(src, image_policy, allow_urls=allow_urls)
    if modality == "video":
        return load_video(src, video_policy, allow_urls=allow_urls)
    raise ConfigError(f"unknown modality {modality!r}; expected 'image' or 'video'")


def sample_indices(n: int, source_fps: float, policy: VideoPolicy) -> list[int]:
    """Indices of the source frames to take from a clip of `n` frames at `source_fps`."""
    if policy.num_frames is not None:
        k = policy.num_frames
    else:
        k = min(n, policy.max_frames, max(1, round(n * policy.fps / source_fps)))
    positions = np.linspace(0, n - 1, k)
    return [int(i) for i in (np.floor(positions) if policy.rounding == "floor" else np.round(positions))]


def _sample_frames(frames: list[Any], source_fps: float, policy: VideoPolicy, source: str | None,
                   source_indices: Sequence[int] | None = None) -> Video:
    """Sample from frames already at hand (loading only the chosen ones); resize all to one size."""
    idx = sample_indices(len(frames), source_fps, policy)
    loaded: dict[int, Image.Image] = {}
    for i in idx:
        if i not in loaded:
            loaded[i] = load_image(frames[i], policy.image_policy())
    # Frames of one video share one size: the first sampled frame's, fitted to the budget.
    size = _fit_size(*loaded[idx[0]].size, policy.max_pixels)
    picked = [_fit(loaded[i], policy.max_pixels, size) for i in idx]
    orig = [source_indices[i] for i in idx] if source_indices is not None else idx
    return Video(picked, source_fps * len(idx) / len(frames), orig, source, policy)


def _decode_file(open_input: Callable[[], Any], name: str, policy: VideoPolicy, source: str) -> Video:
    """A video file's frames, after refusing what is not one self-contained video: a list naming other files
    (403: its references are never followed) and a still image."""
    with open_input() as f:
        head = f.read(64)
    if _REFERENCE_LISTS.match(head):
        raise MediaRefusedError("a playlist or concat list (a file naming other files) was given where a video is "
                                "expected; references are never followed: send the video file itself", name)
    _refuse_still_image(open_input, name, policy)
    return _decode_video(open_input, name, policy, source)


def _refuse_still_image(open_input: Callable[[], Any], name: str, policy: VideoPolicy) -> None:
    """Before any video decoder sees the data: an image file is checked against the pixel limit from its
    header (so a decompression bomb is never decoded), and a still image is refused (it is not a video, and
    judging it as k copies of one frame would be a silent guess)."""
    with warnings.catch_warnings(), open_input() as f:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with _open_image(f) as img:
                fmt, size, frames = img.format, img.size, getattr(img, "n_frames", 1)
        except Image.DecompressionBombError as e:
            raise MediaTooLargeError(f"image is too large to decode safely ({e})", name) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            return  # not an image PIL may read: a video container, left to PyAV
    _check_pixels(size, policy.max_source_pixels, name)
    if frames == 1:
        raise UnsupportedMediaError(f"a still image ({fmt} {size[0]}x{size[1]}) was given where a video is "
                                    "expected; pass a video file, a frame folder or a list of frames, or use an "
                                    "image task", name)


def frame_files(folder: Path) -> list[Path]:
    """The image files of a frame folder, in natural sort order (frame2 before frame10)."""
    exts = set(Image.registered_extensions())
    files = [p for p in folder.iterdir()
             if p.is_file() and p.suffix.lower() in exts and not p.name.startswith(".")]
    if not files:
        raise MediaEmptyError("the frame directory holds no image files", str(folder))
    natural = lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]  # noqa: E731
    return sorted(files, key=natural)


def folder_frames(folder: str | os.PathLike[str]) -> list[Any]:
    """`frame_files` of a folder as paths to open: each frame of a `ConfinedPath` folder is confined to the same
    roots (and the folder itself is checked first, by what was opened)."""
    if isinstance(folder, ConfinedPath):
        folder.check_folder()
        return [folder.child(f) for f in frame_files(Path(folder))]
    return frame_files(Path(folder))


def _decode_video(open_input: Callable[[], Any], name: str, policy: VideoPolicy, source: str) -> Video:
    """Decode a container with PyAV in two sequential passes: count packets, then decode the chosen frames."""
    import av

    def run(step: Callable[[Any], Any]) -> Any:
        try:
            with open_input() as f, av.open(f, mode="r", options=dict(_AV_OPTIONS)) as container:
                return step(container)
        except MediaError:
            raise
        except av.error.ArgumentError as e:  # EINVAL at open: a demuxer that is not on the whitelist
            raise UnsupportedMediaError(f"not a video in an allowed container ({', '.join(VIDEO_CONTAINERS)}; "
                                        f"{e.strerror}); re-encode it, e.g. ffmpeg -i in -c:v libx264 out.mp4",
                                        name) from None
        except (av.error.FFmpegError, EOFError, ValueError) as e:
            raise MediaCorruptError(f"video could not be decoded ({type(e).__name__}: {e}); the file may be "
                                    "truncated or not a video; re-encode it, e.g. ffmpeg -i in -c:v libx264 "
                                    "out.mp4", name) from None

    def probe(container: Any) -> tuple[int, float, float | None]:
        if not container.streams.video:
            raise MediaEmptyError("the file has no video stream (audio only?)", name)
        stream = container.streams.video[0]
        _check_pixels((stream.codec_context.width, stream.codec_context.height), policy.max_source_pixels, name)
        duration = None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000  # AV_TIME_BASE
        _check_duration(duration, policy, name)
        rate = float(stream.average_rate or stream.guessed_rate or 0.0)
        count = sum(1 for packet in container.demux(stream) if packet.size)
        if stream.frames and count < stream.frames:  # the index promises frames the data no longer holds
            raise MediaCorruptError(f"video is truncated: the container declares {stream.frames} frames but "
                                    f"holds {count}; re-download or re-encode it", name)
        return count, rate, duration

    def decode(wanted: set[int]) -> Callable[[Any], tuple[dict[int, Image.Image], int]]:
        def step(container: Any) -> tuple[dict[int, Image.Image], int]:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            size = _fit_size(stream.codec_context.width, stream.codec_context.height, policy.max_pixels)
            got: dict[int, Image.Image] = {}
            seen = 0
            for i, frame in enumerate(container.decode(stream)):
                seen = i + 1
                if i in wanted:
                    _check_pixels((frame.width, frame.height), policy.max_source_pixels, name)
                    got[i] = _fit(frame.to_image(), policy.max_pixels, size)
                    if len(got) == len(wanted):
                        break
            return got, seen
        return step

    n, rate, duration = run(probe)
    if n == 0:
        raise MediaEmptyError("the video stream holds no frames; re-export the video", name)
    if not rate:
        rate = n / duration if duration else 1.0
    if duration is None:
        _check_duration(n / rate, policy, name)
    idx = sample_indices(n, rate, policy)
    got, seen = run(decode(set(idx)))
    if len(got) < len(set(idx)):  # fewer frames decode than packets promised: sample what is really there
        if seen == 0:
            raise MediaEmptyError("no frame of the video could be decoded; re-encode it", name)
        log.warning("%s: %d packets decoded to %d frames; sampling over the decoded frames", name, n, seen)
        n, idx = seen, sample_indices(seen, rate, policy)
        got, _ = run(decode(set(idx)))
        if len(got) < len(set(idx)):
            raise MediaCorruptError("frames decode differently on each pass; re-encode the video", name)
    return Video([got[i] for i in idx], rate * len(idx) / n, idx, source, policy)


def _check_duration(duration: float | None, policy: VideoPolicy, name: str) -> None:
    if duration is not None and duration > policy.max_duration_s:
        raise MediaTooLargeError(f"video lasts {duration:.1f} s, over the limit of {policy.max_duration_s:g} s "
                                 "(max_duration_s); trim it or raise the policy's limit", name)


# ---------------------------------------------------------------- shared helpers


class ConfinedPath(os.PathLike):
    """A local path that is read only if the file actually opened lies under one of `roots`.

    The check is made on the open file descriptor (the path the kernel resolved for it), not on the name, so a
    file or folder swapped for a symlink between a check and the open cannot lead outside the roots.
    """

    def __init__(self, path: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]]):
        self.path = os.fspath(path)
        self.roots = tuple(os.path.realpath(r) for r in roots)

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"ConfinedPath({self.path!r}, roots={list(self.roots)!r})"

    def child(self, path: str | os.PathLike[str]) -> "ConfinedPath":
        """Another path under the same roots (e.g. a frame of this folder)."""
        out = ConfinedPath.__new__(ConfinedPath)
        out.path, out.roots = os.fspath(path), self.roots
        return out

    def check_opened(self, fd: int) -> None:
        """Raise MediaRefusedError unless the file open as `fd` lies under one of the roots."""
        real = _opened_path(fd)
        if real is None:  # no way to ask the kernel here: compare the file opened with the one the name leads to
            real = os.path.realpath(self.path)
            st, now = os.fstat(fd), os.stat(real)
            if (st.st_dev, st.st_ino) != (now.st_dev, now.st_ino):
                raise MediaRefusedError("the file changed while it was opened; send it again", self.path)
        if not any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in self.roots):
            raise MediaRefusedError("outside the allowed roots", self.path)

    def check_folder(self) -> None:
        """Raise MediaRefusedError unless this path opens as a folder under one of the roots."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as e:
            raise MediaMissingError(f"the folder cannot be opened ({e.strerror})", self.path) from None
        try:
            self.check_opened(fd)
        finally:
            os.close(fd)


def _opened_path(fd: int) -> str | None:
    """The path of an open file as the kernel resolved it (Linux: /proc/self/fd; macOS: F_GETPATH)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass
    try:
        import fcntl
    except ImportError:
        return None
    if not hasattr(fcntl, "F_GETPATH"):
        return None
    try:
        raw = fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024))
    except OSError:
        return None
    return os.fsdecode(raw.split(b"\0", 1)[0]) or None


def open_file(src: str | os.PathLike[str]) -> io.BufferedReader:
    """Open a media file for reading: a regular, non-empty file (never a folder, FIFO or device: a FIFO does not
    even block the open), and for a `ConfinedPath` one whose opened file lies under its roots. Errors name it."""
    name = os.fspath(src)
    if "\0" in name:
        raise UnsupportedMediaError("the path holds a NUL byte", ascii(name))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(name, flags)
    except FileNotFoundError:
        hint = "" if os.path.isabs(name) else f" (relative paths resolve against {Path.cwd()})"
        raise MediaMissingError(f"no such file; check the path{hint}", name) from None
    except OSError as e:
        raise MediaMissingError(f"the file cannot be opened ({e.strerror})", name) from None
    try:
        if isinstance(src, ConfinedPath):
            src.check_opened(fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsupportedMediaError("not a regular file", name)
        if st.st_size == 0:
            raise MediaEmptyError("the file is empty (0 bytes); re-download or re-export it", name)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _fetch_allowed(url: str, allow_urls: bool) -> bytes:
    if not allow_urls:
        raise UnsupportedMediaError("fetching URLs is disabled; pass allow_urls=True (or download the file "
                                    "and pass its path)", url)
    return fetch_url(url)


_REDIRECTS = (301, 302, 303, 307, 308)


def fetch_url(url: str, *, timeout_s: float = 30.0, max_bytes: int = 1 << 30, max_redirects: int = 3) -> bytes:
    """The body at an http(s) URL, all of it within `timeout_s` (connecting, redirects and reading together),
    following at most `max_redirects` redirects and only within the URL's origin (scheme, host and port); a
    MediaError naming the URL otherwise. Direct connections only (no proxy); DNS lookups are not timed."""
    import urllib.parse

    deadline = time.monotonic() + timeout_s
    origin = _origin(url)
    current = url
    for _ in range(max_redirects + 1):
        status, location, body = _http_get(current, deadline, max_bytes, url, timeout_s)
        if status in _REDIRECTS:
            if not location:
                raise MediaMissingError(f"HTTP {status} redirect without a Location header", url)
            target = urllib.parse.urljoin(current, location)
            if _origin(target) != origin:
                raise MediaRefusedError(f"redirected to {target}, another origin (scheme, host or port); redirects "
                                        "are followed only within the URL's own origin: send the final URL", url)
            current = target
            continue
        if status != 200:
            raise MediaMissingError(f"could not fetch the URL (HTTP {status})", url)
        if not body:
            raise MediaEmptyError("the URL returned no data", url)
        return body
    raise MediaMissingError(f"more than {max_redirects} redirect(s) (max_redirects); send the final URL", url)


def _origin(url: str) -> tuple[str, str, int]:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise UnsupportedMediaError("not a valid http(s) URL", url)
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def _http_get(target: str, deadline: float, max_bytes: int, url: str, timeout_s: float):
    """(status, Location, body) of one GET; a watchdog shuts the socket at the deadline, so no slow server (one
    byte at a time) can hold the caller past it."""
    import http.client
    import socket
    import urllib.parse

    def too_slow() -> MediaError:
        return MediaMissingError(f"no complete answer within {timeout_s:g} s (the fetch deadline); the server is "
                                 "too slow: download the file and send it inline", url)

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise too_slow()
    scheme, host, port = _origin(target)
    parts = urllib.parse.urlsplit(target)
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    conn = cls(host, port, timeout=remaining)
    expired = threading.Event()
    sockets: list[socket.socket] = []  # the connection forgets its socket once a response will close it

    def expire() -> None:
        expired.set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    watchdog = threading.Timer(remaining, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.connect()
        sockets.append(conn.sock)
        if expired.is_set():
            raise too_slow()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers={"User-Agent": "unireward", "Accept-Encoding": "identity"})
        response = conn.getresponse()
        if response.status != 200:
            return response.status, response.getheader("Location"), b""
        declared = response.getheader("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise MediaTooLargeError(f"the download of {int(declared):,} bytes exceeds {max_bytes:,}; download it "
                                     "yourself", url)
        chunks, size = [], 0
        while chunk := response.read1(1 << 16):
            size += len(chunk)
            if size > max_bytes:
                raise MediaTooLargeError(f"the download exceeds {max_bytes:,} bytes; download it yourself", url)
            chunks.append(chunk)
        if expired.is_set():  # the watchdog's shutdown reads as the end of the data
            raise too_slow()
        return 200, None, b"".join(chunks)
    except (OSError, http.client.HTTPException) as e:
        if expired.is_set() or isinstance(e, TimeoutError):
            raise too_slow() from None
        raise MediaMissingError(f"could not fetch the URL ({type(e).__name__}: {e})", url) from None
    finally:
        watchdog.cancel()
        conn.close()


def content_hash(obj: Any) -> str:
    """A stable content hash (first 16 hex digits of sha256) for caches.

    Files hash by their bytes (so a path and its bytes agree), PIL images by mode, size and pixels, arrays by
    dtype, shape and data, videos by their frames and fps, frame lists and directories by their items, and URLs
    by their text (nothing is fetched).
    """
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()[:16]


def _feed(h: Any, obj: Any) -> None:
    def tagged(tag: str, payload: bytes) -> None:
        h.update(f"{tag}:{len(payload)}:".encode())
        h.update(payload)

    if isinstance(obj, (bytes, bytearray, memoryview)):
        tagged("bytes", bytes(obj))
    elif isinstance(obj, Image.Image):
        tagged("image", f"{obj.mode}:{obj.size[0]}x{obj.size[1]}".encode())
        h.update(obj.tobytes())
    elif isinstance(obj, np.ndarray):
        tagged("array", f"{obj.dtype.str}:{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, Video):
        tagged("video", f"{len(obj.frames)}:{obj.fps!r}".encode())
        for frame in obj.frames:
            _feed(h, frame)
    elif isinstance(obj, (list, tuple)):
        tagged("list", str(len(obj)).encode())
        for item in obj:
            _feed(h, item)
    elif isinstance(obj, str) and _URL_RE.match(obj):
        tagged("url", obj.encode())
    elif isinstance(obj, (str, os.PathLike)):
        if os.path.isdir(obj):
            _feed(h, folder_frames(obj))
            return
        with open_file(obj) as f:
            h.update(f"bytes:{os.fstat(f.fileno()).st_size}:".encode())
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    else:
        raise UnsupportedMediaError(f"cannot hash {type(obj).__name__}; pass media (a path, bytes, image, "
                                    "array or Video)")
