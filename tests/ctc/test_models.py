"""Log-mel features, SpecAugment and the CTC networks: shapes and computed output lengths."""

from __future__ import annotations

import pytest
import torch

from models.outputs import IncompatibleModel, build_network
from models.speech import ConformerCTC, ConvSubsampling, LogMel, SpecAugment, SpeechGRU


def test_log_mel_frames_and_shape():
    frontend = LogMel()
    assert (frontend.win_length, frontend.hop_length, frontend.num_features) == (400, 160, 80)
    lengths = torch.tensor([16000, 8000, 161, 159])
    features, frames = frontend(torch.randn(4, 16000), lengths)
    assert features.shape == (4, 101, 80)
    assert frames.tolist() == [101, 51, 2, 1]  # centred frames: n // 160 + 1


def test_log_mel_is_finite_on_silence_and_normalised_per_utterance():
    frontend = LogMel()
    waveforms = torch.zeros(2, 16000)
    waveforms[0, :8000] = torch.sin(torch.arange(8000) * 0.3) * 0.5
    features, frames = frontend(waveforms, torch.tensor([8000, 16000]))
    assert torch.isfinite(features).all()
    valid = features[0, : frames[0]]
    assert valid.mean(0).abs().max() < 1e-4 and torch.all(features[0, frames[0] :] == 0)
    spread = valid.std(0, correction=0)
    # unit variance, except bins too flat for the 1e-5 variance floor (no noise amplified)
    assert torch.all(spread <= 1.001) and ((spread - 1).abs() < 1e-3).float().mean() > 0.5


def test_log_mel_does_not_depend_on_padding():
    frontend = LogMel()
    clip = torch.randn(1, 7000)
    alone, _ = frontend(clip, torch.tensor([7000]))
    padded, _ = frontend(torch.cat([clip, torch.zeros(1, 9000)], 1), torch.tensor([7000]))
    assert torch.allclose(alone[0], padded[0, : alone.shape[1]], atol=1e-5)
    assert torch.all(padded[0, alone.shape[1] :] == 0)


def test_global_normalisation_learns_in_training_and_freezes_in_eval():
    frontend = LogMel(normalize="global").train()
    frontend(torch.randn(2, 4000) * 3, torch.tensor([4000, 4000]))
    mean = frontend.running_mean.clone()
    assert mean.abs().sum() > 0
    frontend.eval()
    frontend(torch.randn(2, 4000), torch.tensor([4000, 4000]))
    assert torch.equal(frontend.running_mean, mean)
    with pytest.raises(ValueError, match="normalize must be"):
        LogMel(normalize="batch")


def test_spec_augment_masks_only_valid_frames_in_training():
    torch.manual_seed(0)
    augment = SpecAugment(freq_mask_param=10, time_mask_param=20, max_time_ratio=0.2)
    features = torch.randn(3, 100, 80)
    lengths = torch.tensor([100, 50, 4])
    features[1, 50:] = 0
    features[2, 4:] = 0
    assert torch.equal(augment.eval()(features, lengths), features)
    masked = augment.train()(features, lengths)
    assert masked.shape == features.shape
    changed = masked != features
    assert changed[0].any() and changed[1, :50].any()
    assert torch.all(masked[1, 50:] == 0) and torch.all(masked[2, 4:] == 0)
    # a time mask zeroes whole frames, never more than 20% of an utterance
    whole = (masked[1, :50] == 0).all(dim=1)
    assert 0 < int(whole.sum()) <= 2 * 10


@pytest.mark.parametrize("factor", [1, 2, 4, 8])
def test_subsampling_lengths_are_computed_exactly(factor):
    subsample = ConvSubsampling(80, 16, factor=factor, channels=4)
    for n in range(1, 70):
        out, lengths = subsample(torch.randn(1, n, 80), torch.tensor([n]))
        assert out.shape[1] == int(lengths) == int(subsample.output_lengths(torch.tensor([n])))
        assert -(-n // factor) == int(lengths)  # stride-2 convs with padding 1: ceil(n / f)


@pytest.mark.parametrize(
    "network",
    [
        lambda: SpeechGRU((80,), 29, hidden_size=16, conv_channels=4),
        lambda: SpeechGRU((80,), 29, subsampling=2, hidden_size=16, conv_channels=4),
        lambda: ConformerCTC((80,), 29, d_model=16, num_heads=2, ffn_dim=32, num_layers=2,
                             conv_channels=4, kernel_size=7),
    ],
)  # fmt: skip
def test_networks_output_frames_with_computed_lengths_independent_of_batching(network):
    torch.manual_seed(0)
    model = network().eval()
    assert type(model).output_kind == "frames"
    lengths = torch.tensor([57, 13, 40, 1])
    features = torch.randn(4, 57, 80)
    for row, n in enumerate(lengths.tolist()):
        features[row, n:] = 0
    logits, out_lengths = model(features, lengths)
    assert torch.equal(out_lengths, model.output_lengths(lengths))
    assert logits.shape == (4, int(out_lengths.max()), 29)
    for row, n in enumerate(lengths.tolist()):
        alone, alone_length = model(features[row : row + 1, :n], lengths[row : row + 1])
        assert int(alone_length) == int(out_lengths[row]) == alone.shape[1]
        assert torch.allclose(alone[0], logits[row, : alone.shape[1]], atol=1e-5)


def test_networks_build_through_the_output_kind_check():
    model = build_network(SpeechGRU, output_kind="frames", input_shape=(80,), num_outputs=29)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000  # fits a 2-core CPU
    with pytest.raises(IncompatibleModel, match="sequence of frames"):
        build_network(ConformerCTC, output_kind="vector", input_shape=(80,), num_outputs=29)


def test_bad_subsampling_is_refused():
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        SpeechGRU((80,), 29, subsampling=3)
