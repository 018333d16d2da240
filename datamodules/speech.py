"""Speech recognition data for CTC: utterances, the shared datamodule, and a synthetic set.

Every speech datamodule yields :class:`~datamodules.batch.Batch` objects with

- ``inputs``: (B, T) float32 mono waveforms at 16 kHz, zero-padded;
- ``input_lengths``: (B,) int64, valid samples of each waveform;
- ``targets``: (B, S) int64 label ids of the normalised transcript (padded with 0);
- ``target_lengths``: (B,) int64.

Features (log-mel) and SpecAugment are computed by the model side (models/speech.py), on
the device, so datamodules stay format-only. ``input_shape`` is ``(1,)``: one channel of
audio samples per time step, the time axis being the padded ``T``.

Right after construction a datamodule says ``problem_type = "ctc"``, ``target_kind =
"label_sequences"``, ``vocabulary`` (the symbols, index 0 the blank), ``num_classes``
(their number, blank included) and ``sample_rate``. The vocabulary is the English
default of :class:`~datamodules.text.CharVocabulary` for every real dataset, so a
network trained on one set decodes another; ``setup`` checks that every transcript fits
it and ``save_vocabulary`` writes it into the run folder.

The datasets: asterisk_prompts and spoken_digits (datamodules/asterisk.py,
datamodules/spoken_digits.py), LibriSpeech and Libri-Light limited
(datamodules/librispeech.py), and :class:`SyntheticCTCDataModule` here.
"""

from __future__ import annotations

import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import lightning
import numpy as np
import torch
from torch.utils.data import Dataset

from datamodules.audio import SAMPLE_RATE, from_int16, read_audio, to_int16
from datamodules.seeding import rng, split_seed
from datamodules.speech_batching import BucketBatchSampler, SpeechLoader
from datamodules.text import CharVocabulary

SPLITS = ("train", "val", "test")


@dataclass
class Utterance:
    """One recording and its normalised transcript.

    ``num_samples`` is its length at 16 kHz (known before reading the audio, for
    bucketing). The audio is either in memory (``audio``: int16 at 16 kHz) or read from
    ``path`` when the utterance is used.
    """

    key: str
    text: str
    num_samples: int
    path: Path | None = None
    audio: torch.Tensor | None = None

    @property
    def seconds(self) -> float:
        return self.num_samples / SAMPLE_RATE

    def waveform(self) -> torch.Tensor:
        """float32 (T,) at 16 kHz."""
        if self.audio is not None:
            return from_int16(self.audio)
        if self.path is None:
            raise ValueError(f"utterance {self.key!r} has neither audio nor a path")
        return read_audio(self.path)


def split_of(key: str, val_fraction: float = 0.1, test_fraction: float = 0.1) -> str:
    """The split of ``key`` ("train", "val" or "test"), from a hash of the key alone.

    A file's split never changes: not with the seed, nor when files are added or removed.
    """
    position = zlib.crc32(key.encode()) / 2**32
    if position < test_fraction:
        return "test"
    if position < test_fraction + val_fraction:
        return "val"
    return "train"


def read_sphinx_transcription(path: str | Path) -> dict[str, str]:
    """CMU Sphinx transcripts, ``<s> words </s> (file-id)`` per line -> {file id: words}."""
    entries = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        match = re.fullmatch(r"(.*?)\s*\(([^()]+)\)", line)
        if match is None:
            raise ValueError(f"{path}:{number}: expected 'words (file-id)', got {line!r}")
        words = match.group(1).replace("<s>", " ").replace("</s>", " ")
        entries[match.group(2).strip()] = " ".join(words.split())
    return entries


class UtteranceDataset(Dataset):
    """Map-style dataset: index -> (waveform float32 (T,), label ids int64 (S,))."""

    def __init__(self, utterances: list[Utterance], vocabulary: CharVocabulary):
        self.utterances, self.vocabulary = utterances, vocabulary
        self.labels = [
            torch.tensor(vocabulary.encode(u.text), dtype=torch.int64) for u in utterances
        ]

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.utterances[index].waveform(), self.labels[index]

    @property
    def lengths(self) -> list[int]:
        return [u.num_samples for u in self.utterances]


