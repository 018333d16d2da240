"""data=folder for CTC: a TSV/CSV of audio paths and transcripts, or a LibriSpeech tree."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile

from datamodules.audio import read_audio
from datamodules.folder import FolderDataError, folder_datamodule
from datamodules.folder.speech import read_table
from datamodules.text import DIGIT_WORDS, CharVocabulary
from losslab.config import compose
from losslab.train import train
from tests.ctc.test_task import TINY_GRU_RUN
from tests.fixtures.librispeech import write_chapters
from tests.folder_dense.fixtures import write_speech_table, write_speech_tree

ASTERISK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")


def make(path, tmp_path, **options):
    return folder_datamodule(path, "ctc", root=str(tmp_path / "data"), seed=0, **options)


def every(dm):
    return [u for split in ("train", "val", "test") for u in dm.datasets[split].utterances]


def test_tsv_resampled_normalised_and_split(tmp_path):
    table = write_speech_table(tmp_path / "sp", rate=8000)
    dm = make(table, tmp_path)
    assert dm.vocabulary == CharVocabulary().symbols and dm.problem_type == "ctc"
    dm.setup()
    utterances = every(dm)
    assert len(utterances) == 30
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 22, "val": 2, "test": 6}
    texts = {u.key: u.text for u in utterances}
    assert texts["clips/c001.wav"] == texts["clips/c001.wav"].lower()  # "HIGH LOW" normalised
    # 8 kHz files come out at 16 kHz: twice the samples, the same as datamodules.audio reads
    u = next(u for u in utterances if u.key == "clips/c003.flac")
    assert u.num_samples == 2 * soundfile.info(str(u.path)).frames
    assert np.allclose(u.waveform().numpy(), read_audio(u.path).numpy(), atol=1e-4)
    batch = next(iter(dm.train_dataloader()))
    assert batch.inputs.ndim == 2 and batch.targets.dtype.is_floating_point is False


def test_csv_split_column_and_sample_rate_option(tmp_path):
    table = write_speech_table(tmp_path / "sp", rate=16000, split_column=True, suffix=".csv")
    dm = make(table, tmp_path, sample_rate=8000)
    assert dm.sample_rate == 8000
    dm.setup()
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 18, "val": 6, "test": 6}
    u = dm.datasets["train"].utterances[0]
    assert u.num_samples == soundfile.info(str(u.path)).frames // 2


def test_quotes_are_text_in_a_tsv_and_quoting_in_a_csv(tmp_path):
    write_speech_table(tmp_path / "sp", count=10)
    (tmp_path / "sp" / "q.tsv").write_text('path\ttext\nclips/c001.wav\t"quoted" text\n')
    (tmp_path / "sp" / "q.csv").write_text('path,text\nclips/c001.wav,"low, high"\n')
    assert read_table(tmp_path / "sp" / "q.tsv")[0][1] == '"quoted" text'
    assert read_table(tmp_path / "sp" / "q.csv")[0][1] == "low, high"


def test_librispeech_layout(tmp_path):
    written = write_chapters(tmp_path / "libri", {19: {198: 12}, 26: {495: 12}})
    dm = make(tmp_path / "libri", tmp_path)
    dm.setup()
    utterances = every(dm)
    assert sorted(u.key for u in utterances) == sorted(written)
    for u in utterances:
        text, samples = written[u.key]
        assert u.text == text.lower() and u.num_samples == samples


def test_data_vocabulary_from_the_training_transcripts(tmp_path):
    table = tmp_path / "sp" / "list.tsv"
    write_speech_table(tmp_path / "sp", count=20)
    lines = table.read_text().splitlines()
    # another alphabet: Cyrillic words, kept as they are with vocabulary=data
    lines = [lines[0]] + [row.split("\t")[0] + "\tпривет мир" for row in lines[1:]]
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(FolderDataError, match=r"characters \['в', 'е', 'и', .* outside the vocab"):
        make(table, tmp_path).setup()
    dm = make(table, tmp_path, vocabulary="data")
    assert dm.vocabulary == ("<blank>", " ", "в", "е", "и", "м", "п", "р", "т")
    dm.setup()
    assert dm.datasets["test"].utterances[0].text == "привет мир"


# -- bad data ---------------------------------------------------------------------------


def test_undecodable_and_missing_audio_stop(tmp_path):
    table = write_speech_table(tmp_path / "sp")
    (tmp_path / "sp" / "clips" / "c004.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    (tmp_path / "sp" / "clips" / "c005.wav").write_bytes(b"")
    with pytest.raises(FolderDataError) as caught:
        make(table, tmp_path).setup()
    message = str(caught.value)
    assert "audio files soundfile cannot decode (2)" in message
    assert "c004.wav" in message and "c005.wav" in message
    (tmp_path / "sp" / "clips" / "c007.wav").unlink()
    with pytest.raises(FolderDataError, match=r"audio files named in the table are missing \(1\)"):
        make(table, tmp_path).setup()


def test_truncated_audio_found_by_the_full_read(tmp_path):
    table = write_speech_table(tmp_path / "sp", count=12)
    flac = tmp_path / "sp" / "clips" / "c003.flac"
    flac.write_bytes(flac.read_bytes()[: len(flac.read_bytes()) // 2])  # header intact
    with pytest.raises(FolderDataError, match=r"audio files soundfile cannot decode \(1\).*c003"):
        make(table, tmp_path).setup()


def test_characters_outside_the_vocabulary_are_reported_not_dropped(tmp_path):
    table = write_speech_table(tmp_path / "sp", count=12)
    lines = table.read_text().splitlines()
    lines[3] = lines[3].split("\t")[0] + "\tstraße café"  # é -> e is fine, ß has no spelling
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(FolderDataError) as caught:
        make(table, tmp_path).setup()
    message = str(caught.value)
    assert "transcripts with characters ['ß'] outside the vocabulary" in message
    assert "list.tsv:4 'ß'" in message and "data.vocabulary=data" in message


def test_unseen_characters_of_val_or_test_with_the_data_vocabulary(tmp_path):
    table = write_speech_table(tmp_path / "sp", count=10, split_column=True)
    lines = table.read_text().splitlines()
    path, _, split = lines[5].split("\t")  # row 5 -> n = 4: test
    lines[5] = f"{path}\tlow zz\t{split}"
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(FolderDataError, match=r"\['z'\] outside .*list\.tsv:6 \(test\) 'z'"):
        make(table, tmp_path, vocabulary="data")


def test_table_header_and_split_names_are_checked(tmp_path, caplog):
    table = write_speech_table(tmp_path / "sp", count=10)
    lines = table.read_text().splitlines()
    table.write_text("\n".join(["file_name\tsentence_text", *lines[1:]]) + "\n")
    with pytest.raises(FolderDataError, match="must be a header naming the audio column"):
        make(table, tmp_path).setup()
    table.write_text("\n".join(["audio\ttranscript\tsplit", *[r + "\tholdout" for r in lines[1:]]]))
    with pytest.raises(FolderDataError, match=r"rows whose split is not one of .* \(10\)"):
        make(table, tmp_path).setup()
    table.write_text("\n".join(["path\ttext", *lines[2:], lines[1].split("\t")[0] + "\t[noise]"]))
    with caplog.at_level(logging.WARNING):
        dm = make(table, tmp_path, val_size=2)
        dm.setup()
    assert "1 of 10 transcripts are empty after normalisation" in caplog.text
    assert len(every(dm)) == 9


def test_librispeech_lines_without_audio_stop(tmp_path):
    write_chapters(tmp_path / "libri", {19: {198: 6}})
    (tmp_path / "libri" / "19" / "198" / "19-198-0002.flac").unlink()
    with pytest.raises(FolderDataError, match=r"without their \.flac or \.wav \(1\).*19-198-0002"):
        make(tmp_path / "libri", tmp_path).setup()


# -- training ---------------------------------------------------------------------------

QUICK = ("task=ctc", "data=folder", *TINY_GRU_RUN, "callbacks=none")


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["tsv", "librispeech"])
def test_trains_from_the_command_line_form(tmp_path, layout):
    if layout == "tsv":
        path = write_speech_table(tmp_path / "sp")
    else:
        path = write_speech_tree(tmp_path / "libri")
    record = train(compose([*QUICK, f"data.path={path}", f"paths.root_dir={tmp_path}"]))
    assert record["data"] == "folder"
    assert math.isfinite(record["test"]["test/loss"]) and record["test"]["test/cer"] >= 0


@pytest.mark.realdata
def test_asterisk_wavs_through_a_table(tmp_path):
    wavs = sorted(ASTERISK.glob("digits/[0-9].wav"))
    if len(wavs) < 10:
        pytest.skip("apt-get install asterisk-core-sounds-en-wav")

    rows = [f"{w}\t{DIGIT_WORDS[int(w.stem)]}\t{'test' if w.stem in '01' else 'train'}" for w in wavs]
    rows[2] = rows[2].replace("train", "val")
    table = tmp_path / "digits.tsv"
    table.write_text("\n".join(["path\ttext\tsplit", *rows]) + "\n")
    dm = make(table, tmp_path)
    dm.setup()
    assert {s: len(d) for s, d in dm.datasets.items()} == {"train": 7, "val": 1, "test": 2}
    u = dm.datasets["test"].utterances[0]
    assert u.text == "zero" and u.num_samples == 2 * soundfile.info(str(u.path)).frames  # 8k
