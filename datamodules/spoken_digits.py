"""Spoken digit strings synthesised by espeak-ng: an offline speech set to learn from.

Each utterance is a string of 1 to ``max_digits`` random digits ("three one four"),
spoken by Debian's ``espeak-ng`` (``apt-get install espeak-ng``) with a random English
voice (``en``, ``en-us``, ``en-gb-x-rp``, Scottish, Caribbean... each with a male or
female variant ``+m1``..``+m7`` / ``+f1``..``+f5``), speed (words per minute), pitch,
word gap and loudness. espeak-ng writes 22.05 kHz WAVs; they are resampled to 16 kHz,
by default low-passed at 4 kHz (``narrowband``) so the audio has the telephone band of the
asterisk recordings the set is also evaluated on.

The set is generated once into ``<root>/spoken_digits/<fingerprint>/``: the WAVs
(16-bit, 16 kHz) and ``manifest.json`` listing file, split and transcript. The
fingerprint hashes every generation parameter (seed, sizes, voices, ranges), so a
changed parameter makes a new set and an unchanged one reuses the files. Generation
runs espeak-ng processes from a small thread pool; measured on the 2-core machine:
see docs/ctc.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import soundfile
import torch
import torchaudio.transforms

from datamodules.audio import SAMPLE_RATE, to_int16
from datamodules.seeding import rng, split_seed
from datamodules.speech import SPLITS, SpeechDataModule, Utterance
from datamodules.text import digits_to_words

#: bump when the generated audio changes meaning, so old sets are not reused
GENERATOR_VERSION = 1
DEFAULT_VOICES = (
    "en",
    "en-us",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
)
DEFAULT_VARIANTS = (
    "",
    *(f"+m{i}" for i in range(1, 8)),
    *(f"+f{i}" for i in range(1, 6)),
)


class EspeakUnavailableError(RuntimeError):
    """espeak-ng is not installed; the message names the Debian package."""


def espeak_binary() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise EspeakUnavailableError(
            "spoken_digits is synthesised with espeak-ng, which is not installed: "
            "apt-get install espeak-ng (Debian package espeak-ng)"
        )
    return binary


@dataclass(frozen=True)
class GenerationSpec:
    """Everything the generated audio depends on (its hash names the folder)."""

    seed: int = 0
    #: the test split's utterances follow from this one (train and val from ``seed``)
    test_seed: int = 0
    sizes: dict[str, int] = field(default_factory=lambda: {"train": 3000, "val": 300, "test": 300})
    min_digits: int = 1
    max_digits: int = 7
    voices: tuple[str, ...] = DEFAULT_VOICES
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    speed: tuple[int, int] = (130, 200)  # words per minute
    pitch: tuple[int, int] = (25, 75)  # espeak's 0..99
    word_gap: tuple[int, int] = (0, 4)  # extra pause between words, in 10 ms units
    gain: tuple[float, float] = (0.3, 1.0)
    narrowband: bool = True
    version: int = GENERATOR_VERSION

    def fingerprint(self) -> str:
        fields = asdict(self)
        if fields["test_seed"] == fields["seed"]:
            # the plan of a set generated before test_seed existed: same files, same name
            del fields["test_seed"]
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def plan(self) -> list[dict]:
        """One entry per utterance: split, file name, digits and espeak-ng settings."""
        entries = []
        for split in SPLITS:
            generator = rng(split_seed(self.seed, self.test_seed, split), "spoken_digits", split)
            for i in range(self.sizes.get(split, 0)):
                count = int(generator.integers(self.min_digits, self.max_digits + 1))
                digits = "".join(str(d) for d in generator.integers(0, 10, count))
                voice = self.voices[int(generator.integers(len(self.voices)))]
                variant = self.variants[int(generator.integers(len(self.variants)))]
                entries.append(
                    {
                        "split": split,
                        "file": f"{split}/{i:05d}.wav",
                        "text": digits_to_words(digits),
                        "voice": voice + variant,
                        "speed": int(generator.integers(self.speed[0], self.speed[1] + 1)),
                        "pitch": int(generator.integers(self.pitch[0], self.pitch[1] + 1)),
                        "word_gap": int(generator.integers(self.word_gap[0], self.word_gap[1] + 1)),
                        "gain": float(generator.uniform(*self.gain)),
                    }
                )
        return entries


@functools.cache
def resampler(rate: int, narrowband: bool) -> torchaudio.transforms.Resample:
    """rate -> 16 kHz; ``narrowband`` cuts at 4 kHz, the band of 8 kHz telephone audio.

    The transform holds its interpolation kernel, so building it once per rate saves
    most of the cost of a short clip.
    """
    rolloff = 4000 / (SAMPLE_RATE / 2) if narrowband else 0.99
    return torchaudio.transforms.Resample(rate, SAMPLE_RATE, rolloff=rolloff)


def synthesise(entry: dict, path: Path, narrowband: bool, binary: str) -> int:
    """Speak one entry into ``path`` (16 kHz, 16-bit); returns its length in samples."""
    with tempfile.TemporaryDirectory(prefix="espeak") as tmp:
        raw = Path(tmp) / "raw.wav"
        command = [
            binary,
            "-w", str(raw),
            "-v", entry["voice"],
            "-s", str(entry["speed"]),
            "-p", str(entry["pitch"]),
            "-g", str(entry["word_gap"]),
            entry["text"],
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0 or not raw.is_file():
            raise RuntimeError(f"espeak-ng failed on {entry}: {done.stderr.strip()}")
        data, rate = soundfile.read(str(raw), dtype="float32")
    waveform = resampler(rate, narrowband)(torch.from_numpy(data))
    peak = float(waveform.abs().max()) or 1.0
    waveform = waveform * (entry["gain"] * 0.9 / peak)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), to_int16(waveform).numpy(), SAMPLE_RATE, subtype="PCM_16")
    return len(waveform)


def generate(spec: GenerationSpec, folder: Path, workers: int | None = None) -> dict:
    """Generate the set of ``spec`` into ``folder`` unless its manifest is already there.

    Returns the manifest: ``{"spec", "seconds_to_generate", "entries": [{file, split,
    text, num_samples, ...}]}``. The manifest is written last, atomically, so an
    interrupted generation is redone (files already written are overwritten).
    """
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("fingerprint") == spec.fingerprint():
            return manifest
    binary = espeak_binary()
    folder.mkdir(parents=True, exist_ok=True)
    entries = spec.plan()
    workers = workers or min(4, 2 * (os.cpu_count() or 1))
    start = time.monotonic()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # resampling a clip takes < 1 ms on one thread, 100 ms on many
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            lengths = list(
                pool.map(
                    lambda e: synthesise(e, folder / e["file"], spec.narrowband, binary), entries
                )
            )
    finally:
        torch.set_num_threads(threads)
    for entry, length in zip(entries, lengths, strict=True):
        entry["num_samples"] = length
    manifest = {
        "fingerprint": spec.fingerprint(),
        "spec": asdict(spec),
        "seconds_to_generate": round(time.monotonic() - start, 1),
        "workers": workers,
        "entries": entries,
    }
    partial = folder / f"manifest.{os.getpid()}.tmp"
    partial.write_text(json.dumps(manifest, indent=0))
    partial.replace(manifest_path)
    return manifest


class SpokenDigitsDataModule(SpeechDataModule):
    """Digit strings spoken by espeak-ng (module doc): 3000 / 300 / 300 utterances by default.

    ``train_size``, ``val_size``, ``test_size``, ``min_digits``, ``max_digits``,
    ``speed``, ``pitch``, ``narrowband``, ``seed`` and ``test_seed`` shape the generated
    set (a new one per combination; test utterances follow from ``test_seed``, the
    others from ``seed``); ``generation_workers`` is the size of the espeak-ng pool.
    Transcripts are digit words, "three one four".
    """

    name = "spoken_digits"

    def __init__(
        self,
        *,
        train_size: int = 3000,
        val_size: int = 300,
        test_size: int = 300,
        min_digits: int = 1,
        max_digits: int = 7,
        speed: tuple[int, int] = (130, 200),
        pitch: tuple[int, int] = (25, 75),
        narrowband: bool = True,
        generation_workers: int | None = None,
        **options,
    ):
        if not 1 <= min_digits <= max_digits:
            raise ValueError(f"need 1 <= min_digits <= max_digits, got {min_digits}, {max_digits}")
        super().__init__(**options)
        self.spec = GenerationSpec(
            seed=self.seed,
            test_seed=self.test_seed,
            sizes={"train": train_size, "val": val_size, "test": test_size},
            min_digits=min_digits,
            max_digits=max_digits,
            speed=tuple(speed),
            pitch=tuple(pitch),
            narrowband=narrowband,
        )
        self.generation_workers = generation_workers
        self.folder = self.root / "spoken_digits" / self.spec.fingerprint()
        self.manifest: dict | None = None

    def prepare_data(self) -> None:
        self.manifest = generate(self.spec, self.folder, self.generation_workers)

    def load_utterances(self) -> dict[str, list[Utterance]]:
        if self.manifest is None:
            self.prepare_data()  # a no-op read of the manifest once generated
        splits = {name: [] for name in SPLITS}
        for entry in self.manifest["entries"]:
            splits[entry["split"]].append(
                Utterance(
                    key=entry["file"],
                    text=entry["text"],
                    num_samples=entry["num_samples"],
                    path=self.folder / entry["file"],
                )
            )
        return splits
