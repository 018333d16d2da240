"""Asterisk's English voice prompts: real speech of one US-English speaker, from Debian.

``apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en`` (both by name,
or apt picks the GSM variant) installs 568 recordings (8 kHz 16-bit WAV) under
``/usr/share/asterisk/sounds/en_US_f_Allison/`` (subfolders digits/, letters/,
phonetic/, silence/...) and their transcripts in
``/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz``: one ``relpath: text``
line each, ``;`` lines being comments. Silence and tone entries (their text is only a
bracketed description) are dropped, as are entries without a WAV; the rest is
normalised (``"press 1"`` -> ``"press one"``) and resampled to 16 kHz.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from datamodules.audio import audio_length
from datamodules.download import DatasetUnavailableError
from datamodules.speech import SPLITS, SpeechDataModule, Utterance, split_of
from datamodules.text import normalize_text

ASTERISK_SOUNDS_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
PACKAGES = "asterisk-core-sounds-en-wav asterisk-core-sounds-en"
#: the recordings of single digits, the real-voice test of a spoken_digits network
DIGIT_KEYS = tuple(f"digits/{d}" for d in range(10))
SUBSETS = ("all", "digits", "digits_folder")


def read_prompt_transcripts(path: str | Path) -> dict[str, str]:
    """{relative path without extension: raw text} from a ``core-sounds-*.txt(.gz)`` file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as stream:
        lines = stream.read().splitlines()
    entries = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        key, sep, text = line.partition(":")
        if not sep:
            continue  # not an entry (a stray line of a wrapped comment)
        entries[key.strip()] = text.strip()
    return entries


def prompt_utterances(
    sounds_dir: str | Path = ASTERISK_SOUNDS_DIR,
    transcripts: str | Path = ASTERISK_TRANSCRIPTS,
) -> list[Utterance]:
    """Every speakable prompt with a WAV, sorted by key; texts normalised (module doc)."""
    sounds_dir, transcripts = Path(sounds_dir), Path(transcripts)
    if not transcripts.is_file() or not sounds_dir.is_dir():
        raise DatasetUnavailableError(
            f"asterisk_prompts needs {sounds_dir} and {transcripts}: install Debian's "
            f"{PACKAGES} (apt-get install {PACKAGES}; name both, or apt picks the GSM "
            "variant), or pass sounds_dir and transcripts."
        )
    utterances = []
    for key, raw in sorted(read_prompt_transcripts(transcripts).items()):
        text = normalize_text(raw)
        wav = sounds_dir / f"{key}.wav"
        if key.startswith("silence/") or not text or not wav.is_file():
            continue
        utterances.append(Utterance(key=key, text=text, num_samples=audio_length(wav), path=wav))
    if not utterances:
        raise DatasetUnavailableError(
            f"no prompt of {transcripts} has a WAV in {sounds_dir}; install {PACKAGES}"
        )
    return utterances


class AsteriskPromptsDataModule(SpeechDataModule):
    """Asterisk's prompts (module doc), split 80/10/10 by a hash of each file's path.

    ``subset``: ``"all"`` (about 550 prompts, 0.5 to 30 s); ``"digits"``: the ten
    recordings digits/0 to digits/9 ("zero" ... "nine"); ``"digits_folder"``: every
    recording of digits/ (numbers, days, months, ordinals). ``test_all``: the test split
    holds every selected recording, train and val keep the hash split; that is the
    cross-domain test of a network trained elsewhere (spoken_digits) on a real voice.
    """

    name = "asterisk_prompts"

    def __init__(
        self,
        *,
        subset: str = "all",
        test_all: bool = False,
        sounds_dir: str | Path = ASTERISK_SOUNDS_DIR,
        transcripts: str | Path = ASTERISK_TRANSCRIPTS,
        **options,
    ):
        if subset not in SUBSETS:
            raise ValueError(f"unknown asterisk subset {subset!r}; expected one of {SUBSETS}")
        super().__init__(**options)
        self.subset, self.test_all = subset, test_all
        self.sounds_dir, self.transcripts = Path(sounds_dir), Path(transcripts)

    def prepare_data(self) -> None:
        if not self.transcripts.is_file() or not self.sounds_dir.is_dir():
            prompt_utterances(self.sounds_dir, self.transcripts)  # raises, saying what to install

    def select(self, utterances: list[Utterance]) -> list[Utterance]:
        if self.subset == "digits":
            return [u for u in utterances if u.key in DIGIT_KEYS]
        if self.subset == "digits_folder":
            return [u for u in utterances if u.key.startswith("digits/")]
        return utterances

    def load_utterances(self) -> dict[str, list[Utterance]]:
        utterances = self.select(prompt_utterances(self.sounds_dir, self.transcripts))
        splits = {name: [u for u in utterances if split_of(u.key) == name] for name in SPLITS}
        if self.test_all:
            splits["test"] = list(utterances)
            # ten recordings may hash into no train or val file; they then serve as both
            for name in ("train", "val"):
                splits[name] = splits[name] or list(utterances)
        return splits
