"""``python -m modbal_lib gpucheck``: what a GPU gives this kit, measured in one short run.

Three measurements, written as ``gpucheck.json`` and ``gpucheck.md`` into ``--out`` (default
``results/gpucheck``):

1. **Feature extraction** with the two offline encoders (``modbal_lib.encoders``): EfficientNet-Lite0
   on synthetic JPEG files and MiniLM on synthetic texts, in items per second, with decoding (JPEG
   decode and resize in DataLoader workers; tokenisation) and without it (the network alone on
   pictures already resized to 224 x 224, on texts already tokenised), in the precision feature
   extraction uses (``MODBAL_PRECISION`` on CUDA, fp32 on a CPU).
2. **Each method's training step** on a Food-101-sized synthetic feature set (two 768-d modalities,
   "image" and "text", 101 classes, batch 128; the image modality carries the class more clearly, so
   it dominates as on the real data), trained as the kit trains on that device (bf16 autocast on CUDA):
   the median step time (``train.StepClock``: CUDA events on a GPU),
   its ratio to joint training's, and the peak GPU memory of the method's training (on a CPU: "n/a
   (CPU)"). MSLR takes fixed learning-rate scales of 1 (its step costs the same whatever they are).
3. **Mixed precision**: joint training for one epoch of the whole feature set in fp32 and under
   bf16 and fp16 autocast (``train(amp=True, amp_dtype=...)``; fp16 without loss scaling), same seed;
   the share of test predictions that agree with the fp32 model, and the test accuracies.

Sizes: ``FULL`` (the default; 1-2 minutes on one GPU by the estimate in ``FULL_ESTIMATE``) or
``SMALL`` (``--small``: seconds on a CPU; the test command runs it). Nothing here downloads anything:
the encoders are the offline ones and every input is synthetic.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from modbal_lib import encoders
from modbal_lib.evaluate import predict
from modbal_lib.featureset import FeatureSet
from modbal_lib.train import AMP_DTYPES, interleaved_step_seconds, pooled_median_step_seconds, train
from modbal_lib.utils import atomic_path, select_device, silent_progress

METHODS = {  # label -> (method, options): every method of the cost table
    "joint": ("joint", {}),
    "joint_unimodal_heads": ("joint_unimodal_heads", {}),
    "ogm_ge": ("ogm_ge", {}),
    "mslr": ("mslr", {"lr_scales": {"image": 1.0, "text": 1.0}}),
    "pcgrad": ("pcgrad", {}),
    "balgrad": ("balgrad", {}),
    "cggm": ("cggm", {}),
    "cggm_official": ("cggm", {"variant": "official"}),
    "goal": ("goal", {}),
}
NOT_ON_CPU = "n/a (CPU)"
COST_ROUNDS = 4  # the method step times are taken in this many rounds of every method in turn
FULL_ESTIMATE = (
    "1-2 minutes on one GPU, estimated from the CPU (not yet measured on a GPU): on 2 CPU cores the parts "
    "other than the encoders take about 40 s of CPU time (the synthetic data 12 s; 9 x 200 method steps 17 s at "
    "3-10 ms a step; three one-epoch trainings of 592 steps about 8 s), and a GPU runs these small steps at "
    "least as fast; the encoders, minutes on a CPU (EfficientNet-Lite0 about 15 images/s), take seconds at "
    "the thousands of items per second of a GPU; CUDA start-up and model loading add 10-20 s")


@dataclass(frozen=True)
class Sizes:
    """How much each measurement runs."""

    images: int          # synthetic JPEG files for EfficientNet-Lite0
    texts: int           # synthetic texts for MiniLM
    encoder_batch: int   # items per encoder call
    train: int           # samples of the synthetic feature set (Food-101's train split: 75,750)
    test: int            # its test samples (Food-101: 25,250)
    dim: int             # features per modality
    classes: int
    batch_size: int
    timed_steps: int     # training steps per method for the step time (on the first samples)


FULL = Sizes(images=1024, texts=4096, encoder_batch=128, train=75_750, test=25_250, dim=768, classes=101,
             batch_size=128, timed_steps=200)
SMALL = Sizes(images=8, texts=32, encoder_batch=8, train=512, test=256, dim=768, classes=101, batch_size=128,
              timed_steps=4)


def check_out(out_dir: str | Path) -> Path:
    """The output folder, refused at once if it is a file (before anything runs)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"gpucheck --out {str(out_dir)!r} is a file; expected a folder (created if missing)")
    return out_dir


def synthetic_features(sizes: Sizes, split: str, seed: int = 0) -> FeatureSet:
    """Food-101-shaped features: per class a random mean in each modality, plus unit noise; the image
    means are 3 times farther apart than the text means, so the image modality dominates. Train and test
    share the class means (``seed``) and draw their own samples."""
    means = torch.Generator().manual_seed(seed)
    centres = {m: scale * torch.randn(sizes.classes, sizes.dim, generator=means) / sizes.dim ** 0.5
               for m, scale in (("image", 3.0), ("text", 1.0))}
    samples = torch.Generator().manual_seed(seed + (1 if split == "train" else 2))
    n = sizes.train if split == "train" else sizes.test
    labels = torch.randint(0, sizes.classes, (n,), generator=samples)
    features = {m: centre[labels] + torch.randn(n, sizes.dim, generator=samples) for m, centre in centres.items()}
    return FeatureSet(("image", "text"), features, labels, "multiclass", [f"class_{k}" for k in range(sizes.classes)])


