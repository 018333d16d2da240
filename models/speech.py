"""Speech features and CTC networks: log-mel frontend, SpecAugment, GRU and Conformer.

The chain a CTC task runs, all on the device::

    waveforms (B, T), lengths (B,)            # datamodules/speech.py, 16 kHz
      -> LogMel          -> features (B, T_f, 80), frame lengths (B,)
      -> SpecAugment     (training only, masks within each utterance's valid frames)
      -> network         -> logits (B, T', V), output lengths (B,)

Networks take ``input_shape=(F,)`` (features per frame, ``LogMel.num_features``) and
``num_outputs`` (the vocabulary size, blank included), declare ``output_kind =
"frames"`` and return output lengths computed from the convolution arithmetic of their
subsampling (:meth:`ConvSubsampling.output_lengths`), never estimated. Padded frames are
zeroed between layers, so an utterance's output does not depend on what it is batched
with.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchaudio
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

SAMPLE_RATE = 16000


def valid_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """(B, size) bool, True on the first ``lengths[b]`` positions of each row."""
    return torch.arange(size, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class LogMel(nn.Module):
    """Log mel filterbank energies, ``(B, T) -> (B, T_f, n_mels)``, and frame lengths.

    ``torchaudio.transforms.MelSpectrogram`` with a ``window_ms`` Hann window every
    ``hop_ms`` (25 ms / 10 ms: 400 / 160 samples at 16 kHz), centred frames, so a
    waveform of n samples gives ``n // hop + 1`` frames. Energies are floored at
    ``floor`` before the log (silence and zero padding stay finite).

    ``normalize``: ``"utterance"`` (each utterance's mel bins to zero mean, unit variance
    over its valid frames: removes channel and loudness differences), ``"global"``
    (running mean and variance of all valid training frames, frozen in eval) or
    ``"none"``. Padded frames are set to 0.
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_mels: int = 80,
        window_ms: float = 25.0,
        hop_ms: float = 10.0,
        floor: float = 1e-6,
        normalize: str = "utterance",
        momentum: float = 0.01,
    ):
        super().__init__()
        if normalize not in ("utterance", "global", "none"):
            raise ValueError(
                f"normalize must be 'utterance', 'global' or 'none', got {normalize!r}"
            )
        self.win_length = round(sample_rate * window_ms / 1000)
        self.hop_length = round(sample_rate * hop_ms / 1000)
        n_fft = 1 << (self.win_length - 1).bit_length()  # next power of two: 512 for 400
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            n_mels=n_mels,
            center=True,
            pad_mode="constant",  # zeros beyond the ends, as in a padded batch
            power=2.0,
        )
        self.num_features, self.floor = n_mels, floor
        self.normalize, self.momentum = normalize, momentum
        self.register_buffer("running_mean", torch.zeros(n_mels))
        self.register_buffer("running_var", torch.ones(n_mels))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, self.hop_length, rounding_mode="floor") + 1

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(waveforms.device.type, enabled=False):
            power = self.mel(waveforms.float())  # (B, n_mels, T_f)
        features = power.clamp_min(self.floor).log().transpose(1, 2)  # (B, T_f, n_mels)
        frames = self.frame_lengths(lengths)
        mask = valid_mask(frames, features.shape[1]).unsqueeze(-1)  # (B, T_f, 1)
        if self.normalize == "utterance":
            count = frames.clamp_min(1).view(-1, 1, 1).to(features.dtype)
            mean = (features * mask).sum(1, keepdim=True) / count
            var = (((features - mean) * mask) ** 2).sum(1, keepdim=True) / count
            features = (features - mean) / (var + 1e-5).sqrt()
        elif self.normalize == "global":
            if self.training:
                self._update_statistics(features, mask)
            features = (features - self.running_mean) / (self.running_var + 1e-5).sqrt()
        return features * mask, frames

    @torch.no_grad()
    def _update_statistics(self, features: torch.Tensor, mask: torch.Tensor) -> None:
        count = mask.sum().clamp_min(1)
        mean = (features * mask).sum((0, 1)) / count
        var = (((features - mean) * mask) ** 2).sum((0, 1)) / count
        # the first batch sets the statistics; later ones move them slowly
        rate = 1.0 if int(self.num_updates) == 0 else self.momentum
        self.running_mean.lerp_(mean, rate)
        self.running_var.lerp_(var, rate)
        self.num_updates += 1


