"""Media loading: good inputs of every kind, and real broken files that must fail with the right error."""

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unireward.errors import (ConfigError, MediaCorruptError, MediaEmptyError, MediaError, MediaMissingError,
                              MediaTooLargeError, UnsupportedMediaError)
from unireward.media import (ImagePolicy, Video, VideoPolicy, content_hash, load_image, load_media,
                             load_video)

av = pytest.importorskip("av")


# ---------------------------------------------------------------- fixtures


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _noise(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write_video(path: Path, n: int = 30, fps: int = 10, w: int = 64, h: int = 48, **options: str) -> Path:
    """An n-frame clip whose frame i is filled with grey level 8*i, so decoded frames identify themselves."""
    codec = next(c for c in ("libx264", "mpeg4") if c in av.codecs_available)
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 8 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return _write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


def _grey_index(frame: Image.Image) -> int:
    """Which source frame a decoded frame of `_write_video` is (lossy codecs are close, not exact)."""
    return int(round(np.asarray(frame).mean() / 8))


# ---------------------------------------------------------------- images: good input


def test_image_from_every_kind_of_source(tmp_path):
    arr = _noise()
    path = tmp_path / "a.png"
    Image.fromarray(arr).save(path)
    for src in (path, str(path), path.read_bytes(), Image.fromarray(arr), arr):
        img = load_image(src)
        assert img.mode == "RGB" and img.size == (64, 48)
        assert np.array_equal(np.asarray(img), arr)


def test_image_from_float_and_grayscale_arrays():
    img = load_image(np.full((4, 5, 3), 1.0, np.float32))
    assert img.size == (5, 4) and np.asarray(img).min() == 255
    gray = load_image(np.arange(20, dtype=np.uint8).reshape(4, 5))
    assert gray.mode == "RGB" and np.asarray(gray)[0, 1].tolist() == [1, 1, 1]
    with pytest.raises(UnsupportedMediaError, match=r"\[0, 1\]"):
        load_image(np.full((4, 5, 3), 2.0))
    with pytest.raises(UnsupportedMediaError, match="shape"):
        load_image(np.zeros((4, 5, 7), np.uint8))


def test_transparent_pixels_become_white():
    rgba = np.zeros((2, 2, 4), np.uint8)  # fully transparent black
    assert np.asarray(load_image(Image.fromarray(rgba, "RGBA"))).min() == 255


def test_large_image_resized_to_budget_keeping_aspect():
    img = load_image(Image.new("RGB", (400, 100)), ImagePolicy(max_pixels=10_000))
    w, h = img.size
    assert w * h <= 10_000 and (w, h) == (200, 50)
    small = load_image(Image.new("RGB", (10, 10)), ImagePolicy(max_pixels=10_000))
    assert small.size == (10, 10)  # never upscaled


def test_load_media_dispatches(tmp_path, clip):
    path = tmp_path / "a.png"
    Image.new("RGB", (3, 3)).save(path)
    assert isinstance(load_media(path, "image"), Image.Image)
    assert isinstance(load_media(clip, "video"), Video)
    with pytest.raises(ConfigError):
        load_media(path, "audio")


# ---------------------------------------------------------------- images: bad input


def test_missing_file(tmp_path):
    with pytest.raises(MediaMissingError, match="no such file") as e:
        load_image(tmp_path / "nope.png")
    assert e.value.path.endswith("nope.png") and isinstance(e.value, FileNotFoundError)


@pytest.mark.parametrize("name", ["empty.png", "empty.mp4"])
def test_zero_byte_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    loader = load_video if name.endswith(".mp4") else load_image
    with pytest.raises(MediaEmptyError, match="empty"):
        loader(path)


@pytest.mark.parametrize("fmt,suffix", [("PNG", "png"), ("JPEG", "jpg")])
def test_truncated_image_errors_instead_of_loading_partially(tmp_path, fmt, suffix):
    buf = io.BytesIO()
    Image.fromarray(_noise()).save(buf, fmt)
    path = tmp_path / f"half.{suffix}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(MediaCorruptError, match="truncated") as e:
        load_image(path)
    assert str(path) in str(e.value)


def test_text_file_named_png_and_unknown_bytes(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("definitely not a picture")
    with pytest.raises(MediaCorruptError, match="not a readable image"):
        load_image(path)
    with pytest.raises(UnsupportedMediaError, match="not a readable image"):
        load_image(b"definitely not a picture")


def _png_declaring(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR chunk (with a correct CRC) claims another size."""
    data = bytearray(_png_bytes(Image.new("RGB", (1, 1))))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # CRC over chunk type + IHDR data
    return bytes(data)


@pytest.mark.parametrize("side", [10_000, 100_000])  # over our limit; over PIL's own bomb limit too
def test_decompression_bomb_refused_from_header(tmp_path, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_declaring(side, side))
    pil_limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(MediaTooLargeError, match="too large|exceeds"):
        load_image(path)
    assert Image.MAX_IMAGE_PIXELS == pil_limit  # the global limit is left alone


def test_pixel_limit_is_the_policy_s():
    img = Image.new("RGB", (100, 100))
    with pytest.raises(MediaTooLargeError, match="max_source_pixels"):
        load_image(img, ImagePolicy(max_source_pixels=9_999))


def test_unsupported_types_and_urls():
    with pytest.raises(UnsupportedMediaError, match="dict"):
        load_image({"path": "a.png"})
    with pytest.raises(UnsupportedMediaError, match="dict"):
        load_video({"path": "a.mp4"})
    for loader in (load_image, load_video):
        with pytest.raises(UnsupportedMediaError, match="allow_urls=True"):
            loader("https://example.com/a.png")


# ---------------------------------------------------------------- videos: good input


def test_video_uniform_frames_follow_the_published_protocol(clip):
    video = load_video(clip)
    expected = [int(i) for i in np.floor(np.linspace(0, 29, 8))]  # published protocol: astype(int)
    assert video.indices == expected == [0, 4, 8, 12, 16, 20, 24, 29]
    assert [_grey_index(f) for f in video.frames] == expected  # the frames really are those frames
    assert video.fps == pytest.approx(10 * 8 / 30)
    assert video.to_array().shape == (8, 48, 64, 3) and video.to_array().dtype == np.uint8


def test_video_fps_policy_and_pixel_budget(clip):
    video = load_video(clip, VideoPolicy(num_frames=None, fps=2.0, max_pixels=32 * 24))
    assert video.indices == [int(i) for i in np.floor(np.linspace(0, 29, 6))]  # 3 s at 2 fps
    assert video.fps == pytest.approx(2.0)
    assert video.frames[0].size == (32, 24)
    capped = load_video(clip, VideoPolicy(num_frames=None, fps=100.0, max_frames=4))
    assert len(capped.frames) == 4


def test_video_from_bytes_and_describe(clip):
    policy = VideoPolicy(num_frames=4)
    video = load_video(clip.read_bytes(), policy)
    d = video.describe()
    assert d["source"] == "bytes" and d["indices"] == [0, 9, 19, 29] and d["frame_size"] == [64, 48]
    assert d["policy"] == policy.to_dict() and d["policy"]["num_frames"] == 4


def test_frame_lists_arrays_directories_and_resampling(tmp_path):
    arrays = [np.full((12, 16, 3), 8 * i, np.uint8) for i in range(10)]
    for i, a in enumerate(arrays):  # names that sort wrongly as text: f_2 before f_10
        Image.fromarray(a).save(tmp_path / f"f_{i}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    policy = VideoPolicy(num_frames=4)
    sources = {"frames": [Image.fromarray(a) for a in arrays], "array": np.stack(arrays),
               str(tmp_path): tmp_path}
    for expected_source, src in sources.items():
        video = load_video(src, policy)
        assert video.source == expected_source and video.indices == [0, 3, 6, 9]
        assert [_grey_index(f) for f in video.frames] == [0, 3, 6, 9]
        assert video.fps == pytest.approx(0.4)  # frame lists run at 1 fps unless the policy says otherwise
    paths = load_video([tmp_path / f"f_{i}.png" for i in range(10)], policy)
    again = load_video(paths, VideoPolicy(num_frames=2))
    assert again.indices == [0, 9] and again.source == "frames"  # indices refer to the original clip


def test_short_clip_repeats_frames(tmp_path):
    video = load_video([np.zeros((4, 4, 3), np.uint8)] * 3, VideoPolicy(num_frames=8))
    assert video.indices == [0, 0, 0, 0, 1, 1, 1, 2] and len(video.frames) == 8


def test_video_policy_validation():
    with pytest.raises(ConfigError, match="exactly one"):
        VideoPolicy(num_frames=8, fps=2.0)
    with pytest.raises(ConfigError, match="max_frames"):
        VideoPolicy(num_frames=64)


# ---------------------------------------------------------------- videos: bad input


def test_random_bytes_and_truncated_video(tmp_path, clip):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    half = tmp_path / "half.mp4"  # index (moov) at the end: the container does not open
    half.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    streamable = _write_video(tmp_path / "faststart.mp4", movflags="faststart")
    cut = tmp_path / "cut.mp4"  # index first: it opens, but holds fewer frames than the index declares
    cut.write_bytes(streamable.read_bytes()[: streamable.stat().st_size * 2 // 3])
    for path in (junk, half, cut):
        with pytest.raises(MediaCorruptError, match="truncated|could not be decoded") as e:
            load_video(path)
        assert str(path) in str(e.value)


def test_audio_only_container_is_empty(tmp_path):
    path = tmp_path / "audio.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(MediaEmptyError, match="no video stream"):
        load_video(path)


def test_video_stream_without_frames_is_empty(tmp_path):
    path = tmp_path / "noframes.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = 64, 48
        container.start_encoding()
    with pytest.raises(MediaEmptyError, match="no frames"):
        load_video(path)


def test_video_limits(clip):
    with pytest.raises(MediaTooLargeError, match="max_duration_s"):
        load_video(clip, VideoPolicy(max_duration_s=1.0))
    with pytest.raises(MediaTooLargeError, match="max_source_pixels"):
        load_video(clip, VideoPolicy(max_source_pixels=1000))


def test_every_error_is_a_media_error():
    assert all(issubclass(c, MediaError) for c in (MediaCorruptError, MediaEmptyError, MediaMissingError,
                                                   MediaTooLargeError, UnsupportedMediaError))


# ---------------------------------------------------------------- hashing and imports


def test_content_hash_is_stable_and_content_based(tmp_path, clip):
    a, b = Image.fromarray(_noise(seed=1)), Image.fromarray(_noise(seed=2))
    path = tmp_path / "a.png"
    a.save(path)
    assert content_hash(a) == content_hash(a.copy()) and len(content_hash(a)) == 16
    assert content_hash(a) != content_hash(b)
    assert content_hash(path) == content_hash(path.read_bytes()) == content_hash(str(path))
    v8, v4 = load_video(clip), load_video(clip, VideoPolicy(num_frames=4))
    assert content_hash(v8) == content_hash(load_video(clip)) != content_hash(v4)
    assert content_hash(np.zeros(3)) != content_hash(np.zeros(4))
    with pytest.raises(UnsupportedMediaError):
        content_hash({"a": 1})


def test_import_is_light():
    code = "import sys, unireward.media; print('torch' in sys.modules, 'av' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_nearest_rounding_is_an_option():
    from unireward.media import VideoPolicy, sample_indices

    assert sample_indices(16, 8.0, VideoPolicy(num_frames=8)) == [0, 2, 4, 6, 8, 10, 12, 15]
    assert sample_indices(16, 8.0, VideoPolicy(num_frames=8, rounding="nearest")) == [0, 2, 4, 6, 9, 11, 13, 15]
