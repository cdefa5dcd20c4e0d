"""CREMA-D media: WAV reading, OGM-GE's log-spectrogram (checked against a direct STFT), 1-fps video
frames, the audio and video encoders, and audio/video impairments."""

import sys
import wave

import numpy as np
import pytest
import torch

from fixtures_real import CREMAD_TEST, make_cremad
from modbal_lib import media
from modbal_lib.data.files import DatasetFileError
from modbal_lib.data.impair import impair
from modbal_lib.encoders import encode
from modbal_lib.features import Impairment, load_features
from modbal_lib.media import decode_frames, log_spectrogram, read_audio, read_video, read_wav

try:
    import av
except ImportError:
    av = None
needs_av = pytest.mark.skipif(av is None, reason="PyAV (the optional 'media' extra) is not installed")


def write_wav(path, samples, rate, width=2, channels=1):
    """Float samples in [-1, 1] ([N] or [N, channels]) as an integer PCM WAV."""
    scaled = np.asarray(samples).reshape(-1, channels)
    if width == 1:
        data = np.round(scaled * 127 + 128).astype(np.uint8)
    else:
        data = np.round(scaled * (2 ** (8 * width - 1) - 1)).astype({2: "<i2", 4: "<i4"}[width])
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as file:
        file.setnchannels(channels)
        file.setsampwidth(width)
        file.setframerate(rate)
        file.writeframes(data.tobytes())
    return path


def tone(frequency, seconds, rate, amplitude=0.5):
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)


def write_flv(path, seconds=2.5, fps=10, size=(64, 48)):
    """A real FLV (Sorenson H.263) whose frame k is a flat grey of level 40 + 8 k; needs PyAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flv", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for k in range(int(seconds * fps)):
            image = np.full((size[1], size[0], 3), 40 + 8 * k, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def direct_log_spectrogram(signal):
    """OGM-GE's recipe written out with numpy: tile 3x, cut to 3 s, clip, zero-pad 256, Hann frames, rFFT."""
    x = np.clip(np.tile(signal, 3)[: 22050 * 3], -1, 1)
    padded = np.pad(x, 256)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(512) / 512)  # periodic Hann, as librosa's
    frames = np.stack([padded[t * 353: t * 353 + 512] * window for t in range(188)], axis=1)
    return np.log(np.abs(np.fft.rfft(frames, axis=0)) + 1e-7)


def test_read_wav_scales_pcm_and_averages_channels(tmp_path):
    samples, rate = read_wav(write_wav(tmp_path / "a.wav", tone(440, 0.1, 16000), 16000))
    assert rate == 16000 and samples.dtype == np.float32 and samples.shape == (1600,)
    assert np.allclose(samples, tone(440, 0.1, 16000), atol=1 / 32767)
    stereo = np.stack([np.full(100, 0.5), np.zeros(100)], axis=1)
    assert np.allclose(read_wav(write_wav(tmp_path / "s.wav", stereo, 8000, channels=2))[0], 0.25, atol=1e-4)
    eight_bit, _ = read_wav(write_wav(tmp_path / "u8.wav", np.full(50, -0.5), 8000, width=1))
    assert np.allclose(eight_bit, -0.5, atol=1 / 127)


def test_read_wav_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetFileError, match="audio file .*absent.wav does not exist"):
        read_wav(tmp_path / "absent.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF this is not audio")
    with pytest.raises(DatasetFileError, match="garbage.wav is not a readable PCM WAV file"):
        read_wav(garbage)
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0), 8000)
    with pytest.raises(DatasetFileError, match="empty.wav holds no audio samples"):
        read_wav(empty)


def test_log_spectrogram_is_ogm_ge_recipe(tmp_path):
    signal = tone(1000, 1.5, 22050)
    samples, rate = read_wav(write_wav(tmp_path / "tone.wav", signal, 22050))
    spectrogram = log_spectrogram(samples, rate)
    assert spectrogram.shape == (257, 188) == media.SPECTROGRAM_SHAPE and spectrogram.dtype == torch.float32
    direct = direct_log_spectrogram(samples)
    assert np.abs(np.exp(spectrogram.numpy()) - np.exp(direct)).max() < 1e-3  # |STFT| up to float32 rounding
    loud = direct > -2  # log of a tiny magnitude is sensitive to rounding; compare it where |S| matters
    assert loud.sum() > 500 and np.allclose(spectrogram.numpy()[loud], direct[loud], atol=1e-4)
    assert spectrogram[:, 100].argmax() == round(1000 * 512 / 22050)  # bin 23 holds the 1 kHz tone


def test_resampling_short_clips_clipping_and_silence():
    at_16k = log_spectrogram(tone(1000, 1.5, 16000).astype(np.float32), 16000)
    assert at_16k.shape == (257, 188) and at_16k[:, 100].argmax() == 23  # same tone, same bin
    short = log_spectrogram(tone(1000, 0.4, 22050).astype(np.float32), 22050)  # < 1 s: tiled 8 times
    assert short.shape == (257, 188) and short[:, -2].argmax() == 23
    loud = log_spectrogram(np.full(30000, 3.0, np.float32), 22050)
    assert torch.equal(loud, log_spectrogram(np.ones(30000, np.float32), 22050))  # clipped to [-1, 1]
    silence = log_spectrogram(np.zeros(22050, np.float32), 22050)
    assert torch.allclose(silence, torch.full((257, 188), float(np.log(1e-7))))