class SpecAugment(nn.Module):
    """Frequency and time masking (Park et al. 2019), in training only.

    ``freq_masks`` bands of up to ``freq_mask_param`` mel bins
    (``torchaudio.transforms.FrequencyMasking``, drawn per utterance), and ``time_masks``
    spans of up to ``time_mask_param`` frames but at most ``max_time_ratio`` of each
    utterance's own valid length (``torchaudio.transforms.TimeMasking`` applied to the
    valid part only, so the mask never lands in padding and a short utterance is not
    wiped out). Masked values are 0, the mean of normalised features. Input and output
    ``(B, T, F)``.
    """

    def __init__(
        self,
        freq_mask_param: int = 27,
        freq_masks: int = 2,
        time_mask_param: int = 40,
        time_masks: int = 2,
        max_time_ratio: float = 0.05,
    ):
        super().__init__()
        self.freq = torchaudio.transforms.FrequencyMasking(freq_mask_param, iid_masks=True)
        self.freq_masks, self.time_masks = freq_masks, time_masks
        self.time_mask_param, self.max_time_ratio = time_mask_param, max_time_ratio

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.training or (self.freq_masks == 0 and self.time_masks == 0):
            return features
        x = features.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T): torchaudio's layout
        for _ in range(self.freq_masks):
            x = self.freq(x)
        x = x.squeeze(1).transpose(1, 2).clone()  # (B, T, F)
        for row, length in enumerate(lengths.tolist()):
            width = min(self.time_mask_param, int(self.max_time_ratio * length))
            if width < 1 or self.time_masks == 0:
                continue
            masking = torchaudio.transforms.TimeMasking(width)
            part = x[row, :length].T.unsqueeze(0)  # (1, F, length)
            for _ in range(self.time_masks):
                part = masking(part)
            x[row, :length] = part.squeeze(0).T
        return x


