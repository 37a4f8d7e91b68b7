"""The ``mp4`` and ``webm`` formats: T×H×W×3 uint8 frames as compressed video, through PyAV.

PyAV is optional (``pip install 'thresher[video]'``); it is imported only when a video is encoded
or decoded, and its absence is reported with the package to install.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from thresher.core.bag.bag_errors import DecodeError, EncodeError


def _av() -> Any:
    try:
        import av
    except ImportError as e:
        raise ImportError("the mp4 and webm formats need PyAV: pip install 'av>=14'") from e
    return av


def encode_video(frames: np.ndarray, container: str, codec: str, fps: int = 20) -> bytes:
    """Frames (T×H×W×3 uint8, H and W even) as one video file's bytes."""
    av = _av()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
        raise EncodeError(f"video takes T×H×W×3 uint8 frames with T > 0, got {frames.dtype} {frames.shape}")
    stream_out = io.BytesIO()
    with av.open(stream_out, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for t, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = t
            output.mux(stream.encode(picture))
        output.mux(stream.encode(None))
    return stream_out.getvalue()


def decode_video(buffer: bytes) -> np.ndarray:
    """All frames of a video file as a T×H×W×3 uint8 array."""
    av = _av()
    with av.open(io.BytesIO(buffer)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    if not frames:
        raise DecodeError("video record holds no frames")
    return np.stack(frames)
