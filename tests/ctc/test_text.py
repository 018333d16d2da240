"""Transcript normalisation and the character vocabulary."""

from __future__ import annotations

import pytest

from datamodules.text import (
    BLANK,
    CharVocabulary,
    normalize_text,
    number_to_words,
    ordinal_to_words,
)

#: spellings written out by hand (American English, no "and")
NUMBERS = {
    0: "zero",
    7: "seven",
    13: "thirteen",
    20: "twenty",
    25: "twenty five",
    99: "ninety nine",
    100: "one hundred",
    101: "one hundred one",
    323: "three hundred twenty three",
    1000: "one thousand",
    1234: "one thousand two hundred thirty four",
    8500: "eight thousand five hundred",
    1_000_001: "one million one",
    2_000_300_000: "two billion three hundred thousand",
}


@pytest.mark.parametrize("number, words", NUMBERS.items())
def test_numbers_are_spelled_out(number, words):
    assert number_to_words(number) == words


@pytest.mark.parametrize(
    "number, words",
    [(1, "first"), (2, "second"), (3, "third"), (12, "twelfth"), (20, "twentieth"),
     (21, "twenty first"), (100, "one hundredth")],
)  # fmt: skip
def test_ordinals(number, words):
    assert ordinal_to_words(number) == words


@pytest.mark.parametrize(
    "raw, normalised",
    [
        ("Please press 1 to mute, 25 for more.", "please press one to mute twenty five for more"),
        ("followed by the # key", "followed by the pound key"),
        ("press * now", "press star now"),
        ("50% off", "fifty percent off"),
        ("$5 fee", "five dollars fee"),
        ("at least a 28.8 kilobit modem", "at least a twenty eight point eight kilobit modem"),
        ("3D audio enabled", "three d audio enabled"),
        ("A.M.", "a m"),
        ("H.323", "h three hundred twenty three"),
        ("the 21st of May", "the twenty first of may"),
        ("PIN 007", "pin zero zero seven"),
        ("1,234 users", "one thousand two hundred thirty four users"),
        ("If you'd like, your party's extension", "if you'd like your party's extension"),
        ('"don\'t" call', "don't call"),
        ("Please leave a message. (simple tone sound plays)", "please leave a message"),
        ("at [@]", "at"),
        ("Call-Forward on No Answer.", "call forward on no answer"),
        ("Café", "cafe"),
    ],
)
def test_normalisation(raw, normalised):
    assert normalize_text(raw) == normalised


@pytest.mark.parametrize("raw", ["[ascending tones]", "(10 seconds of silence)", "<beep>", "..."])
def test_unspeakable_entries_normalise_to_nothing(raw):
    assert normalize_text(raw) == ""


def test_default_vocabulary_layout():
    vocabulary = CharVocabulary()
    assert len(vocabulary) == 29
    assert vocabulary.symbols[:4] == (BLANK, " ", "'", "a")
    assert vocabulary.symbols[-1] == "z" and vocabulary.blank_id == 0


def test_encode_decode_round_trip():
    vocabulary = CharVocabulary()
    text = "don't press one"
    ids = vocabulary.encode(text)
    assert 0 not in ids and len(ids) == len(text)
    assert ids[:3] == [3 + ord("d") - ord("a"), 3 + ord("o") - ord("a"), 3 + 13]
    assert vocabulary.decode(ids) == text
    assert vocabulary.decode([0, *ids[:2], 0]) == "do"  # blanks skipped


def test_encoding_an_unnormalised_text_says_what_to_do():
    with pytest.raises(ValueError, match=r"\['1', 'P'\].*normalize_text"):
        CharVocabulary().encode("Press 1")
    with pytest.raises(ValueError, match="outside the vocabulary of 29"):
        CharVocabulary().decode([29])


def test_vocabulary_from_texts():
    assert CharVocabulary.from_texts(["one two", "three"]) == CharVocabulary()
    minimal = CharVocabulary.from_texts(["one two", "three"], minimal=True)
    assert minimal.symbols == (BLANK, " ", "e", "h", "n", "o", "r", "t", "w")
    with pytest.raises(ValueError, match=r"\['#'\]"):
        CharVocabulary.from_texts(["one #"])


def test_vocabulary_json_round_trip(tmp_path):
    vocabulary = CharVocabulary("abc ")
    path = vocabulary.save(tmp_path / "run" / "vocabulary.json")
    loaded = CharVocabulary.load(path)
    assert loaded == vocabulary and loaded.encode("cab a") == vocabulary.encode("cab a")
    path.write_text('{"symbols": ["a", "b"]}')
    with pytest.raises(ValueError, match="starting with the blank"):
        CharVocabulary.load(path)


def test_bad_vocabularies_are_refused():
    with pytest.raises(ValueError, match="one character"):
        CharVocabulary(["ab"])
    with pytest.raises(ValueError, match="repeat"):
        CharVocabulary("aba")