class ConvSubsampling(nn.Module):
    """2-D convolutions over (time, mel) that shorten time by ``factor`` (1, 2, 4 or 8).

    ``log2(factor)`` 3x3 convolutions of stride 2 (padding 1), at least two layers in
    all (the rest stride 1), each followed by ReLU; then the channels and the remaining
    frequency bins are flattened and projected to ``output_size``. A stride-2 layer maps
    n frames to ``(n - 1) // 2 + 1``.
    """

    kernel, padding = 3, 1

    def __init__(self, num_features: int, output_size: int, factor: int = 4, channels: int = 32):
        super().__init__()
        if factor not in (1, 2, 4, 8):
            raise ValueError(f"subsampling factor must be 1, 2, 4 or 8, got {factor}")
        strides = [2] * (factor.bit_length() - 1)
        strides += [1] * max(0, 2 - len(strides))
        self.strides = tuple(strides)
        self.convs = nn.ModuleList(
            nn.Conv2d(1 if i == 0 else channels, channels, self.kernel, s, self.padding)
            for i, s in enumerate(strides)
        )
        freq = num_features
        for s in strides:
            freq = (freq + 2 * self.padding - self.kernel) // s + 1
        self.project = nn.Linear(channels * freq, output_size)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for ``lengths`` input frames, from the convolution arithmetic."""
        for s in self.strides:
            lengths = torch.div(lengths + 2 * self.padding - self.kernel, s, rounding_mode="floor")
            lengths = lengths + 1
        return lengths

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = features.unsqueeze(1)  # (B, 1, T, F)
        for conv, s in zip(self.convs, self.strides, strict=True):
            x = torch.relu(conv(x))
            lengths = torch.div(lengths + 2 * self.padding - self.kernel, s, rounding_mode="floor")
            lengths = lengths + 1
            x = x * valid_mask(lengths, x.shape[2]).view(x.shape[0], 1, -1, 1)
        batch, channels, frames, freq = x.shape
        x = x.permute(0, 2, 1, 3).reshape(batch, frames, channels * freq)
        return self.project(x), lengths


class SpeechGRU(nn.Module):
    """Convolutional subsampling, a bidirectional GRU and a linear layer to the vocabulary.

    The default CPU network: with 80 mels, ``subsampling=4``, 32 conv channels, 2 GRU
    layers of 160 units per direction it has about 1.2 M parameters. Sequences are packed,
    so the backward direction starts at each utterance's own last frame.
    """

    output_kind = "frames"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        subsampling: int = 4,
        conv_channels: int = 32,
        hidden_size: int = 160,
        num_layers: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        num_features = int(input_shape[-1])
        self.subsample = ConvSubsampling(num_features, hidden_size, subsampling, conv_channels)
        self.gru = nn.GRU(
            hidden_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, num_outputs)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.subsample.output_lengths(lengths)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, out_lengths = self.subsample(features, lengths)
        frames = x.shape[1]
        packed = pack_padded_sequence(
            self.dropout(x), out_lengths.cpu().clamp_min(1), batch_first=True, enforce_sorted=False
        )
        x, _ = self.gru(packed)
        x, _ = pad_packed_sequence(x, batch_first=True, total_length=frames)
        return self.head(self.dropout(x)), out_lengths


class ConformerCTC(nn.Module):
    """Convolutional subsampling and ``torchaudio.models.Conformer`` blocks: the larger
    option (Gulati et al. 2020), for a GPU.

    Defaults follow Conformer-S (d_model 144, 4 heads, 16 layers, kernel 31) except
    ``num_layers`` 8: about 4 M parameters. Padded frames are masked in self-attention
    through the output lengths, and zeroed before every depthwise (temporal) convolution
    by a forward pre-hook, since torchaudio's convolution module would otherwise mix the
    padding into the last valid frames.
    """

    output_kind = "frames"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        subsampling: int = 4,
        conv_channels: int = 64,
        d_model: int = 144,
        num_heads: int = 4,
        ffn_dim: int = 576,
        num_layers: int = 8,
        kernel_size: int = 31,
        dropout: float = 0.1,
    ):
        super().__init__()
        num_features = int(input_shape[-1])
        self.subsample = ConvSubsampling(num_features, d_model, subsampling, conv_channels)
        self.dropout = nn.Dropout(dropout)
        self.conformer = torchaudio.models.Conformer(
            input_dim=d_model,
            num_heads=num_heads,
            ffn_dim=ffn_dim,
            num_layers=num_layers,
            depthwise_conv_kernel_size=kernel_size,
            dropout=dropout,
        )
        self.head = nn.Linear(d_model, num_outputs)
        self._mask: torch.Tensor | None = None  # (B, 1, T') while forward runs
        for layer in self.conformer.conformer_layers:
            depthwise = layer.conv_module.sequential[2]
            depthwise.register_forward_pre_hook(self._zero_padding)

    def _zero_padding(self, module: nn.Module, args: tuple[torch.Tensor]):
        if self._mask is None:
            return None
        return (args[0] * self._mask,)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return self.subsample.output_lengths(lengths)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, out_lengths = self.subsample(features, lengths)
        # torchaudio builds its padding mask as long as the longest length
        x = x[:, : int(out_lengths.max())]
        self._mask = valid_mask(out_lengths, x.shape[1]).unsqueeze(1).to(x.dtype)
        try:
            x, _ = self.conformer(self.dropout(x), out_lengths)
        finally:
            self._mask = None
        return self.head(x), out_lengths
