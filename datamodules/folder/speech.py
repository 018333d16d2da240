"""CTC data from the user's own recordings: a TSV/CSV table or a LibriSpeech-layout folder.

``data=folder data.path=<file or folder>`` with ``task=ctc`` reads either

- a table (``.tsv`` tab-separated, ``.csv`` comma-separated, both with a header line):
  a column ``path`` (or ``audio`` / ``file``: the audio file, relative to the table's
  folder or absolute), a column ``text`` (or ``transcript`` / ``sentence``) and an
  optional column ``split`` (``train`` / ``val`` / ``test``; ``dev`` and ``valid`` mean
  ``val``); or
- a folder in LibriSpeech's layout: ``<speaker>/<chapter>/<speaker>-<chapter>.trans.txt``
  files of ``<utterance-id> TRANSCRIPT`` lines beside ``<utterance-id>.flac`` (any depth
  below ``path``; ``.wav`` is accepted where no ``.flac`` exists).

Audio is read with soundfile (WAV, FLAC, OGG...; not ``torchaudio.load``, which needs
FFmpeg), mixed to mono and resampled to ``sample_rate`` (16 kHz, what the CTC task's
log-mel frontend assumes). Without a ``split`` column the splits are drawn as for every
folder layout: ``test_size`` (0.2) with ``test_seed``, then ``val_size`` (0.1) of the
rest with ``seed``.

Vocabulary (``vocabulary``):

- ``english`` (default): transcripts are normalised by
  :func:`datamodules.text.normalize_text` (lower case, numbers spelled out, punctuation
  dropped) into the English alphabet every built-in speech set uses, so networks and
  vocabularies are interchangeable across datasets. A letter that normalisation would
  silently delete (``é`` becomes ``e``, but ``ж``, ``ß`` or ``中`` have no English
  spelling) is reported instead of dropped.
- ``data``: the alphabet of the *training* transcripts (lower-cased, spaces collapsed,
  nothing else changed), for other languages; a character of a validation or test
  transcript that training never shows is reported (the network could not emit it).

Bad data stops the run with one :class:`~datamodules.folder.common.FolderDataError`
per kind of problem, counting every case and naming the first: a table without the
needed columns, audio files that are missing, audio that soundfile cannot decode (at
the header scan, and at the full read when ``preload``), characters outside the
vocabulary, and an empty split. Transcripts that normalise to nothing (``[noise]``) are
dropped with a warning, as the built-in sets do.
"""

from __future__ import annotations

import csv
import logging
import os
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import soundfile
import torch

from datamodules.audio import SAMPLE_RATE, read_audio, resampled_length, to_int16
from datamodules.folder.base import DEFAULT_TEST_SIZE, DEFAULT_VAL_SIZE
from datamodules.folder.common import SPLITS, BadData, FolderDataError, random_split
from datamodules.librispeech import read_trans_txt
from datamodules.seeding import rng
from datamodules.speech import SpeechDataModule, Utterance
from datamodules.text import ENGLISH_CHARACTERS, CharVocabulary, normalize_text

log = logging.getLogger(__name__)

#: accepted header names of the table's columns (lower case)
PATH_COLUMNS = ("path", "audio", "file", "filename", "audio_path")
TEXT_COLUMNS = ("text", "transcript", "transcription", "sentence")
SPLIT_COLUMNS = ("split", "subset")
#: spellings of the split names in a table's split column
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "dev": "val", "test": "test"}
VOCABULARIES = ("english", "data")
TABLE_SUFFIXES = {".tsv": "\t", ".csv": ",", ".txt": "\t"}
#: audio files tried, in order, for a LibriSpeech-layout utterance id
LIBRISPEECH_SUFFIXES = (".flac", ".wav")


@dataclass
class FolderUtterance(Utterance):
    """An :class:`~datamodules.speech.Utterance` read at the datamodule's ``rate``.

    ``source`` is where the transcript came from (table line, ``.trans.txt`` line), for
    messages; ``raw`` the transcript before normalisation.
    """

    rate: int = SAMPLE_RATE
    source: str = ""
    raw: str = ""

    @property
    def seconds(self) -> float:
        return self.num_samples / self.rate

    def waveform(self) -> torch.Tensor:
        if self.audio is None and self.path is not None:
            return read_audio(self.path, self.rate)
        return super().waveform()


# -- reading the listings ----------------------------------------------------------------


