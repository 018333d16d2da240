"""The speech datamodules: announced attributes, the batch contract, each source's loader."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from datamodules.audio import read_audio, read_raw_pcm
from datamodules.batch import Batch
from datamodules.download import DatasetUnavailableError, unreachable_reason
from datamodules.librispeech import (
    LIBRISPEECH_URL,
    LibriLightLimitedDataModule,
    LibriSpeechDataModule,
)
from datamodules.speech import SyntheticCTCDataModule, read_sphinx_transcription, split_of
from datamodules.text import BLANK, CharVocabulary, normalize_text
from tests.fixtures.librispeech import write_librilight, write_librispeech


def check_batch(batch: Batch, num_classes: int) -> None:
    """The CTC batch contract every speech datamodule promises."""
    assert isinstance(batch, Batch) and batch.items is None
    assert batch.inputs.dtype == torch.float32 and batch.inputs.ndim == 2
    for part in (batch.input_lengths, batch.targets, batch.target_lengths):
        assert part.dtype == torch.int64
    assert batch.targets.ndim == 2 and len(batch.targets) == len(batch.inputs)
    assert int(batch.input_lengths.max()) == batch.inputs.shape[1]
    assert int(batch.target_lengths.max()) == batch.targets.shape[1]
    assert int(batch.target_lengths.min()) >= 1
    for row, (n, s) in enumerate(zip(batch.input_lengths, batch.target_lengths, strict=True)):
        assert torch.all(batch.inputs[row, n:] == 0) and torch.all(batch.targets[row, s:] == 0)
        labels = batch.targets[row, :s]
        assert torch.all((labels > 0) & (labels < num_classes))  # no blank inside a target


# -- synthetic ---------------------------------------------------------------------------


def test_synthetic_announces_itself_before_setup():
    dm = SyntheticCTCDataModule(num_symbols=4)
    assert (dm.problem_type, dm.target_kind, dm.name) == ("ctc", "label_sequences", "synthetic_ctc")
    assert dm.vocabulary == (BLANK, "a", "b", "c", "d") and dm.num_classes == 5
    assert dm.sample_rate == 16000 and dm.input_shape == (1,) and not dm.datasets


def test_synthetic_batches_follow_the_contract_and_the_seed():
    def first_batch(seed):
        dm = SyntheticCTCDataModule(train_size=40, val_size=8, test_size=8, seed=seed)
        dm.setup()
        return next(iter(dm.train_dataloader())), dm

    batch, dm = first_batch(0)
    check_batch(batch, dm.num_classes)
    again, _ = first_batch(0)
    other, _ = first_batch(1)
    assert torch.equal(batch.inputs, again.inputs) and torch.equal(batch.targets, again.targets)
    assert not torch.equal(batch.inputs, other.inputs)
    # a letter is a tone of its own pitch: the spectrum peaks at the first letter's tone
    single = [u for u in dm.datasets["train"].utterances if len(set(u.text)) == 1]
    for utterance in single[:3]:
        waveform = utterance.waveform()
        peak_hz = int(torch.fft.rfft(waveform).abs().argmax()) * 16000 / len(waveform)
        assert peak_hz == pytest.approx(dm.tone(ord(utterance.text[0]) - ord("a")), abs=15)
    assert single


def test_loaders_give_ddp_ranks_disjoint_shards():
    dm = SyntheticCTCDataModule(train_size=61, val_size=9, test_size=9, batch_size=4)
    dm.setup()
    keys = []
    for rank in range(2):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        loader = dm.train_dataloader()
        keys.append([tuple(b) for b in loader.sampler])
    assert len(keys[0]) == len(keys[1])
    flat = [i for shard in keys for b in shard for i in b]
    assert sorted(flat) == list(range(61))


def test_loaders_need_setup():
    with pytest.raises(RuntimeError, match="call setup"):
        SyntheticCTCDataModule().train_dataloader()


def test_hash_split_is_fixed_and_roughly_80_10_10():
    keys = [f"folder/file{i}" for i in range(2000)]
    splits = [split_of(k) for k in keys]
    assert splits == [split_of(k) for k in keys]
    assert 0.07 < splits.count("test") / 2000 < 0.13
    assert 0.07 < splits.count("val") / 2000 < 0.13


# -- LibriSpeech on a fixture -------------------------------------------------------------


@pytest.fixture(scope="module")
def libri_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("libri")
    write_librispeech(root, "train-clean-100", {19: {198: 6, 227: 4}, 26: {495: 5}})
    write_librispeech(root, "dev-clean", {84: {121123: 4}}, seed=1)
    write_librispeech(root, "test-clean", {1089: {134686: 3}}, seed=2)
    write_librilight(root, "1h/0/clean", {103: {1240: 3}}, seed=3)
    write_librilight(root, "1h/1/other", {1447: {130550: 2}}, seed=4)
    write_librilight(root, "9h/clean", {150: {126107: 2}}, seed=5)
    return root


def test_librispeech_reads_its_on_disk_layout(libri_root):
    dm = LibriSpeechDataModule(root=libri_root, batch_size=4)
    dm.prepare_data()  # everything is on disk: no network touched
    dm.setup()
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 15, "val": 4, "test": 3}
    utterance = dm.datasets["train"].utterances[0]
    assert utterance.key == "train-clean-100/19-198-0000"
    trans = libri_root / "LibriSpeech/train-clean-100/19/198/19-198.trans.txt"
    raw = trans.read_text().split("\n")[0].split(" ", 1)[1]
    assert raw.isupper() and utterance.text == normalize_text(raw) == raw.lower()
    assert utterance.num_samples == 4800 and len(utterance.waveform()) == 4800
    for split in ("train", "val"):
        loader = dm.train_dataloader() if split == "train" else dm.val_dataloader()
        batches = list(loader)
        assert len(batches) == len(loader)
        for batch in batches:
            check_batch(batch, dm.num_classes)
    # lengths were read from the headers once and cached beside the subset
    cache = libri_root / "LibriSpeech/train-clean-100.losslab_lengths.json"
    assert json.loads(cache.read_text())["lengths"]["train-clean-100/26-495-0004"] > 0


def test_librispeech_audio_matches_soundfile(libri_root):
    import soundfile

    path = libri_root / "LibriSpeech/dev-clean/84/121123/84-121123-0002.flac"
    data, rate = soundfile.read(path, dtype="float32")
    assert rate == 16000 and torch.allclose(read_audio(path), torch.from_numpy(data))


def test_max_train_seconds_drops_long_training_utterances(libri_root):
    dm = LibriSpeechDataModule(root=libri_root, max_train_seconds=0.55)
    dm.setup()
    assert 0 < len(dm.datasets["train"]) < 15
    assert max(u.seconds for u in dm.datasets["train"].utterances) <= 0.55
    assert len(dm.datasets["test"]) == 3  # evaluation keeps everything


def test_librilight_limited_subsets(libri_root):
    sizes = {}
    for subset in ("10min", "1h", "10h"):
        dm = LibriLightLimitedDataModule(root=libri_root, subset=subset)
        dm.prepare_data()
        dm.setup()
        sizes[subset] = len(dm.datasets["train"])
        assert len(dm.datasets["val"]) == 4  # LibriSpeech dev-clean
    assert sizes == {"10min": 3, "1h": 5, "10h": 7}


def test_missing_librispeech_names_the_archive_and_folder(tmp_path):
    dm = LibriSpeechDataModule(root=tmp_path)
    with pytest.raises(DatasetUnavailableError) as info:
        dm.setup()
    message = str(info.value)
    assert f"{LIBRISPEECH_URL}train-clean-100.tar.gz" in message
    assert str(tmp_path / "LibriSpeech" / "train-clean-100") in message
    with pytest.raises(ValueError, match="unknown LibriSpeech subset 'train-clean-101'"):
        LibriSpeechDataModule(root=tmp_path, train_subsets=["train-clean-101"])
    with pytest.raises(ValueError, match="unknown Libri-Light limited subset '2h'"):
        LibriLightLimitedDataModule(root=tmp_path, subset="2h")


@pytest.mark.skipif(
    unreachable_reason([f"{LIBRISPEECH_URL}dev-clean.tar.gz"], timeout=2) is None,
    reason="openslr.org is reachable: prepare_data would download LibriSpeech",
)
def test_librispeech_download_fails_fast_offline(tmp_path):
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError, match=r"LibriSpeech train-clean-100.*Download"):
        LibriSpeechDataModule(root=tmp_path).prepare_data()
    assert time.monotonic() - start < 10


# -- Debian's real speech ------------------------------------------------------------------

POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")


@pytest.mark.realdata
@pytest.mark.skipif(not POCKETSPHINX.is_dir(), reason="pocketsphinx-testdata is not installed")
def test_pocketsphinx_clips_load_with_their_transcripts():
    vocabulary = CharVocabulary()
    clips = []
    for folder in ("cards", "librivox"):
        transcripts = read_sphinx_transcription(
            next((POCKETSPHINX / folder).glob("*transcription"))
        )
        for file_id, text in transcripts.items():
            clips.append((POCKETSPHINX / folder / f"{file_id}.wav", normalize_text(text)))
    assert len(clips) == 10
    assert "and mister john dashwood had then leisure" in clips[5][1]
    for path, text in clips:
        waveform = read_audio(path)
        assert waveform.dtype == torch.float32 and 0.5 < len(waveform) / 16000 < 20
        assert 0.01 < float(waveform.abs().max()) <= 1.0
        assert vocabulary.decode(vocabulary.encode(text)) == text
    raw = read_raw_pcm(POCKETSPHINX / "goforward.raw")
    assert 2 < len(raw) / 16000 < 4 and float(raw.abs().max()) > 0.05  # "go forward ten meters"


def test_sphinx_transcription_format(tmp_path):
    path = tmp_path / "t.transcription"
    path.write_text("<s> ten of clubs  </s> (001)\n\n<s> five five </s> (a-b.2)\n")
    assert read_sphinx_transcription(path) == {"001": "ten of clubs", "a-b.2": "five five"}
    path.write_text("no id here\n")
    with pytest.raises(ValueError, match=r"t\.transcription:1: expected"):
        read_sphinx_transcription(path)
