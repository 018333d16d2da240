"""LibriSpeech and Libri-Light limited: read-book English speech, 16 kHz FLAC.

On disk (what torchaudio's downloaders extract under ``root``)::

    <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    <root>/LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    <root>/librispeech_finetuning/1h/<0..5>/<clean|other>/<speaker>/<chapter>/...
    <root>/librispeech_finetuning/9h/<clean|other>/<speaker>/<chapter>/...

A ``.trans.txt`` holds ``<utterance-id> TRANSCRIPT`` lines (upper case). The folders are
walked here and the FLACs read with soundfile, because ``torchaudio.load`` needs
torchcodec and FFmpeg since torchaudio 2.9; torchaudio's dataset classes only download.
Lengths come from the FLAC headers once and are cached in ``losslab_lengths.json`` next
to the subset, so bucketing the 28,539 files of train-clean-100 needs no audio decoding.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torchaudio.datasets.librilight_limited as librilight
import torchaudio.datasets.librispeech as librispeech

from datamodules.audio import audio_length
from datamodules.download import DatasetUnavailableError, fetch
from datamodules.speech import SpeechDataModule, Utterance
from datamodules.text import normalize_text

LIBRISPEECH_FOLDER = librispeech.FOLDER_IN_ARCHIVE
LIBRISPEECH_URL = "http://www.openslr.org/resources/12/"
LIBRISPEECH_SUBSETS = tuple(librispeech._DATA_SUBSETS)
LIBRILIGHT_FOLDER = librilight._ARCHIVE_NAME
LIBRILIGHT_URL = librilight._URL
#: Libri-Light limited subsets -> their folders under librispeech_finetuning/
LIBRILIGHT_SUBSETS = {"10min": ["1h/0"], "1h": ["1h"], "10h": ["1h", "9h"]}
#: bump when the cached lengths change meaning
LENGTHS_VERSION = 1


def read_trans_txt(path: str | Path) -> dict[str, str]:
    """{utterance id: transcript} of one ``<speaker>-<chapter>.trans.txt``."""
    entries = {}
    for line in Path(path).read_text().splitlines():
        key, _, text = line.strip().partition(" ")
        if key:
            entries[key] = text.strip()
    return entries


def chapter_utterances(folder: str | Path, prefix: str) -> list[Utterance]:
    """Utterances of every ``*.trans.txt`` below ``folder`` (any depth), sorted by id.

    Keys are ``<prefix>/<utterance id>``; texts are normalised; a transcript line
    without its FLAC is an error (a broken extraction), not a silent gap.
    """
    folder = Path(folder)
    utterances = []
    for trans in sorted(folder.rglob("*.trans.txt")):
        for key, text in read_trans_txt(trans).items():
            flac = trans.parent / f"{key}.flac"
            if not flac.is_file():
                raise FileNotFoundError(f"{trans} lists {key}, but {flac} is missing")
            utterances.append(
                Utterance(
                    key=f"{prefix}/{key}", text=normalize_text(text), num_samples=0, path=flac
                )
            )
    utterances.sort(key=lambda u: u.key)
    return utterances


def fill_lengths(utterances: list[Utterance], cache: Path) -> None:
    """Sets ``num_samples`` from the FLAC headers, cached in the ``cache`` JSON file."""
    known = {}
    if cache.is_file():
        data = json.loads(cache.read_text())
        if data.get("version") == LENGTHS_VERSION:
            known = data["lengths"]
    missing = [u for u in utterances if u.key not in known]
    if missing:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for u, n in zip(
                missing, pool.map(lambda u: audio_length(u.path), missing), strict=True
            ):
                known[u.key] = n
        try:
            partial = cache.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps({"version": LENGTHS_VERSION, "lengths": known}))
            partial.replace(cache)
        except OSError:
            pass  # a read-only dataset folder: measure again next time
    for u in utterances:
        u.num_samples = known[u.key]


class LibriSpeechFiles:
    """Finds, downloads and lists the LibriSpeech subsets under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.folder = self.root / LIBRISPEECH_FOLDER

    def available(self, subset: str) -> bool:
        return (self.folder / subset).is_dir()

    def how_to_supply(self, subsets: Sequence[str]) -> str:
        archives = ", ".join(f"{LIBRISPEECH_URL}{s}.tar.gz" for s in subsets)
        return (
            f"Download {archives} and extract them in {self.root}, so that "
            f"{self.folder}/<subset>/<speaker>/<chapter>/ holds the .flac files and the "
            "<speaker>-<chapter>.trans.txt transcripts."
        )

    def download(self, subsets: Sequence[str]) -> None:
        for subset in subsets:
            check_subset(subset)
            if self.available(subset):
                continue
            fetch(
                f"LibriSpeech {subset}",
                [f"{LIBRISPEECH_URL}{subset}.tar.gz"],
                lambda subset=subset: librispeech.LIBRISPEECH(self.root, url=subset, download=True),
                f"Looked in {self.folder / subset}. {self.how_to_supply([subset])}",
            )

    def utterances(self, subset: str) -> list[Utterance]:
        check_subset(subset)
        folder = self.folder / subset
        if not folder.is_dir():
            raise DatasetUnavailableError(
                f"LibriSpeech {subset} not found in {folder}; call prepare_data() to download "
                f"it. {self.how_to_supply([subset])}"
            )
        utterances = chapter_utterances(folder, subset)
        if not utterances:
            raise DatasetUnavailableError(f"{folder} holds no .trans.txt transcript")
        fill_lengths(utterances, self.folder / f"{subset}.losslab_lengths.json")
        return utterances