def _column(header: Sequence[str], names: Sequence[str]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def read_table(path: str | Path) -> list[tuple[str, str, str | None, str]]:
    """Rows of a TSV/CSV listing: (audio path as written, transcript, split or None, where).

    ``where`` is ``<table>:<line>``. A missing header, a row with too few fields or an
    unknown split name raises :class:`FolderDataError` (all such rows counted).
    """
    path = Path(path)
    delimiter = TABLE_SUFFIXES.get(path.suffix.lower(), "\t")
    # a TSV's quotes are text (Common Voice sentences hold them); a CSV may quote fields
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    with path.open(newline="", encoding="utf-8-sig") as stream:
        rows = list(csv.reader(stream, delimiter=delimiter, quoting=quoting))
    if not rows:
        raise FolderDataError(f"{path} is empty; expected a header line and one row per recording")
    header = rows[0]
    path_at, text_at = _column(header, PATH_COLUMNS), _column(header, TEXT_COLUMNS)
    split_at = _column(header, SPLIT_COLUMNS)
    if path_at is None or text_at is None:
        sep = "tab" if delimiter == "\t" else "comma"
        raise FolderDataError(
            f"{path}: the first line must be a header naming the audio column "
            f"({' | '.join(PATH_COLUMNS)}) and the transcript column "
            f"({' | '.join(TEXT_COLUMNS)}), {sep}-separated; got {header!r}"
        )
    short, bad_split, entries = [], [], []
    needed = max(path_at, text_at, split_at if split_at is not None else 0) + 1
    for number, row in enumerate(rows[1:], 2):
        if not any(field.strip() for field in row):
            continue
        where = f"{path.name}:{number}"
        if len(row) < needed:
            short.append(where)
            continue
        split = None
        if split_at is not None:
            split = SPLIT_NAMES.get(row[split_at].strip().lower())
            if split is None:
                bad_split.append(f"{where} ({row[split_at]!r})")
                continue
        entries.append((row[path_at].strip(), row[text_at], split, where))
    bad = BadData(path)
    for where in short:
        bad.stop(f"rows with fewer than {needed} fields", where)
    for where in bad_split:
        bad.stop(f"rows whose split is not one of {sorted(SPLIT_NAMES)}", where)
    bad.raise_if_any()
    return entries


def table_utterances(path: str | Path) -> tuple[list[FolderUtterance], list[str | None]]:
    """Utterances of a table (texts raw) and each one's split from the table (or None)."""
    path = Path(path)
    utterances, splits, missing = [], [], []
    for audio, text, split, where in read_table(path):
        audio_path = Path(audio) if Path(audio).is_absolute() else path.parent / audio
        if not audio_path.is_file():
            missing.append(f"{audio_path} ({where})")
            continue
        key = str(audio_path.relative_to(path.parent)) if not Path(audio).is_absolute() else audio
        utterances.append(
            FolderUtterance(
                key=key, text="", num_samples=0, path=audio_path, source=where, raw=text
            )
        )
        splits.append(split)
    bad = BadData(path)
    for where in missing:
        bad.stop("audio files named in the table are missing", where)
    bad.raise_if_any()
    return utterances, splits


def librispeech_utterances(folder: str | Path) -> list[FolderUtterance]:
    """Utterances of every ``*.trans.txt`` below ``folder`` (LibriSpeech layout), by id."""
    folder = Path(folder)
    utterances, missing = [], []
    for trans in sorted(folder.rglob("*.trans.txt")):
        for number, (key, text) in enumerate(read_trans_txt(trans).items(), 1):
            candidates = [trans.parent / f"{key}{s}" for s in LIBRISPEECH_SUFFIXES]
            audio = next((c for c in candidates if c.is_file()), None)
            if audio is None:
                missing.append(f"{candidates[0]} ({trans.name} line {number})")
                continue
            utterances.append(
                FolderUtterance(
                    key=key, text="", num_samples=0, path=audio, source=f"{trans}", raw=text
                )
            )
    bad = BadData(folder)
    for where in missing:
        bad.stop("utterances listed in .trans.txt files without their .flac or .wav", where)
    bad.raise_if_any()
    utterances.sort(key=lambda u: u.key)
    return utterances


# -- checks ------------------------------------------------------------------------------


def fill_lengths(utterances: list[FolderUtterance], rate: int, source: Path) -> None:
    """Sets each ``num_samples`` (at ``rate``) from the audio header; reports undecodable files."""

    def length(u: FolderUtterance) -> int | str:
        try:
            info = soundfile.info(str(u.path))
        except (soundfile.SoundFileError, RuntimeError) as error:
            return f"{u.path} ({_reason(error)})"
        if info.frames <= 0:
            return f"{u.path} (no audio frames)"
        return resampled_length(info.frames, info.samplerate, rate)

    bad = BadData(source)
    for u, result in zip(utterances, _threaded(length, utterances), strict=True):
        if isinstance(result, str):
            bad.stop("audio files soundfile cannot decode", result)
        else:
            u.num_samples = result
    bad.raise_if_any()


def preload_audio(utterances: list[FolderUtterance], rate: int, source: Path) -> None:
    """Reads every waveform into memory (int16 at ``rate``); reports files that fail to decode."""

    def read(u: FolderUtterance) -> str | None:
        if u.audio is not None:
            return None
        try:
            waveform = read_audio(u.path, rate)
        except (soundfile.SoundFileError, RuntimeError, ValueError) as error:
            return f"{u.path} ({_reason(error)})"
        u.audio, u.num_samples = to_int16(waveform), len(waveform)
        return None

    bad = BadData(source)
    for result in _threaded(read, utterances):
        if result is not None:
            bad.stop("audio files soundfile cannot decode", result)
    bad.raise_if_any()


def _reason(error: Exception) -> str:
    return " ".join(str(error).split())[:120]


def _threaded(function: Callable, items: list) -> list:
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        return list(pool.map(function, items))


def foreign_letters(text: str) -> set[str]:
    """Letters of ``text`` that :func:`normalize_text` would delete (no a-z spelling)."""
    stripped = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in stripped if not unicodedata.combining(c)).lower()
    return {
        c
        for c in stripped
        if unicodedata.category(c).startswith("L") and c not in "abcdefghijklmnopqrstuvwxyz"
    }


