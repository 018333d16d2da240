"""Transcripts for CTC: text normalisation and the character vocabulary.

Every speech dataset turns its transcripts into one alphabet before training, so a
network trained on one set can be evaluated on another (espeak digits, then a real voice
saying them): lower-case letters, the apostrophe inside words (``party's``) and single
spaces between words. :func:`normalize_text` gets there from raw prompt texts: numbers
are spelled out (``"25"`` -> ``"twenty five"``, ``"28.8"`` -> ``"twenty eight point
eight"``, ``"3D"`` -> ``"three d"``), symbols said aloud on a phone keypad become words
(``#`` -> ``pound``, ``*`` -> ``star``, ``%`` -> ``percent``...), bracketed stage
directions (``[ascending tones]``, ``(simple tone sound plays)``, ``<beep>``) are dropped,
and the remaining punctuation goes.

:class:`CharVocabulary` maps symbols to label ids with index 0 the CTC blank. It is
saved as JSON into the run folder, so the ids of a trained network can be decoded later
without the dataset.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

#: the symbol standing for the CTC blank in a vocabulary (never part of a transcript)
BLANK = "<blank>"
#: the default alphabet after the blank: space, apostrophe, a-z
ENGLISH_CHARACTERS = (" ", "'", *string.ascii_lowercase)

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
#: the words a digit is read as, 0-9
DIGIT_WORDS = _ONES[:10]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_ENDINGS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
#: symbols that are spoken as words (phone prompts say "press star", "the pound key")
SYMBOL_WORDS = {
    "#": "pound",
    "*": "star",
    "%": "percent",
    "&": "and",
    "@": "at",
    "+": "plus",
    "=": "equals",
    "$": "dollar",
}


def number_to_words(number: int) -> str:
    """A non-negative integer as English words: ``2025`` -> ``"two thousand twenty five"``.

    American style, without "and" and without hyphens (the vocabulary has no hyphen).
    """
    if number < 0:
        return "minus " + number_to_words(-number)
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_to_words(rest)}" if rest else "")
    for scale, word in _SCALES:
        if number >= scale:
            high, rest = divmod(number, scale)
            return f"{number_to_words(high)} {word}" + (f" {number_to_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def ordinal_to_words(number: int) -> str:
    """``21`` -> ``"twenty first"``: the cardinal with its last word made ordinal."""
    words = number_to_words(number).split()
    last = words[-1]
    if last in _ORDINAL_ENDINGS:
        words[-1] = _ORDINAL_ENDINGS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def digits_to_words(digits: str) -> str:
    """Each digit on its own: ``"0451"`` -> ``"zero four five one"``."""
    return " ".join(_ONES[int(d)] for d in digits)


def _spell_number(match: re.Match) -> str:
    whole, fraction = match.group("whole").replace(",", ""), match.group("fraction")
    if len(whole) > 1 and whole[0] == "0":
        words = digits_to_words(whole)  # a code read digit by digit ("007"), not a quantity
    else:
        words = number_to_words(int(whole))
    if fraction:
        words += " point " + digits_to_words(fraction)
    return f" {words} "


_BRACKETED = re.compile(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>")
_MONEY = re.compile(r"\$(\d[\d,]*(?:\.\d+)?)")
_ORDINAL = re.compile(r"(\d+)(?:st|nd|rd|th)\b")
_GLUED = re.compile(r"(?<=\d)(?=[a-z])|(?<=[a-z])(?=\d)")
_DOTTED = re.compile(r"(?<=[a-z])\.(?=[a-z0-9])|(?<=\d)\.(?=[a-z])")
_NUMBER = re.compile(r"(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fraction>\d+))?")
_NOT_ALLOWED = re.compile(r"[^a-z' ]+")


def normalize_text(text: str) -> str:
    """A raw transcript in the vocabulary's alphabet (module doc): lower case, words only.

    Returns ``""`` when nothing speakable remains (``"[this is a simple beep tone]"``).
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("\u2019", "'").replace("\u2018", "'").lower()
    text = _BRACKETED.sub(" ", text)
    text = _MONEY.sub(lambda m: f" {m.group(1)} dollars ", text)
    text = _ORDINAL.sub(lambda m: f" {ordinal_to_words(int(m.group(1)))} ", text)
    text = _GLUED.sub(" ", text)  # 3d -> 3 d
    text = _DOTTED.sub(" ", text)  # a.m. -> a m., h.323 -> h 323; 28.8 stays a decimal
    text = _NUMBER.sub(_spell_number, text)
    for symbol, word in SYMBOL_WORDS.items():
        text = text.replace(symbol, f" {word} ")
    text = _NOT_ALLOWED.sub(" ", text)
    # apostrophes only inside words: quotes ('like this') go, "don't" stays
    words = [word.strip("'") for word in text.split()]
    return " ".join(word for word in words if word)


