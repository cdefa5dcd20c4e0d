"""Audio and video of CREMA-D: decoding, and OGM-GE's preprocessing (Peng et al., CVPR 2022).

**Audio -> log-spectrogram** (OGM-GE's ``CramedDataset``): the WAV at 22,050 Hz, repeated
("tiled") and cut to exactly 3 s, clipped to [-1, 1], then a short-time Fourier transform with a
512-sample Hann window every 353 samples, and

    S[f, t] = log(|STFT(x)[f, t]| + 1e-7)      f = 0..256 (n_fft / 2 + 1 bins), t = 0..187

(66,150 samples / 353 + 1 = 188 frames with centred windows). Two details where this differs
from running OGM-GE's code, both small: resampling uses ``scipy.signal.resample_poly`` (a
polyphase filter) where ``librosa.load`` uses soxr or resampy; and the signal is zero-padded by
256 samples at each end for the centred windows, librosa's default since 0.9 (before 0.9 it
reflected the signal: only the first and last frame differ). OGM-GE tiles every clip 3 times,
which reaches 3 s for clips of at least 1 s (all of CREMA-D's); shorter clips are tiled as often
as needed, so the shape is always [257, 188].

**Video -> frames**: one frame per second, the first decoded frame at or after 0 s, 1 s, 2 s, ...
(OGM-GE keeps frame 0, fps, 2 fps, ... of each clip: the same frames at a constant frame rate),
resized to 224 x 224 (bilinear, as OGM-GE's test-time ``Resize((224, 224))``, which ignores
the aspect ratio). CREMA-D clips last 2-3 s, so a clip gives 2-3 frames. Decoding the FLV files
needs PyAV (``pip install 'modbal_lib[media]'``), which ships its own FFmpeg.

Readers take a file path, or what an impairment put in its place (``modbal_lib.data.impair``):
a callable that returns the impaired samples or frames.
"""

from __future__ import annotations

import math
import os
import wave
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy.signal import resample_poly

from modbal_lib.data.files import DatasetFileError

SAMPLE_RATE = 22050
CLIP_SECONDS = 3
N_FFT = 512
HOP_LENGTH = 353
LOG_FLOOR = 1e-7
SPECTROGRAM_SHAPE = (N_FFT // 2 + 1, SAMPLE_RATE * CLIP_SECONDS // HOP_LENGTH + 1)  # (257, 188)
FRAME_SIZE = 224
PCM_SCALE = {1: 128.0, 2: 32768.0, 4: 2147483648.0}  # full scale of 8-, 16- and 32-bit PCM
PCM_DTYPE = {1: np.uint8, 2: np.int16, 4: np.int32}


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """(float32 mono samples in [-1, 1], sample rate) of a PCM WAV file; channels are averaged.

    8-bit WAVs are unsigned (silence = 128), 16- and 32-bit signed, as the WAV format defines.
    """
    try:
        with wave.open(os.fspath(path), "rb") as file:
            channels, width, rate = file.getnchannels(), file.getsampwidth(), file.getframerate()
            data = file.readframes(file.getnframes())
    except FileNotFoundError as error:
        raise DatasetFileError(f"audio file {path} does not exist") from error
    except (wave.Error, EOFError, OSError) as error:
        raise DatasetFileError(f"audio file {path} is not a readable PCM WAV file: {error}") from error
    if width not in PCM_DTYPE:
        raise DatasetFileError(f"audio file {path}: {8 * width}-bit samples; expected 8-, 16- or 32-bit PCM")
    usable = len(data) // (width * channels) * width * channels  # a truncated file ends mid-frame
    samples = np.frombuffer(data[:usable], dtype=PCM_DTYPE[width]).astype(np.float32)
    if samples.size == 0:
        raise DatasetFileError(f"audio file {path} holds no audio samples")
    if width == 1:
        samples -= 128.0
    return (samples / PCM_SCALE[width]).reshape(-1, channels).mean(axis=1), rate


def read_audio(item: Any) -> tuple[np.ndarray, int]:
    """An audio entry as (samples, rate): a WAV file path, or a callable returning (samples, rate)."""
    if callable(item):
        return item()
    if isinstance(item, (str, os.PathLike)):
        return read_wav(item)
    raise TypeError(f"audio entry must be a WAV file path or a callable, got {type(item).__name__}")


def resample(samples: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """``samples`` at ``target`` Hz (polyphase filter, up/down factors reduced by their gcd: 16 kHz -> 441/320)."""
    if rate == target:
        return samples
    divisor = math.gcd(rate, target)
    return resample_poly(samples, target // divisor, rate // divisor).astype(np.float32)


def log_spectrogram(samples: np.ndarray, rate: int) -> torch.Tensor:
    """OGM-GE's log-magnitude spectrogram of a clip, float32 [257, 188] (see the module docstring)."""
    if len(samples) == 0:
        raise ValueError("log_spectrogram: the clip has no samples")
    samples = resample(np.asarray(samples, dtype=np.float32), rate)
    length = SAMPLE_RATE * CLIP_SECONDS
    tiled = np.tile(samples, -(-length // len(samples)))[:length]
    clipped = torch.from_numpy(np.clip(tiled, -1.0, 1.0))
    stft = torch.stft(clipped, n_fft=N_FFT, hop_length=HOP_LENGTH, window=torch.hann_window(N_FFT),
                      center=True, pad_mode="constant", return_complex=True)
    return torch.log(stft.abs() + LOG_FLOOR)


def import_av():
    """The PyAV module, or an ImportError saying how to install it."""
    try:
        import av
    except ImportError:
        raise ImportError(
            "decoding video (CREMA-D's FLV files) needs PyAV, which bundles FFmpeg: "
            "pip install 'modbal_lib[media]'  (or: pip install av)"
        ) from None
    return av


def decode_frames(path: str | os.PathLike, size: int = FRAME_SIZE) -> np.ndarray:
    """One frame per second of a video file, uint8 [F, size, size, 3] RGB (see the module docstring)."""
    av = import_av()
    frames, next_second = [], 0.0
    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.video:
                raise DatasetFileError(f"video file {path} has no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate or 1)
            for index, frame in enumerate(container.decode(stream)):
                seconds = frame.time if frame.time is not None else index / rate
                if seconds + 1e-6 >= next_second:
                    picture = frame.to_image().resize((size, size), Image.BILINEAR)
                    frames.append(np.asarray(picture, dtype=np.uint8))
                    next_second = math.floor(seconds + 1e-6) + 1.0
    except FileNotFoundError as error:
        raise DatasetFileError(f"video file {path} does not exist") from error
    except av.error.FFmpegError as error:
        raise DatasetFileError(f"video file {path} is corrupt or not a video FFmpeg can decode: {error}") from error
    if not frames:
        raise DatasetFileError(f"video file {path} holds no decodable frames")
    return np.stack(frames)


def read_video(item: Any) -> np.ndarray:
    """A video entry as uint8 frames [F, H, W, 3]: a video file path, a frames array, or a callable returning one."""
    if isinstance(item, np.ndarray):
        return item
    if callable(item):
        return item()
    if isinstance(item, (str, os.PathLike)):
        return decode_frames(item)
    raise TypeError(f"video entry must be a video file path, a frames array or a callable, got {type(item).__name__}")