def collapse(text: str) -> str:
    """The ``data`` vocabulary's only normalisation: lower case, single spaces."""
    return " ".join(text.lower().split())


def report_characters(
    offending: dict[str, set[str]], vocabulary: Iterable[str], source: Path, why: str
) -> None:
    """Raise naming each character outside ``vocabulary`` and the transcripts holding it."""
    if not offending:
        return
    every = sorted({c for chars in offending.values() for c in chars})
    bad = BadData(source, hint=why)
    kind = f"transcripts with characters {every} outside the vocabulary {''.join(vocabulary)!r}"
    for where, chars in offending.items():
        bad.stop(kind, f"{where} {''.join(sorted(chars))!r}")
    bad.raise_if_any()


# -- the datamodule ----------------------------------------------------------------------


class SpeechFolder(SpeechDataModule):
    """CTC data from a table of recordings or a LibriSpeech-layout folder (module doc).

    ``path``: the ``.tsv`` / ``.csv`` table or the folder. ``vocabulary``: ``english``
    or ``data`` (module doc). ``sample_rate``: the rate audio is resampled to (16 kHz;
    another rate also needs ``task.features.sample_rate``). Splits: the table's
    ``split`` column, else ``test_size`` utterances drawn with ``test_seed`` (0.2, the
    same test set for every seed) and ``val_size`` of the rest with ``seed`` (0.1), as
    every folder layout. The batching options are
    :class:`~datamodules.speech.SpeechDataModule`'s.
    """

    OPTIONS = (
        "root", "seed", "batch_size", "eval_batch_size", "val_size", "test_size", "test_seed",
        "vocabulary", "sample_rate", "max_batch_seconds", "bucket_size", "max_train_seconds",
        "preload", "num_workers",
    )  # fmt: skip
    default_batch_size = 16

    def __init__(
        self,
        path: str | Path,
        *,
        vocabulary: str | None = None,
        sample_rate: int | None = None,
        batch_size: int | None = None,
        val_size: int | float | None = None,
        test_size: int | float | None = None,
        test_seed: int | None = None,
        **options,
    ):
        vocabulary = vocabulary or "english"
        if vocabulary not in VOCABULARIES:
            raise ValueError(f"vocabulary must be one of {VOCABULARIES}, got {vocabulary!r}")
        super().__init__(batch_size=batch_size or self.default_batch_size, **options)
        self.path = Path(path).expanduser()
        self.val_size = DEFAULT_VAL_SIZE if val_size is None else val_size
        self.test_size = DEFAULT_TEST_SIZE if test_size is None else test_size
        self.test_seed = 0 if test_seed is None else int(test_seed)
        self.vocabulary_kind = vocabulary
        self.sample_rate = int(sample_rate or SAMPLE_RATE)
        self.name = f"folder_{self.path.stem or 'speech'}"
        self._listing: dict[str, list[FolderUtterance]] | None = None
        if vocabulary == "data":
            # the symbols decide the network's output size, so they are needed now:
            # the transcripts are read here (text only, no audio)
            self._listing = self._read_listing()
            self.vocab = CharVocabulary.from_texts(
                [u.text for u in self._listing["train"]], minimal=True
            )
            self.vocabulary = self.vocab.symbols
            self.num_classes = len(self.vocab)
            self.class_names = list(self.vocab.symbols)

    # -- reading ---------------------------------------------------------------------------

    def _read_listing(self) -> dict[str, list[FolderUtterance]]:
        """The utterances of each split, texts normalised and checked; no audio read."""
        if self.path.is_file():
            utterances, table_splits = table_utterances(self.path)
        elif self.path.is_dir():
            utterances = librispeech_utterances(self.path)
            table_splits = [None] * len(utterances)
            if not utterances:
                raise FolderDataError(
                    f"{self.path} holds no <speaker>-<chapter>.trans.txt file; for CTC, "
                    "data.path names a .tsv/.csv table (header: path<TAB>text[<TAB>split]) "
                    "or a LibriSpeech-layout folder"
                )
        else:
            raise FolderDataError(f"data.path={str(self.path)!r} does not exist")
        for u in utterances:
            u.rate = self.sample_rate
        if self.vocabulary_kind == "english":
            self._normalise_english(utterances)
        splits = self._split(utterances, table_splits)
        if self.vocabulary_kind == "data":
            self._normalise_data(splits)
        empty = [u for u in utterances if not u.text]
        if empty:
            log.warning(
                "%s: %d of %d transcripts are empty after normalisation and are left out "
                "(first: %s)",
                self.path,
                len(empty),
                len(utterances),
                empty[0].source,
            )
        splits = {name: [u for u in us if u.text] for name, us in splits.items()}
        empty_splits = [name for name, us in splits.items() if not us]
        if empty_splits:
            counts = {name: len(us) for name, us in splits.items()}
            raise FolderDataError(
                f"{self.path}: the {' and '.join(empty_splits)} split(s) hold no utterance "
                f"(utterances per split: {counts}); add recordings, or name the splits in "
                "a 'split' column"
            )
        return splits

    def _split(
        self, utterances: list[FolderUtterance], table_splits: list[str | None]
    ) -> dict[str, list[FolderUtterance]]:
        """The table's splits where given; the rest drawn as every folder layout does."""
        splits: dict[str, list[FolderUtterance]] = {name: [] for name in SPLITS}
        undecided = []
        for u, split in zip(utterances, table_splits, strict=True):
            (splits[split] if split else undecided).append(u)
        if undecided and not splits["test"]:
            keep, drawn = random_split(
                len(undecided), self.test_size, rng(self.test_seed, "folder_test"), "data.test_size"
            )
            splits["test"] += [undecided[i] for i in drawn]
            undecided = [undecided[i] for i in keep]
        if undecided and not splits["val"]:
            keep, drawn = random_split(
                len(undecided), self.val_size, rng(self.seed, "val"), "data.val_size"
            )
            splits["val"] += [undecided[i] for i in drawn]
            undecided = [undecided[i] for i in keep]
        splits["train"] += undecided
        return splits

    def _normalise_english(self, utterances: list[FolderUtterance]) -> None:
        offending = {}
        for u in utterances:
            foreign = foreign_letters(u.raw)
            if foreign:
                offending[u.source] = foreign
            u.text = normalize_text(u.raw)
        report_characters(
            offending,
            ENGLISH_CHARACTERS,
            self.path,
            "Normalisation would delete them: set data.vocabulary=data for another alphabet.",
        )

    def _normalise_data(self, splits: dict[str, list[FolderUtterance]]) -> None:
        for us in splits.values():
            for u in us:
                u.text = collapse(u.raw)
        known = {c for u in splits["train"] for c in u.text}
        offending = {}
        for name in ("val", "test"):
            for u in splits[name]:
                unseen = set(u.text) - known
                if unseen:
                    offending[f"{u.source} ({name})"] = unseen
        report_characters(
            offending,
            sorted(known),
            self.path,
            "No training transcript holds them, so the network could never emit them.",
        )

    def load_utterances(self) -> dict[str, list[Utterance]]:
        splits = self._listing or self._read_listing()
        self._listing = None
        every = [u for us in splits.values() for u in us]
        fill_lengths(every, self.sample_rate, self.path)
        if self.preload:  # read here, so every undecodable file is counted in one report
            preload_audio(every, self.sample_rate, self.path)
        return splits
