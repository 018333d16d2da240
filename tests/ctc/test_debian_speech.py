"""The offline speech sets built on Debian packages: asterisk prompts and espeak-ng digits."""

from __future__ import annotations

import json
import time

import pytest
import soundfile
import torch

import datamodules.spoken_digits as spoken_digits
from datamodules.asterisk import (
    ASTERISK_SOUNDS_DIR,
    ASTERISK_TRANSCRIPTS,
    AsteriskPromptsDataModule,
    prompt_utterances,
    read_prompt_transcripts,
)
from datamodules.download import DatasetUnavailableError
from datamodules.spoken_digits import EspeakUnavailableError, SpokenDigitsDataModule
from datamodules.text import DIGIT_WORDS
from tests.ctc.test_datasets import check_batch

HAVE_ASTERISK = ASTERISK_TRANSCRIPTS.is_file() and ASTERISK_SOUNDS_DIR.is_dir()
HAVE_ESPEAK = spoken_digits.shutil.which("espeak-ng") is not None
needs_asterisk = pytest.mark.skipif(
    not HAVE_ASTERISK, reason="asterisk-core-sounds-en(-wav) is not installed"
)
needs_espeak = pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng is not installed")


def test_prompt_transcript_format(tmp_path):
    path = tmp_path / "core-sounds-en.txt"
    path.write_text(
        "; Core Asterisk Sounds in English\n\nbeep: [this is a simple beep tone]\n"
        "digits/1: one\nconf-x: Press 1 or #: now.\n"
    )
    assert read_prompt_transcripts(path) == {
        "beep": "[this is a simple beep tone]",
        "digits/1": "one",
        "conf-x": "Press 1 or #: now.",  # only the first colon separates
    }


def test_prompts_without_audio_or_words_are_dropped(tmp_path):
    transcripts = tmp_path / "t.txt"
    transcripts.write_text(
        "beep: [tone]\nsilence/1: (1 second of silence)\nhello: Press 2.\nx: gone\n"
    )
    for name in ("beep", "silence/1", "hello"):
        (tmp_path / f"{name}.wav").parent.mkdir(exist_ok=True)
        soundfile.write(tmp_path / f"{name}.wav", torch.zeros(800).numpy(), 8000)
    utterances = prompt_utterances(tmp_path, transcripts)
    assert [(u.key, u.text, u.num_samples) for u in utterances] == [("hello", "press two", 1600)]


def test_missing_asterisk_names_the_packages(tmp_path):
    dm = AsteriskPromptsDataModule(sounds_dir=tmp_path / "no", transcripts=tmp_path / "no.txt")
    with pytest.raises(DatasetUnavailableError, match="asterisk-core-sounds-en-wav asterisk-core"):
        dm.prepare_data()
    with pytest.raises(ValueError, match="unknown asterisk subset 'words'"):
        AsteriskPromptsDataModule(subset="words")


@pytest.mark.realdata
@needs_asterisk
def test_asterisk_prompts_on_the_real_package():
    entries = read_prompt_transcripts(ASTERISK_TRANSCRIPTS)
    assert len(entries) > 550 and entries["digits/7"] == "seven"
    utterances = prompt_utterances()
    keys = {u.key for u in utterances}
    assert 500 < len(utterances) < len(entries)
    assert not any(k.startswith("silence/") for k in keys) and "beep" not in keys
    texts = {u.key: u.text for u in utterances}
    assert texts["letters/at"] == "at" and texts["spy-h323"] == "h three hundred twenty three"
    assert "pound" in texts["agent-pass"]

    dm = AsteriskPromptsDataModule(batch_size=8, max_train_seconds=10.0)
    dm.setup()
    sizes = {k: len(v) for k, v in dm.datasets.items()}
    assert sizes["train"] > 350 and 25 < sizes["val"] < 80 and 25 < sizes["test"] < 80
    split_keys = [{u.key for u in d.utterances} for d in dm.datasets.values()]
    assert not (split_keys[0] & split_keys[1] or split_keys[0] & split_keys[2])
    batch = next(iter(dm.val_dataloader()))
    check_batch(batch, dm.num_classes)
    # 8 kHz recordings served at 16 kHz: twice the samples of the file
    utterance = dm.datasets["test"].utterances[0]
    assert soundfile.info(utterance.path).samplerate == 8000
    assert abs(utterance.num_samples - 2 * soundfile.info(utterance.path).frames) <= 1


@pytest.mark.realdata
@needs_asterisk
def test_asterisk_digits_subset_for_cross_domain_tests():
    dm = AsteriskPromptsDataModule(subset="digits", test_all=True)
    dm.setup()
    texts = sorted(u.text for u in dm.datasets["test"].utterances)
    assert texts == sorted(DIGIT_WORDS)
    folder = AsteriskPromptsDataModule(subset="digits_folder")
    assert len(folder.select(prompt_utterances())) > 80


# -- spoken_digits --------------------------------------------------------------------------


def tiny(root, **options) -> SpokenDigitsDataModule:
    sizes = {"train_size": 6, "val_size": 2, "test_size": 2, "max_digits": 3}
    return SpokenDigitsDataModule(root=root, batch_size=4, **{**sizes, **options})


@needs_espeak
def test_spoken_digits_generates_once_and_reuses(tmp_path):
    dm = tiny(tmp_path)
    start = time.monotonic()
    dm.prepare_data()
    took = time.monotonic() - start
    dm.setup()
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 6, "val": 2, "test": 2}
    words = set(DIGIT_WORDS)
    for utterance in dm.datasets["train"].utterances:
        assert 1 <= len(utterance.text.split()) <= 3 and set(utterance.text.split()) <= words
        info = soundfile.info(utterance.path)
        assert info.samplerate == 16000 and info.frames == utterance.num_samples
        assert 0.3 < utterance.seconds < 5
    check_batch(next(iter(dm.train_dataloader())), dm.num_classes)

    manifest = dm.folder / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    again = tiny(tmp_path)
    start = time.monotonic()
    again.prepare_data()
    assert time.monotonic() - start < min(took, 1.0)  # read, not regenerated
    assert manifest.stat().st_mtime_ns == stamp and again.folder == dm.folder

    changed = tiny(tmp_path, max_digits=2)
    assert changed.folder != dm.folder  # a new parameter, a new set
    assert json.loads(manifest.read_text())["spec"]["max_digits"] == 3


@needs_espeak
def test_spoken_digits_are_deterministic_by_seed(tmp_path):
    a, b, c = tiny(tmp_path / "a"), tiny(tmp_path / "b"), tiny(tmp_path / "c", seed=1)
    plans = [dm.spec.plan() for dm in (a, b, c)]
    assert plans[0] == plans[1] and plans[0] != plans[2]
    assert {e["voice"].split("+")[0] for e in tiny(tmp_path, train_size=200).spec.plan()} == set(
        spoken_digits.DEFAULT_VOICES
    )


def test_spoken_digits_without_espeak_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(spoken_digits.shutil, "which", lambda name: None)
    with pytest.raises(EspeakUnavailableError, match="apt-get install espeak-ng"):
        tiny(tmp_path).prepare_data()
    with pytest.raises(ValueError, match="1 <= min_digits <= max_digits"):
        SpokenDigitsDataModule(root=tmp_path, min_digits=3, max_digits=2)
