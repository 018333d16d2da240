"""Turning per-frame CTC scores into label sequences: greedy and beam search.

Greedy decoding takes the best symbol of every frame, merges runs of the same symbol and
drops blanks: ``a a - a b b -`` (``-`` the blank) gives ``a a b``. It is exact for the
most likely *alignment*, not the most likely *labelling*, but on a trained network the
two rarely differ; it is the default.

Beam search (:class:`BeamSearchDecoder`) keeps the ``beam_size`` best label prefixes,
summing over alignments; it goes through ``torchaudio.models.decoder.ctc_decoder``
(lexicon-free, no language model), which needs the ``flashlight-text`` package
(``pip install flashlight-text``, or the project's ``beam`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def greedy_decode(
    scores: torch.Tensor, lengths: torch.Tensor | None = None, blank: int = 0
) -> list[list[int]]:
    """Label ids per utterance from ``scores`` (B, T, V) (logits or log-probabilities).

    Frames at or past ``lengths[b]`` are ignored. Vectorised over the batch: one arg-max,
    one comparison with the previous frame, one mask.
    """
    if scores.ndim != 3:
        raise ValueError(f"expected scores (B, T, V), got shape {tuple(scores.shape)}")
    best = scores.argmax(dim=-1)  # (B, T)
    batch, frames = best.shape
    if lengths is None:
        lengths = torch.full((batch,), frames, dtype=torch.long, device=best.device)
    if len(lengths) != batch:
        raise ValueError(f"{len(lengths)} lengths for a batch of {batch}")
    previous = torch.cat([torch.full_like(best[:, :1], -1), best[:, :-1]], dim=1)
    inside = torch.arange(frames, device=best.device) < lengths.to(best.device).unsqueeze(1)
    keep = (best != previous) & (best != blank) & inside
    counts = keep.sum(dim=1).tolist()
    return [ids.tolist() for ids in best[keep].split(counts)]


def collapse(ids: Sequence[int], blank: int = 0) -> list[int]:
    """Merge repeats, then drop blanks, in one frame-level path (the CTC collapse)."""
    out, previous = [], None
    for i in ids:
        if i != previous and i != blank:
            out.append(int(i))
        previous = i
    return out


class BeamSearchDecoder:
    """Lexicon-free CTC beam search over a character vocabulary (torchaudio + flashlight).

    ``symbols``: the vocabulary, index 0 the blank (``CharVocabulary.symbols``); the space
    is the word separator. Calling the decoder on ``log_probs`` (B, T, V) and ``lengths``
    returns label ids per utterance, like :func:`greedy_decode`.
    """

    #: what flashlight calls the word separator; our space symbol is mapped to it
    SEPARATOR = "|"

    def __init__(
        self,
        symbols: Sequence[str],
        beam_size: int = 20,
        blank: int = 0,
        beam_threshold: float = 50.0,
    ):
        try:
            from torchaudio.models.decoder import ctc_decoder
        # torchaudio imports flashlight-text lazily, here, and says it is missing with a
        # RuntimeError (torchaudio 2.11) or an ImportError
        except (ImportError, RuntimeError) as err:
            raise ImportError(
                "beam-search decoding needs the flashlight-text package: pip install "
                "flashlight-text (or pip install -e '.[beam]'); greedy decoding needs nothing"
            ) from err
        tokens = [self.SEPARATOR if s == " " else s for s in symbols]
        if self.SEPARATOR not in tokens:
            tokens.append(self.SEPARATOR)  # flashlight needs a silence token; never emitted
        self.num_symbols, self.num_tokens, self.blank = len(symbols), len(tokens), blank
        self.space = list(symbols).index(" ") if " " in symbols else None
        try:
            self.decoder = ctc_decoder(
                lexicon=None,
                tokens=tokens,
                lm=None,
                beam_size=beam_size,
                beam_threshold=beam_threshold,
                blank_token=tokens[blank],
                sil_token=self.SEPARATOR,
                unk_word=tokens[blank],
                log_add=True,  # merge equal prefixes by summing their alignments (CTC)
            )
        except (ImportError, RuntimeError) as err:
            raise ImportError(
                f"beam-search decoding needs the flashlight-text package ({err}): "
                "pip install flashlight-text (or pip install -e '.[beam]')"
            ) from err

    def __call__(
        self, log_probs: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> list[list[int]]:
        if log_probs.ndim != 3 or log_probs.shape[-1] != self.num_symbols:
            raise ValueError(
                f"expected log-probabilities (B, T, {self.num_symbols}), got "
                f"{tuple(log_probs.shape)}"
            )
        emissions = log_probs.detach().float().log_softmax(-1).cpu()
        extra = self.num_tokens - self.num_symbols
        if extra > 0:  # the appended separator: never likely
            pad = torch.full((*emissions.shape[:2], extra), -1e4)
            emissions = torch.cat([emissions, pad], dim=-1)
        if lengths is not None:
            lengths = lengths.detach().cpu().to(torch.int32)
        hypotheses = self.decoder(emissions.contiguous(), lengths)
        out = []
        for nbest in hypotheses:
            ids = nbest[0].tokens.tolist() if nbest else []
            # flashlight adds separators at both ends; they are not labels
            ids = [i for i in ids if i < self.num_symbols and i != self.blank]
            out.append(collapse_separators(ids, self.space))
        return out


def collapse_separators(ids: list[int], space: int | None) -> list[int]:
    """Strip spaces at both ends and merge runs of spaces into one."""
    if space is None:
        return ids
    out = []
    for i in ids:
        if i == space and (not out or out[-1] == space):
            continue
        out.append(i)
    while out and out[-1] == space:
        out.pop()
    return out
