"""predict on a CTC network: transcripts of sound files, resampled to the run's rate."""

from __future__ import annotations

import soundfile
import torch

from datamodules.audio import resample
from datamodules.speech_batching import collate_utterances
from losslab.predict import predict
from tests.predict.support import read_csv

KIND = "ctc"


def transcripts(trained, waveforms: list[torch.Tensor]) -> list[str]:
    batch = collate_utterances([(w, torch.zeros(1, dtype=torch.long)) for w in waveforms])
    with torch.no_grad():
        return trained.task.predictions(trained.task(batch.inputs, batch.input_lengths))


def test_transcripts_equal_the_network_on_the_dataset_waveforms(trained, tmp_path):
    dataset = trained.datamodule.datasets["test"]
    waveforms = [dataset[i][0] for i in range(4)]
    (tmp_path / "in").mkdir()
    for i, w in enumerate(waveforms):  # float WAV: lossless
        soundfile.write(tmp_path / "in" / f"u{i}.wav", w.numpy(), 16000, subtype="FLOAT")
    predict(trained.ckpt, tmp_path / "in", tmp_path / "out", batch_size=3)
    rows = read_csv(tmp_path / "out" / "transcripts.tsv", delimiter="\t")
    assert [r["path"].rsplit("/", 1)[1] for r in rows] == [f"u{i}.wav" for i in range(4)]
    assert [r["transcript"] for r in rows] == transcripts(trained, waveforms)


def test_another_sample_rate_is_resampled(trained, tmp_path):
    waveform = trained.datamodule.datasets["test"][0][0]
    low = resample(waveform, 16000, 8000)
    (tmp_path / "in").mkdir()
    soundfile.write(tmp_path / "in" / "u8k.wav", low.numpy(), 8000, subtype="FLOAT")
    predict(trained.ckpt, tmp_path / "in", tmp_path / "out")
    rows = read_csv(tmp_path / "out" / "transcripts.tsv", delimiter="\t")
    assert [r["transcript"] for r in rows] == transcripts(trained, [resample(low, 8000, 16000)])