class SpeechDataModule(lightning.LightningDataModule):
    """The shared datamodule of the speech sets: subclasses implement ``load_utterances``.

    Batching (datamodules/speech_batching.py): ``batch_size`` utterances at most per
    batch, and with ``max_batch_seconds`` at most that much padded audio per batch (the
    usual way to size speech batches: a GPU fits seconds of audio, not a count);
    ``bucket_size`` utterances are sorted together. Evaluation batches use
    ``eval_batch_size`` (default ``batch_size``) and the same seconds budget.

    ``test_seed``: what generated sets draw their test split from (``seed`` draws train
    and validation; :func:`~datamodules.seeding.split_seed`); recorded sets, whose
    splits follow from file names, ignore it.

    ``max_train_seconds`` drops longer training utterances (memory); ``preload`` reads
    all audio into memory (int16) once in ``setup``, for sets of a few hours at most;
    ``num_workers`` reads and decodes in worker processes otherwise.
    """

    problem_type = "ctc"
    target_kind = "label_sequences"
    input_shape: tuple[int, ...] = (1,)
    sample_rate = SAMPLE_RATE
    name: str

    def __init__(
        self,
        root: str | Path = "data",
        batch_size: int = 32,
        seed: int = 0,
        eval_batch_size: int | None = None,
        max_batch_seconds: float | None = None,
        bucket_size: int = 1000,
        max_train_seconds: float | None = None,
        preload: bool = True,
        num_workers: int = 0,
        vocabulary: CharVocabulary | None = None,
        test_seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["vocabulary"])
        self.root = Path(root)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.seed, self.max_batch_seconds, self.bucket_size = seed, max_batch_seconds, bucket_size
        self.test_seed = test_seed
        self.max_train_seconds, self.preload, self.num_workers = (
            max_train_seconds,
            preload,
            num_workers,
        )
        self.vocab = vocabulary or CharVocabulary()
        self.vocabulary: tuple[str, ...] = self.vocab.symbols
        self.num_classes = len(self.vocab)
        self.class_names = list(self.vocab.symbols)
        self.datasets: dict[str, UtteranceDataset] = {}

    # -- hooks -------------------------------------------------------------------------

    def load_utterances(self) -> dict[str, list[Utterance]]:
        """{"train": [...], "val": [...], "test": [...]} with normalised texts."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_utterances()")

    # -- Lightning ---------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        splits = self.load_utterances()
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise ValueError(f"{type(self).__name__}.load_utterances() lacks splits {missing}")
        for name in SPLITS:
            utterances = [u for u in splits[name] if u.text]
            if name == "train" and self.max_train_seconds is not None:
                utterances = [u for u in utterances if u.seconds <= self.max_train_seconds]
            if not utterances:
                raise ValueError(f"{self.name}: the {name} split holds no utterance")
            if self.preload:
                preload(utterances)
            self.vocab.check({c for u in utterances for c in u.text})
            self.datasets[name] = UtteranceDataset(utterances, self.vocab)

    def train_dataloader(self) -> SpeechLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> SpeechLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> SpeechLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> SpeechLoader:
        if not self.datasets:
            raise RuntimeError(f"{type(self).__name__}: call setup() before asking for loaders")
        rank, world_size = 0, 1
        if self.trainer is not None:
            rank, world_size = self.trainer.global_rank, self.trainer.world_size
        dataset = self.datasets[split]
        budget = self.max_batch_seconds
        sampler = BucketBatchSampler(
            dataset.lengths,
            batch_size,
            max_batch_samples=None if budget is None else int(budget * self.sample_rate),
            bucket_size=self.bucket_size,
            shuffle=shuffle,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
        )
        return SpeechLoader(dataset, sampler, num_workers=self.num_workers)

    # -- for the task ------------------------------------------------------------------

    def save_vocabulary(self, folder: str | Path) -> Path:
        """Writes ``vocabulary.json`` into ``folder`` (the run folder); returns its path."""
        return self.vocab.save(Path(folder) / "vocabulary.json")

    def hours(self) -> dict[str, float]:
        return {
            name: sum(u.num_samples for u in d.utterances) / SAMPLE_RATE / 3600
            for name, d in self.datasets.items()
        }

    def __str__(self) -> str:
        sizes = ", ".join(
            f"{k}={len(v)} ({self.hours()[k]:.2f} h)" for k, v in self.datasets.items()
        )
        return f"{type(self).__name__}(name={self.name!r}, {sizes or 'not set up'})"

    __repr__ = __str__


def preload(utterances: list[Utterance]) -> None:
    """Reads the audio of every utterance into memory (int16), in threads."""
    pending = [u for u in utterances if u.audio is None]

    def read(utterance: Utterance) -> None:
        waveform = utterance.waveform()
        utterance.audio = to_int16(waveform)
        utterance.num_samples = len(waveform)

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(read, pending))


class SyntheticCTCDataModule(SpeechDataModule):
    """Tone sequences: each letter a tone burst of its own pitch; learnable in seconds.

    A transcript is 1 to ``max_symbols`` letters drawn from the first ``num_symbols``
    letters of the alphabet (repeats included, so CTC must learn to separate them). Each
    letter sounds for ``tone_ms`` at ``300 * 2 ** (k / 4)`` Hz (letter k: a quarter
    octave apart) followed by ``gap_ms`` of silence, with random amplitude and white noise
    at ``noise`` times the tone's level. The vocabulary is the minimal one, blank and
    the letters used. Train and validation utterances follow from ``seed``, test
    utterances from ``test_seed``.
    """

    name = "synthetic_ctc"

    def __init__(
        self,
        *,
        num_symbols: int = 6,
        max_symbols: int = 5,
        train_size: int = 800,
        val_size: int = 100,
        test_size: int = 100,
        tone_ms: float = 60.0,
        gap_ms: float = 40.0,
        noise: float = 0.1,
        **options,
    ):
        if not 1 <= num_symbols <= 26:
            raise ValueError(f"num_symbols must be within 1..26, got {num_symbols}")
        if max_symbols < 1:
            raise ValueError(f"max_symbols must be positive, got {max_symbols}")
        letters = "abcdefghijklmnopqrstuvwxyz"[:num_symbols]
        options.setdefault("vocabulary", CharVocabulary(tuple(letters)))
        super().__init__(**options)
        self.letters, self.max_symbols = letters, max_symbols
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.tone_ms, self.gap_ms, self.noise = tone_ms, gap_ms, noise

    def tone(self, letter_index: int) -> float:
        return 300.0 * 2 ** (letter_index / 4)

    def load_utterances(self) -> dict[str, list[Utterance]]:
        tone = int(self.tone_ms * SAMPLE_RATE / 1000)
        gap = np.zeros(int(self.gap_ms * SAMPLE_RATE / 1000))
        t = np.arange(tone) / SAMPLE_RATE
        ramp = np.minimum(1.0, np.linspace(0, 8, tone))
        envelope = ramp * ramp[::-1]  # 1/8 fade in and out: no clicks
        # sin(wt + phase) = sin(wt) cos(phase) + cos(wt) sin(phase): two templates a letter
        omega = 2 * np.pi * np.array([self.tone(k) for k in range(len(self.letters))])
        sines = np.sin(omega[:, None] * t) * envelope
        cosines = np.cos(omega[:, None] * t) * envelope
        splits = {}
        for split, size in self.sizes.items():
            generator = rng(split_seed(self.seed, self.test_seed, split), "synthetic_ctc", split)
            utterances = []
            for i in range(size):
                count = int(generator.integers(1, self.max_symbols + 1))
                symbols = generator.integers(0, len(self.letters), count)
                phases = generator.uniform(0, 2 * np.pi, count)
                levels = generator.uniform(0.3, 0.8, count)
                pieces = [gap]
                for k, phase, level in zip(symbols, phases, levels, strict=True):
                    wave = sines[k] * np.cos(phase) + cosines[k] * np.sin(phase)
                    pieces += [level * wave, gap]
                waveform = np.concatenate(pieces)
                waveform += self.noise * 0.5 * generator.standard_normal(len(waveform))
                utterances.append(
                    Utterance(
                        key=f"{split}/{i}",
                        text="".join(self.letters[k] for k in symbols),
                        num_samples=len(waveform),
                        audio=to_int16(torch.from_numpy(waveform).float()),
                    )
                )
            splits[split] = utterances
        return splits


def waveform_stats(utterances: list[Utterance]) -> dict[str, float]:
    """Count, hours and the shortest / median / longest duration (s) of utterances."""
    seconds = np.array([u.seconds for u in utterances])
    return {
        "count": len(utterances),
        "hours": float(seconds.sum() / 3600),
        "min_s": float(seconds.min()) if len(seconds) else 0.0,
        "median_s": float(np.median(seconds)) if len(seconds) else 0.0,
        "max_s": float(seconds.max(initial=0)),
    }