class CharVocabulary:
    """Symbols <-> label ids for CTC, index 0 the blank (``BLANK``).

    ``CharVocabulary()`` is the English default: blank, space, apostrophe, a-z (29
    symbols). Any other alphabet is given as its symbols after the blank; every symbol is
    one character. :meth:`from_texts` builds it from a dataset's transcripts.
    """

    def __init__(self, characters: Sequence[str] = ENGLISH_CHARACTERS):
        characters = tuple(characters)
        bad = [c for c in characters if len(c) != 1]
        if bad:
            raise ValueError(f"every vocabulary symbol must be one character, got {bad}")
        if len(set(characters)) != len(characters):
            raise ValueError(f"vocabulary symbols repeat: {characters}")
        self.symbols: tuple[str, ...] = (BLANK, *characters)
        self._ids = {c: i for i, c in enumerate(self.symbols) if i > 0}

    blank_id = 0

    @classmethod
    def from_texts(cls, texts: Iterable[str], minimal: bool = False) -> CharVocabulary:
        """The vocabulary for normalised ``texts``.

        By default the full English alphabet, which every normalised transcript fits, so
        networks trained on different datasets share ids; the texts are checked against
        it. ``minimal`` keeps only the characters that occur (in the default order first,
        then any others sorted).
        """
        seen = set()
        for text in texts:
            seen.update(text)
        if not minimal:
            vocabulary = cls()
            vocabulary.check(seen)
            return vocabulary
        known = [c for c in ENGLISH_CHARACTERS if c in seen]
        return cls(known + sorted(seen - set(known)))

    def check(self, characters: Iterable[str]) -> None:
        unknown = sorted(set(characters) - set(self._ids))
        if unknown:
            raise ValueError(
                f"characters {unknown} are not in the vocabulary {self.symbols[1:]}; "
                "normalise the transcripts first (datamodules.text.normalize_text)"
            )

    def __len__(self) -> int:
        return len(self.symbols)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocabulary) and other.symbols == self.symbols

    def __hash__(self) -> int:
        return hash(self.symbols)

    def __repr__(self) -> str:
        return f"CharVocabulary({''.join(self.symbols[1:])!r})"

    def encode(self, text: str) -> list[int]:
        """Label ids of a normalised text; raises on a character outside the vocabulary."""
        try:
            return [self._ids[c] for c in text]
        except KeyError:
            self.check(text)
            raise

    def decode(self, ids: Iterable[int]) -> str:
        """The text of label ids; blanks are skipped (repeats are NOT collapsed here)."""
        symbols = self.symbols
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(symbols):
                raise ValueError(f"label id {i} is outside the vocabulary of {len(symbols)}")
            if i != self.blank_id:
                out.append(symbols[i])
        return "".join(out)

    # -- the run folder keeps it --------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({"blank": BLANK, "symbols": list(self.symbols)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> CharVocabulary:
        data = json.loads(text)
        symbols = data.get("symbols")
        if not symbols or symbols[0] != data.get("blank", BLANK):
            raise ValueError("a vocabulary file holds 'symbols' starting with the blank")
        return cls(symbols[1:])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> CharVocabulary:
        return cls.from_json(Path(path).read_text())
