"""CTC decoding: greedy on hand-made frames, against a reference loop, and beam search."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from datamodules.text import CharVocabulary
from models.ctc_decoding import BeamSearchDecoder, collapse, greedy_decode

HAVE_FLASHLIGHT = importlib.util.find_spec("flashlight") is not None


def frames(paths: list[list[int]], vocabulary_size: int, length: int) -> torch.Tensor:
    """One-hot-ish log-probabilities (B, length, V) whose arg-max follows each path."""
    scores = torch.full((len(paths), length, vocabulary_size), -8.0)
    for row, path in enumerate(paths):
        for t in range(length):
            scores[row, t, path[t] if t < len(path) else 0] = -0.01
    return scores


def test_greedy_collapses_repeats_and_drops_blanks():
    # a a - a b b -   ->  a a b     (the blank separates the repeated a)
    scores = frames([[1, 1, 0, 1, 2, 2, 0], [0, 0, 3, 3, 3, 0, 3]], 4, 7)
    assert greedy_decode(scores) == [[1, 1, 2], [3, 3]]


def test_greedy_ignores_frames_past_each_length():
    scores = frames([[1, 2, 3, 3], [2, 2, 1, 3]], 4, 4)
    assert greedy_decode(scores, torch.tensor([2, 3])) == [[1, 2], [2, 1]]
    assert greedy_decode(scores, torch.tensor([0, 4])) == [[], [2, 1, 3]]


def test_greedy_matches_a_per_utterance_loop_on_random_scores():
    torch.manual_seed(0)
    scores = torch.randn(16, 40, 6)
    lengths = torch.randint(0, 41, (16,))
    expected = [collapse(scores[b, : lengths[b]].argmax(-1).tolist()) for b in range(16)]
    assert greedy_decode(scores, lengths) == expected


def test_greedy_decodes_text_with_the_vocabulary():
    vocabulary = CharVocabulary()
    ids = vocabulary.encode("see you")
    path = [i for label in ids for i in (label, 0)]
    assert vocabulary.decode(greedy_decode(frames([path], 29, len(path)))[0]) == "see you"


def test_greedy_refuses_bad_shapes():
    with pytest.raises(ValueError, match=r"\(B, T, V\)"):
        greedy_decode(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="3 lengths for a batch of 2"):
        greedy_decode(torch.zeros(2, 4, 3), torch.tensor([1, 2, 3]))


@pytest.mark.skipif(not HAVE_FLASHLIGHT, reason="flashlight-text is not installed (extra 'beam')")
def test_beam_search_agrees_with_greedy_on_confident_frames_and_sums_alignments():
    vocabulary = CharVocabulary()
    decoder = BeamSearchDecoder(vocabulary.symbols, beam_size=8)
    ids = vocabulary.encode("hello world")
    path = [i for label in ids for i in (label, label, 0)]
    scores = frames([path, path[:9]], len(vocabulary), len(path))
    lengths = torch.tensor([len(path), 9])
    assert decoder(scores, lengths) == greedy_decode(scores, lengths)
    assert vocabulary.decode(decoder(scores, lengths)[1]) == "hel"
    # greedy's best path reads "-" (0.4 each), but "a" over both frames has mass 1 - 0.4^2
    # spread over the paths aa, a-, -a: the labelling "a" wins, which greedy cannot see
    probs = torch.tensor([[[0.4, 0.3, 0.3], [0.4, 0.3, 0.3]]])
    small = BeamSearchDecoder((vocabulary.symbols[0], "a", "b"), beam_size=8)
    assert greedy_decode(probs.log()) == [[]]
    assert small(probs.log()) in ([[1]], [[2]])


def test_beam_search_checks_the_vocabulary_size():
    if not HAVE_FLASHLIGHT:
        with pytest.raises(ImportError, match="pip install flashlight-text"):
            BeamSearchDecoder(CharVocabulary().symbols)
        return
    decoder = BeamSearchDecoder(CharVocabulary().symbols)
    with pytest.raises(ValueError, match=r"\(B, T, 29\)"):
        decoder(torch.zeros(1, 5, 30))
