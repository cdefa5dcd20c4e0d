"""``python -m modbal_lib gpucheck --small`` on the CPU: the JSON and Markdown it writes, and its argument errors."""

import dataclasses
import json
import time

import pytest
import torch

from modbal_lib import gpucheck
from modbal_lib.cli import main


@pytest.fixture(scope="module")
def small_check(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpucheck")
    began = time.perf_counter()
    assert main(["gpucheck", "--small", "--out", str(out), "--device", "cpu"]) == 0
    return out, json.loads((out / "gpucheck.json").read_text()), time.perf_counter() - began


def test_small_check_runs_in_seconds_and_writes_json_and_markdown(small_check):
    out, results, seconds = small_check
    assert seconds < 60 and results["wall_seconds"] < seconds
    assert results["device"] == "cpu" and results["size"] == "small"
    assert results["sizes"] == {**gpucheck.SMALL.__dict__}
    assert (out / "gpucheck.md").read_text() == gpucheck.markdown(results)
    assert sorted(p.name for p in out.iterdir()) == ["gpucheck.json", "gpucheck.md"]


def test_encoder_throughput_with_and_without_decoding(small_check):
    _, results, _ = small_check
    assert set(results["encoders"]) == {"efficientnet_lite0", "minilm"}
    for entry in results["encoders"].values():
        assert entry["with_decode_per_s"] > 0 and entry["without_decode_per_s"] > 0
        assert entry["precision"] == "fp32"  # feature extraction runs in fp32 off CUDA
    assert results["encoders"]["efficientnet_lite0"]["items"] == gpucheck.SMALL.images


def test_every_method_has_a_step_time_ratio_and_no_gpu_memory_on_a_cpu(small_check):
    _, results, _ = small_check
    methods = results["methods"]
    assert list(methods) == list(gpucheck.METHODS)
    assert methods["joint"]["ratio_to_joint"] == 1.0
    for entry in methods.values():
        assert entry["step_ms"] > 0
        assert entry["ratio_to_joint"] == pytest.approx(entry["step_ms"] / methods["joint"]["step_ms"])
        assert entry["peak_memory_mb"] == "n/a (CPU)"
    table = (small_check[0] / "gpucheck.md").read_text()
    assert "| balgrad |" in table and "| n/a (CPU) |" in table


def test_mixed_precision_agreement_is_a_share_of_test_predictions(small_check):
    _, results, _ = small_check
    assert list(results["precision"]) == ["fp32", "bf16", "fp16"]
    for name in ("bf16", "fp16"):
        agreement = results["precision"][name]["agreement_with_fp32"]
        assert 0 <= agreement <= 100
        # a share of gpucheck.SMALL.test predictions: a multiple of 100 / test
        assert agreement * gpucheck.SMALL.test / 100 == pytest.approx(round(agreement * gpucheck.SMALL.test / 100))


def test_synthetic_features_are_food101_shaped_and_the_image_modality_is_clearer():
    features = gpucheck.synthetic_features(gpucheck.SMALL, "train")
    assert features.modalities == ("image", "text") and len(features.class_names) == 101
    assert {m: tuple(x.shape) for m, x in features.features.items()} == {"image": (512, 768), "text": (512, 768)}
    test = gpucheck.synthetic_features(gpucheck.SMALL, "test")
    assert len(test) == 256 and not (test.features["image"][:5] == features.features["image"][:5]).all()
    # the class means lie 3 times farther apart in the image modality (a small set, so that the means show)
    few = gpucheck.synthetic_features(dataclasses.replace(gpucheck.SMALL, dim=16, classes=4, train=4000), "train")
    spread = {m: torch.pdist(torch.stack([few.features[m][few.labels == k].mean(0) for k in range(4)])).mean()
              for m in few.modalities}
    assert 2.5 < spread["image"] / spread["text"] < 3.5


def test_bad_arguments_stop_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    assert main(["gpucheck", "--small", "--out", str(a_file)]) == 2
    assert "gpucheck --out" in capsys.readouterr().err and a_file.read_text() == "x"
    assert main(["gpucheck", "--small", "--out", str(tmp_path / "new"), "--device", "tpu"]) == 2
    assert "device='tpu': expected cpu, cuda or cuda:N" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
