"""Reading speech files as 16 kHz mono float32 waveforms, without torchaudio's loader.

``torchaudio.load`` needs torchcodec and FFmpeg since torchaudio 2.9, so files are read
with ``soundfile`` (libsndfile: WAV, FLAC, OGG...) and resampled with
``torchaudio.functional.resample`` (band-limited sinc interpolation, pure torch).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional

#: the rate every speech datamodule serves (LibriSpeech's; features assume it)
SAMPLE_RATE = 16000


def resampled_length(num_samples: int, orig_rate: int, new_rate: int = SAMPLE_RATE) -> int:
    """How many samples ``torchaudio.functional.resample`` returns (it rounds up)."""
    if orig_rate == new_rate:
        return num_samples
    g = math.gcd(orig_rate, new_rate)
    return math.ceil(num_samples * (new_rate // g) / (orig_rate // g))


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int = SAMPLE_RATE) -> torch.Tensor:
    if orig_rate == new_rate:
        return waveform
    return torchaudio.functional.resample(waveform, orig_rate, new_rate)


def to_mono_float(data: np.ndarray) -> torch.Tensor:
    """soundfile's (frames,) or (frames, channels) array as a float32 (frames,) tensor."""
    if data.ndim == 2:
        data = data.mean(axis=1)
    return torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """A sound file as a mono float32 waveform ``(T,)`` in [-1, 1] at ``sample_rate``."""
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    return resample(to_mono_float(data), rate, sample_rate)


def read_raw_pcm(
    path: str | Path, file_rate: int = SAMPLE_RATE, sample_rate: int = SAMPLE_RATE
) -> torch.Tensor:
    """A headerless file of 16-bit little-endian mono PCM (CMU Sphinx's ``.raw``)."""
    data = np.fromfile(path, dtype="<i2").astype(np.float32) / 32768.0
    return resample(torch.from_numpy(data), file_rate, sample_rate)


def audio_length(path: str | Path, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples of the file once read by :func:`read_audio`, from its header only."""
    info = soundfile.info(str(path))
    return resampled_length(info.frames, info.samplerate, sample_rate)


def to_int16(waveform: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> int16, the way datasets are held in memory (half of float32).

    Done in numpy: torch's element-wise CPU ops start a thread pool per call, which on a
    loaded 2-core machine made ``round`` of a one-second clip take 16 ms instead of 20 µs.
    """
    scaled = np.clip(waveform.detach().cpu().numpy() * 32768.0, -32768, 32767)
    return torch.from_numpy(np.rint(scaled).astype(np.int16))


def from_int16(waveform: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(waveform.numpy().astype(np.float32) / np.float32(32768.0))