def test_audio_encoders_shapes_and_statistics(tmp_path):
    paths = [write_wav(tmp_path / f"{k}.wav", tone(300 * (k + 1), 1.2, 16000), 16000) for k in range(3)]
    images = encode("audio", paths, "spectrogram", batch_size=2)
    assert images.shape == (3, 1, 257, 188)
    assert torch.allclose(images[1, 0], log_spectrogram(*read_wav(paths[1])))
    assert torch.equal(encode("audio", paths), images)  # the default audio encoder
    pooled = encode("audio", paths, "spectrogram_stats")
    assert pooled.shape == (3, 514)
    assert torch.allclose(pooled[2, :257], images[2, 0].mean(1)) and torch.allclose(pooled[2, 257:], images[2, 0].std(1))
    with pytest.raises(ValueError, match="'spectrogram' takes modality kind audio, got 'image'"):
        encode("image", np.zeros((1, 8, 8, 3), np.uint8), "spectrogram")


def test_audio_impairments_silence_and_0db_noise(tmp_path):
    paths = [write_wav(tmp_path / f"{k}.wav", tone(440, 1.0, 16000), 16000) for k in range(4)]
    missing = impair("audio", paths, "missing", ratio=0.5, seed=1)
    assert sum(callable(item) for item in missing) == 2
    silent = [read_audio(item) for item in missing if callable(item)]
    assert all(rate == 22050 and not samples.any() and len(samples) == 3 * 22050 for samples, rate in silent)
    noisy = impair("audio", paths, "noisy", seed=3)
    clean, _ = read_audio(paths[0])
    noisy_samples, rate = read_audio(noisy[0])
    noise = noisy_samples - clean
    assert rate == 16000 and noise.std() == pytest.approx(clean.std(), rel=0.05)  # signal-to-noise ratio 0 dB
    assert np.array_equal(read_audio(noisy[0])[0], noisy_samples)  # seeded: the same draw every time
    assert not np.array_equal(read_audio(noisy[1])[0], noisy_samples)  # each clip its own draw


def test_missing_pyav_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"pip install 'modbal_lib\[media\]'"):
        decode_frames("clip.flv")


@needs_av
def test_one_frame_per_second_at_224(tmp_path):
    frames = decode_frames(write_flv(tmp_path / "clip.flv"))  # 2.5 s at 10 fps: frames at 0, 1, 2 s
    assert frames.shape == (3, 224, 224, 3) and frames.dtype == np.uint8
    assert np.allclose(frames.reshape(3, -1).mean(1), [40, 120, 200], atol=6)  # the greys of frames 0, 10, 20
    assert np.array_equal(read_video(tmp_path / "clip.flv"), frames)
    garbage = tmp_path / "garbage.flv"
    garbage.write_bytes(b"FLV\x01\x05" + bytes(40))
    with pytest.raises(DatasetFileError, match="garbage.flv"):
        decode_frames(garbage)
    with pytest.raises(DatasetFileError, match="absent.flv does not exist"):
        decode_frames(tmp_path / "absent.flv")


@needs_av
def test_video_encoders_average_frames_and_impairments(tmp_path):
    paths = [write_flv(tmp_path / f"{k}.flv", seconds=1.5 + k) for k in range(2)]
    pixels = encode("video", paths, "pixels:8")
    frames = decode_frames(paths[1])
    assert pixels.shape == (2, 3, 8, 8) and len(frames) == 3
    expected = torch.stack([encode("image", frames[k:k + 1], "pixels:8")[0] for k in range(3)]).mean(0)
    assert torch.allclose(pixels[1], expected, atol=1e-6)
    features = encode("video", paths[:1])  # default: EfficientNet-Lite0, frames averaged
    assert features.shape == (1, 1280)
    assert torch.allclose(features[0], encode("image", decode_frames(paths[0])).mean(0), atol=1e-4)
    missing = impair("video", paths, "missing")
    assert read_video(missing[0]).shape == (1, 224, 224, 3) and not read_video(missing[0]).any()
    noisy = read_video(impair("video", paths, "noisy", seed=2)[1])
    extreme = np.isin(noisy, (0, 255)).all(axis=-1)  # salt-and-pepper pixels
    assert noisy.shape == frames.shape and np.allclose(extreme.mean(axis=(1, 2)), 0.30, atol=0.02)


@needs_av
def test_cremad_load_features_with_audio_and_video_encoders(tmp_path, monkeypatch):
    monkeypatch.setenv("MODBAL_CACHE", str(tmp_path / "cache"))
    root = make_cremad(tmp_path / "cremad")
    for clip in CREMAD_TEST:
        write_flv(root / "VideoFlash" / f"{clip}.flv", seconds=1.2)
    encoders = {"audio": "spectrogram_stats", "video": "pixels:8"}
    test = load_features("cremad", "test", root=root, encoders=encoders)
    assert test.modalities == ("audio", "video") and test.labels.tolist() == [3, 4, 0]
    assert test.features["audio"].shape == (3, 514) and test.features["video"].shape == (3, 3, 8, 8)
    silent = load_features("cremad", "test", root=root, encoders=encoders, impairment=Impairment("audio", "missing"))
    assert torch.allclose(silent.features["audio"][:, :257], torch.tensor(float(np.log(1e-7))))
    assert torch.equal(silent.features["video"], test.features["video"])
