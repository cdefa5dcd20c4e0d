"""Impairments of raw inputs (before any encoder), as in BalGrad section 4.1: pure, seeded functions.

- **missing**: image -> a blank image; text -> ""; vector -> zeros; audio -> 3 s of silence;
  video -> a single blank frame (the frame-averaged features of any number of blank frames).
- **noisy**: image -> salt-and-pepper on 30% of the pixels (each hit pixel set to black or white
  with probability 1/2); text -> each whitespace token deleted with probability 0.15; vector ->
  Gaussian noise with each feature's own standard deviation (over the given samples), so a noisy
  vector has about twice the variance of a clean one; audio -> white Gaussian noise with the
  clip's own standard deviation (signal-to-noise ratio 0 dB); video -> salt-and-pepper on every
  frame. BalGrad defines image and text only; the audio and video rules are this kit's, chosen
  to match the vector rule (noise as strong as the signal) and the image rule.
- **ratio** r: exactly round(r N) samples are impaired, the first ones of a permutation drawn from
  ``seed``; so the impaired set at a smaller ratio is a subset of the one at a larger ratio.

Every random draw for sample i comes from its own generator, seeded by (seed, i). The impaired
version of sample i is therefore the same whatever the ratio, and features at ratio r equal clean
features with the rows of the chosen samples taken from the ratio-1 features
(``modbal_lib.features`` uses that to sweep ratios without running an encoder again).

Two blanks for a missing image: ``"black"`` (zeros) is BalGrad's protocol and the usual choice
for photographs; ``"white"`` (255) is the emoji background, so a white blank is an emoji with
nothing drawn on it (content gone, picture still in-distribution), whereas a black square is also
far from anything the encoder saw in training. Which one is used changes how much the missing
modality's features move, and so how hard a model is hit: chapter material, not a detail.

Token deletion is per token (Bernoulli 0.15) rather than exactly 15% of each text, because emoji
names have two or three tokens: rounding 15% of three tokens would delete nothing.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from modbal_lib.data.files import open_image
from modbal_lib.media import CLIP_SECONDS, FRAME_SIZE, SAMPLE_RATE, read_audio, read_video

HOWS = ("missing", "noisy")
BLANKS = {"black": 0, "white": 255}
NOISY_PIXEL_SHARE = 0.30
NOISY_TOKEN_SHARE = 0.15
BLANK_SIZE = 224  # side of the blank that replaces a missing image file (encoders resize anyway)


def chosen_indices(num_samples: int, ratio: float, seed: int) -> np.ndarray:
    """Sorted indices of the round(ratio N) samples to impair: a prefix of a seeded permutation."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"impairment ratio must be in [0, 1], got {ratio!r}")
    order = np.random.default_rng(seed).permutation(num_samples)
    return np.sort(order[: round(ratio * num_samples)])


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of sample ``index``: depends on (seed, index) only."""
    return np.random.default_rng([seed, int(index)])


def salt_and_pepper(image: np.ndarray, rng: np.random.Generator, share: float = NOISY_PIXEL_SHARE) -> np.ndarray:
    """Set round(share H W) distinct pixels (all channels) to 0 or 255, each with probability 1/2."""
    height, width = image.shape[:2]
    hit = rng.choice(height * width, size=round(share * height * width), replace=False)
    noisy = image.copy().reshape(height * width, -1)
    noisy[hit] = (rng.integers(0, 2, size=len(hit)) * 255)[:, None]
    return noisy.reshape(image.shape)


def drop_tokens(text: str, rng: np.random.Generator, share: float = NOISY_TOKEN_SHARE) -> str:
    """Delete each whitespace-separated token with probability ``share``."""
    tokens = text.split()
    keep = rng.random(len(tokens)) >= share
    return " ".join(token for token, kept in zip(tokens, keep) if kept)


def read_image(item: Any) -> np.ndarray:
    """An image entry as uint8 [H, W, 3]: an array, an image file path, or a deferred impaired file.

    Files are decoded by ``open_image`` (transparency composited onto white; a missing or corrupt
    file is a ``DatasetFileError`` naming it).
    """
    if isinstance(item, np.ndarray):
        return item
    if callable(item):
        return item()
    if isinstance(item, (str, os.PathLike)):
        return open_image(item)
    raise TypeError(f"image entry must be an array, a file path or a callable, got {type(item).__name__}")


def impair_image(image: np.ndarray, how: str, rng: np.random.Generator, blank: str) -> np.ndarray:
    if how == "missing":
        return np.full_like(image, BLANKS[blank])
    return salt_and_pepper(image, rng)


def impaired_image_file(path: str | os.PathLike, how: str, seed: int, index: int, blank: str) -> np.ndarray:
    """Impaired image ``index`` read from ``path`` (deferred, so a large dataset is never all in memory)."""
    if how == "missing":
        return np.full((BLANK_SIZE, BLANK_SIZE, 3), BLANKS[blank], dtype=np.uint8)
    return impair_image(read_image(path), how, sample_rng(seed, index), blank)


def impaired_audio_file(path: str | os.PathLike, how: str, seed: int, index: int, blank: str) -> tuple[np.ndarray, int]:
    """Impaired clip ``index`` read from ``path``: (samples, rate). ``blank`` does not apply to audio."""
    if how == "missing":
        return np.zeros(SAMPLE_RATE * CLIP_SECONDS, dtype=np.float32), SAMPLE_RATE
    samples, rate = read_audio(path)
    noise = sample_rng(seed, index).standard_normal(len(samples)).astype(np.float32)
    return samples + samples.std() * noise, rate


def impaired_video_file(path: str | os.PathLike, how: str, seed: int, index: int, blank: str) -> np.ndarray:
    """Impaired clip ``index`` read from ``path``: uint8 frames [F, H, W, 3]."""
    if how == "missing":
        return np.full((1, FRAME_SIZE, FRAME_SIZE, 3), BLANKS[blank], dtype=np.uint8)
    rng = sample_rng(seed, index)
    return np.stack([salt_and_pepper(frame, rng) for frame in read_video(path)])


IMPAIRED_FILE = {"image": impaired_image_file, "audio": impaired_audio_file, "video": impaired_video_file}


def impair(kind: str, inputs: Any, how: str, *, ratio: float = 1.0, seed: int = 0, blank: str = "black") -> Any:
    """A copy of one modality's raw ``inputs`` with round(ratio N) seeded samples impaired by ``how``.

    ``kind`` is the modality kind: "image" (uint8 [N, H, W, 3], or a list of arrays / file paths),
    "text" (list of str), "vector" (float [N, D]), "audio" or "video" (lists of file paths). An
    impaired file becomes a deferred callable that ``read_image`` / ``media.read_audio`` /
    ``media.read_video`` resolves, so a large dataset is never all in memory.
    """
    if how not in HOWS:
        raise ValueError(f"impairment must be one of {HOWS}, got {how!r}")
    if blank not in BLANKS:
        raise ValueError(f"blank must be one of {tuple(BLANKS)}, got {blank!r}")
    rows = chosen_indices(len(inputs), ratio, seed)
    if kind == "image" and isinstance(inputs, np.ndarray):
        out = inputs.copy()
        for i in rows:
            out[i] = impair_image(inputs[i], how, sample_rng(seed, i), blank)
        return out
    if kind in IMPAIRED_FILE:
        out = list(inputs)
        for i in rows:
            if kind == "image" and isinstance(inputs[i], np.ndarray):
                out[i] = impair_image(inputs[i], how, sample_rng(seed, i), blank)
            else:
                out[i] = functools.partial(IMPAIRED_FILE[kind], inputs[i], how, seed, int(i), blank)
        return out
    if kind == "text":
        out = list(inputs)
        for i in rows:
            out[i] = "" if how == "missing" else drop_tokens(inputs[i], sample_rng(seed, i))
        return out
    if kind == "vector":
        out = np.array(inputs, dtype=np.float32)
        feature_std = out.std(axis=0)
        for i in rows:
            out[i] = 0.0 if how == "missing" else out[i] + feature_std * sample_rng(seed, i).standard_normal(out.shape[1])
        return out
    raise ValueError(f"no impairment for modality kind {kind!r}; supported kinds: image, text, vector, audio, video")