def synthetic_jpegs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` 320 x 240 JPEG files of coloured rectangles on a gradient (photo-like sizes and entropy)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 320, dtype=np.float32)
    paths = []
    for k in range(count):
        pixels = np.broadcast_to(ramp[None, :, None], (240, 320, 3)) * rng.uniform(0.3, 1.0, 3)
        pixels = pixels + rng.normal(0, 12, (240, 320, 3))
        for _ in range(4):
            top, left = rng.integers(0, 200), rng.integers(0, 280)
            pixels[top : top + 40, left : left + 40] = rng.uniform(0, 255, 3)
        path = folder / f"image_{k:05d}.jpg"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def synthetic_texts(count: int, seed: int = 0) -> list[str]:
    """``count`` recipe-like texts of 8-40 words."""
    rng = np.random.default_rng(seed)
    words = ("grilled chicken salad with fresh tomato basil garlic sauce crispy fried rice noodles soup "
             "chocolate cake cream cheese pancakes maple syrup spicy beef tacos lime avocado sushi roll").split()
    return [" ".join(rng.choice(words, rng.integers(8, 41))) for _ in range(count)]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _per_second(count: int, run, device: torch.device) -> float:
    """Items per second of ``run()`` over ``count`` items (the device's queue drained before and after)."""
    _synchronize(device)
    began = time.perf_counter()
    run()
    _synchronize(device)
    return count / (time.perf_counter() - began)


def _network_only(device: torch.device, run_batch, batches: list) -> None:
    """The network on ready batches, in inference mode and in the precision ``encoders.encode`` uses."""
    dtype = encoders.PRECISIONS[encoders.precision(device)]
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
        for batch in batches:
            run_batch(batch)


def encoder_throughput(sizes: Sizes, device: torch.device, workers: int) -> dict:
    """Items per second of EfficientNet-Lite0 and MiniLM, with and without decoding (see the module docstring)."""
    results = {}
    batch = sizes.encoder_batch
    with tempfile.TemporaryDirectory() as folder, silent_progress():
        paths = synthetic_jpegs(Path(folder), sizes.images)
        encode_files = lambda: encoders.encode("image", paths, "efficientnet_lite0", device=device,  # noqa: E731
                                              batch_size=batch, workers=workers)
        encoders.encode("image", paths[:batch], "efficientnet_lite0", device=device, batch_size=batch)  # load, warm up
        with_decode = _per_second(len(paths), encode_files, device)
        pictures = [encoders.resized_image(path, encoders.EFFICIENTNET_SIZE) for path in paths]
        model = encoders.load_efficientnet(str(device))
        run = lambda pictures_batch: encoders.efficientnet_features(model, device, pictures_batch)  # noqa: E731
        batches = [pictures[i : i + batch] for i in range(0, len(pictures), batch)]
        without_decode = _per_second(len(pictures), lambda: _network_only(device, run, batches), device)
    results["efficientnet_lite0"] = {"items": len(paths), "with_decode_per_s": with_decode,
                                     "without_decode_per_s": without_decode}

    texts = synthetic_texts(sizes.texts)
    with silent_progress():
        encoders.encode("text", texts[:batch], "minilm", device=device, batch_size=batch)  # load, warm up
        with_tokens = _per_second(len(texts), lambda: encoders.encode("text", texts, "minilm", device=device,
                                                                      batch_size=batch), device)
    model, tokenizer = encoders.load_transformers(str(encoders.minilm_folder()), "text", str(device), True)
    tokenized = [tokenizer(texts[i : i + batch], padding=True, truncation=True, return_tensors="pt").to(device)
                 for i in range(0, len(texts), batch)]
    run = lambda tokens: encoders.mean_pool(model(**tokens).last_hidden_state, tokens["attention_mask"])  # noqa: E731
    without_tokens = _per_second(len(texts), lambda: _network_only(device, run, tokenized), device)
    results["minilm"] = {"items": len(texts), "with_decode_per_s": with_tokens, "without_decode_per_s": without_tokens}
    precision = encoders.precision(device)
    return {name: {**entry, "precision": precision} for name, entry in results.items()}


def method_costs(sizes: Sizes, features: FeatureSet, device: torch.device) -> dict:
    """Per method: median step time (ms) over ``sizes.timed_steps`` steps, timed in turn
    (``train.interleaved_step_seconds``: one epoch of every method per round, over the first samples), ratio
    to joint, peak GPU memory (MB)."""
    rounds = min(COST_ROUNDS, sizes.timed_steps)
    per_round = -(-sizes.timed_steps // rounds)
    timed = features.take(torch.arange(min(len(features), per_round * sizes.batch_size)))
    train(timed, "joint", epochs=1, batch_size=sizes.batch_size, device=device, record=False, show_progress=False)
    runs = interleaved_step_seconds(timed, METHODS, rounds, batch_size=sizes.batch_size, device=device)
    costs = {}
    for label, results in runs.items():
        costs[label] = {"step_ms": 1000 * pooled_median_step_seconds(results),
                        "peak_memory_mb": max(r.peak_memory_mb for r in results) if device.type == "cuda" else NOT_ON_CPU}
    for entry in costs.values():
        entry["ratio_to_joint"] = entry["step_ms"] / costs["joint"]["step_ms"]
    return costs


def precision_agreement(sizes: Sizes, features: FeatureSet, test: FeatureSet, device: torch.device) -> dict:
    """One epoch of joint training in fp32 and under each autocast precision, from the same seed: the share
    of test predictions equal to the fp32 model's (%) and the test accuracies (%)."""
    def trained(**amp) -> torch.Tensor:
        model = train(features, "joint", epochs=1, batch_size=sizes.batch_size, device=device, record=False,
                      show_progress=False, **amp).model
        return predict(model, test).argmax(dim=1)

    reference = trained(amp=False)
    accuracy = lambda predictions: 100 * float((predictions == test.labels).float().mean())  # noqa: E731
    results = {"fp32": {"accuracy": accuracy(reference)}}
    for name in AMP_DTYPES:
        predictions = trained(amp=True, amp_dtype=name)
        results[name] = {"accuracy": accuracy(predictions),
                         "agreement_with_fp32": 100 * float((predictions == reference).float().mean())}
    return results


def run(out_dir: str | Path = "results/gpucheck", *, small: bool = False, device: str | None = None) -> dict:
    """Measure everything (see the module docstring) and write gpucheck.json and gpucheck.md into ``out_dir``."""
    started = time.perf_counter()
    out_dir = check_out(out_dir)
    device = select_device(device)
    sizes = SMALL if small else FULL
    workers = 0 if small else min(8, os.cpu_count() or 1)
    train_set, test_set = synthetic_features(sizes, "train"), synthetic_features(sizes, "test")
    results = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU",
        "torch": torch.__version__, "machine": platform.platform(), "size": "small" if small else "full",
        "sizes": asdict(sizes), "decode_workers": workers, "full_size_estimate": FULL_ESTIMATE,
        "encoders": encoder_throughput(sizes, device, workers),
        "methods": method_costs(sizes, train_set, device),
        "precision": precision_agreement(sizes, train_set, test_set, device),
    }
    results["wall_seconds"] = time.perf_counter() - started
    write(results, out_dir)
    return results


def markdown(results: dict) -> str:
    """gpucheck.md: the three tables of ``results``."""
    sizes = results["sizes"]
    lines = [f"# GPU check: {results['device_name']} ({results['device']}), torch {results['torch']}", "",
             f"{results['size']} size, {results['wall_seconds']:.0f} s in all. Feature set: {sizes['train']:,} train / "
             f"{sizes['test']:,} test samples, two {sizes['dim']}-d modalities, {sizes['classes']} classes, "
             f"batch {sizes['batch_size']}.", "",
             "## Feature extraction (items per second)", "",
             "| encoder | items | with decoding | without decoding | precision |", "|---|---|---|---|---|"]
    for name, entry in results["encoders"].items():
        lines.append(f"| {name} | {entry['items']} | {entry['with_decode_per_s']:.0f} | "
                     f"{entry['without_decode_per_s']:.0f} | {entry['precision']} |")
    lines += ["", f"Decoding: JPEG decode and resize to 224 x 224 in {results['decode_workers']} DataLoader "
              "workers (0: in the main process); for MiniLM, tokenisation.", "",
              "## Training step per method", "",
              "| method | step time (ms) | step time / joint | peak GPU memory (MB) |", "|---|---|---|---|"]
    for name, entry in results["methods"].items():
        memory = entry["peak_memory_mb"]
        memory = f"{memory:.0f}" if isinstance(memory, (int, float)) else memory
        lines.append(f"| {name} | {entry['step_ms']:.2f} | {entry['ratio_to_joint']:.2f} | {memory} |")
    lines += ["", "Peak memory includes the training features held on the device.", "",
              "## Mixed precision after one epoch of joint training", "",
              "| precision | test accuracy (%) | predictions equal to fp32 (%) |", "|---|---|---|"]
    for name, entry in results["precision"].items():
        agreement = entry.get("agreement_with_fp32")
        lines.append(f"| {name} | {entry['accuracy']:.2f} | {'(reference)' if agreement is None else f'{agreement:.2f}'} |")
    return "\n".join(lines) + "\n"


def write(results: dict, out_dir: Path) -> None:
    for name, text in (("gpucheck.json", json.dumps(results, indent=1)), ("gpucheck.md", markdown(results))):
        with atomic_path(out_dir / name) as tmp:
            tmp.write_text(text)