def check_subset(subset: str) -> None:
    if subset not in LIBRISPEECH_SUBSETS:
        raise ValueError(
            f"unknown LibriSpeech subset {subset!r}; expected one of {LIBRISPEECH_SUBSETS}"
        )


class LibriSpeechDataModule(SpeechDataModule):
    """LibriSpeech (module doc): ``train_subsets`` for training (default train-clean-100,
    100 h), ``val_subset`` (dev-clean, 5.4 h) and ``test_subset`` (test-clean, 5.4 h).

    The audio stays on disk (``preload`` False) and is decoded in ``num_workers``
    processes; batches are sized in seconds of audio (``max_batch_seconds``).
    """

    name = "librispeech"

    def __init__(
        self,
        *,
        train_subsets: Sequence[str] = ("train-clean-100",),
        val_subset: str = "dev-clean",
        test_subset: str = "test-clean",
        preload: bool = False,
        **options,
    ):
        for subset in (*train_subsets, val_subset, test_subset):
            check_subset(subset)
        super().__init__(preload=preload, **options)
        self.train_subsets = tuple(train_subsets)
        self.val_subset, self.test_subset = val_subset, test_subset
        self.files = LibriSpeechFiles(self.root)

    def prepare_data(self) -> None:
        self.files.download([*self.train_subsets, self.val_subset, self.test_subset])

    def train_utterances(self) -> list[Utterance]:
        return [u for s in self.train_subsets for u in self.files.utterances(s)]

    def load_utterances(self) -> dict[str, list[Utterance]]:
        return {
            "train": self.train_utterances(),
            "val": self.files.utterances(self.val_subset),
            "test": self.files.utterances(self.test_subset),
        }


class LibriLightLimitedDataModule(LibriSpeechDataModule):
    """Libri-Light limited supervision (``subset`` 10min, 1h or 10h of labelled training
    speech, clean and other) for a small-data preset; validation and test on
    LibriSpeech's dev-clean and test-clean.
    """

    name = "librilight_limited"

    def __init__(self, *, subset: str = "1h", **options):
        if subset not in LIBRILIGHT_SUBSETS:
            raise ValueError(
                f"unknown Libri-Light limited subset {subset!r}; "
                f"expected one of {list(LIBRILIGHT_SUBSETS)}"
            )
        super().__init__(train_subsets=(), **options)
        self.subset = subset
        self.librilight_folder = self.root / LIBRILIGHT_FOLDER

    def how_to_supply(self) -> str:
        return (
            f"Download {LIBRILIGHT_URL} and extract it in {self.root}, so that "
            f"{self.librilight_folder}/1h/0/clean/<speaker>/<chapter>/ and the other "
            "folders hold the .flac files and .trans.txt transcripts."
        )

    def prepare_data(self) -> None:
        if not self.librilight_folder.is_dir():
            fetch(
                "Libri-Light limited",
                [LIBRILIGHT_URL],
                lambda: librilight.LibriLightLimited(self.root, self.subset, download=True),
                f"Looked in {self.librilight_folder}. {self.how_to_supply()}",
            )
        self.files.download([self.val_subset, self.test_subset])

    def train_utterances(self) -> list[Utterance]:
        utterances = []
        for part in LIBRILIGHT_SUBSETS[self.subset]:
            folder = self.librilight_folder / part
            if not folder.is_dir():
                raise DatasetUnavailableError(
                    f"Libri-Light limited {self.subset} needs {folder}; call prepare_data() "
                    f"to download it. {self.how_to_supply()}"
                )
            utterances += chapter_utterances(folder, f"librilight/{part}")
        fill_lengths(utterances, self.librilight_folder / f"{self.subset}.losslab_lengths.json")
        return utterances
