"""Speech recognition with CTC: waveforms to characters, scored by CER and WER.

The chain, all on the task's device::

    batch.inputs (B, T) waveforms, batch.input_lengths
      -> LogMel (80 mels, 25 ms / 10 ms)       features (B, T_f, 80), frame lengths
      -> SpecAugment (training only)
      -> network (output_kind "frames")         logits (B, T', V), output lengths (B,)
      -> log_softmax in float32, time-major     the ``ctc`` loss (T', B, V)

The frontend (:class:`~models.speech.LogMel`, :class:`~models.speech.SpecAugment`) lives
in the task as submodules without trainable weights, so it follows the task to the
device and its buffers (mel filters, running statistics) travel in checkpoints. The
network is built for the frontend's features (``input_shape=(n_mels,)``), not for the
datamodule's ``input_shape`` (one channel of audio samples), and it computes its own
output lengths from its subsampling arithmetic; those lengths, never guesses, go to the
loss and the decoder.

The vocabulary comes from the dataset (``DataInfo.vocabulary``, index 0 the blank) and
is written to ``vocabulary.json`` in the run folder when fitting starts, so a checkpoint's
label ids can be read without the dataset.

In training the loss runs with ``zero_infinity=True`` (task option ``drop_impossible``):
an utterance whose transcript cannot fit its subsampled frames (its length plus one
blank between each pair of equal neighbouring labels) contributes nothing instead of an
infinite loss, and the number of such utterances per epoch is logged as
``train/impossible_alignments`` (:func:`losses.ctc.impossible_alignments`). Evaluation
keeps the loss's own setting: there an impossible utterance is an error naming it.

Decoding (task option ``decoder``): ``greedy`` (arg-max per frame, repeats merged,
blanks dropped; :func:`models.ctc_decoding.greedy_decode`) or ``beam``
(:class:`models.ctc_decoding.BeamSearchDecoder`, lexicon-free, needs ``flashlight-text``).
Metrics: ``cer`` and ``wer`` (torchmetrics' CharErrorRate and WordErrorRate over the
split: edits summed over utterances, divided by the reference length summed);
``val/cer`` picks the best checkpoint. Each validation epoch writes ``sample_count``
reference / hypothesis pairs, from short to long utterances, to the log and to
``samples/val_epoch<k>.txt`` in the run folder (``samples/val.txt`` for the validation of
the final weights after fitting); a test writes every pair of the split to
``samples/test_<dataset>.txt``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.text import CharErrorRate, WordErrorRate

import losses
from datamodules.text import CharVocabulary
from losses.ctc import impossible_alignments
from models.ctc_decoding import BeamSearchDecoder, greedy_decode
from models.outputs import build_network
from models.speech import LogMel, SpecAugment
from tasks.base import Batch, SupervisedTask
from tasks.binding import IncompatibleData, IncompatibleLoss, LossBinding
from tasks.data_info import DataInfo

log = logging.getLogger(__name__)

#: written into the run folder when fitting starts
VOCABULARY_FILE = "vocabulary.json"
#: reference / hypothesis pairs, one file per validation epoch and per test
SAMPLES_DIR = "samples"
DECODERS = ("greedy", "beam")
#: the arguments after (log_probs, targets) a CTC loss may take; the task has both
CTC_EXTRA_ARGS = ("input_lengths", "target_lengths")


class CTCTask(SupervisedTask):
    """Transcribe speech into characters with a frame network and a CTC loss.

    Args:
        decoder: ``"greedy"`` or ``"beam"`` (flashlight-text beam search).
        beam_size: hypotheses the beam search keeps.
        features: options of :class:`~models.speech.LogMel` (``n_mels``, ``normalize``, ...).
        spec_augment: options of :class:`~models.speech.SpecAugment`; ``None``: its defaults.
        drop_impossible: train with ``zero_infinity=True`` and count the dropped utterances.
        sample_count: reference / hypothesis pairs written each validation epoch (0: none).
    """

    problem_type: ClassVar[str] = "ctc"
    output_kind: ClassVar[str] = "frames"

    def __init__(
        self,
        *,
        decoder: str = "greedy",
        beam_size: int = 20,
        features: dict | None = None,
        spec_augment: dict | None = None,
        drop_impossible: bool = True,
        sample_count: int = 5,
        monitor: str = "val/cer",
        monitor_mode: str = "min",
        **common: Any,
    ):
        super().__init__(monitor=monitor, monitor_mode=monitor_mode, **common)
        if decoder not in DECODERS:
            raise ValueError(f"task.decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
        if sample_count < 0:
            raise ValueError(f"task.sample_count must be >= 0, got {sample_count}")
        for term in self.terms:
            blank = term.binding.options.get("blank", 0)
            if blank != CharVocabulary.blank_id:
                raise ValueError(
                    f"loss {term.key!r}: blank={blank}, but the vocabulary's blank is label "
                    f"{CharVocabulary.blank_id}"
                )
        self.vocabulary = CharVocabulary(self.data_info.vocabulary[1:])
        self.frontend = LogMel(**(features or {}))
        self.augment = SpecAugment(**(spec_augment or {}))
        self.decoder_name, self.beam_size = decoder, beam_size
        # built now, so a missing flashlight-text fails before any data is read
        self.beam = (
            BeamSearchDecoder(self.vocabulary.symbols, beam_size=beam_size)
            if decoder == "beam"
            else None
        )
        self.drop_impossible = drop_impossible
        self.sample_count = sample_count
        self._impossible = torch.zeros((), dtype=torch.long)
        self._samples: list[tuple[str, str]] = []
        #: where a test writes its pairs, under samples/ (scripts/eval_on_data.py renames it)
        self.test_samples_file = f"test_{self.data_info.name}.txt"

    # -- compatibility -----------------------------------------------------------------

    @classmethod
    def check_data(cls, data: DataInfo) -> None:
        super().check_data(data)
        vocabulary = data.vocabulary
        if not vocabulary or vocabulary[0] != CharVocabulary().symbols[0]:
            raise IncompatibleData(
                f"dataset {data.name!r} gives no CTC vocabulary with the blank first "
                f"(DataInfo.vocabulary = {vocabulary!r})"
            )

    @classmethod
    def unsupported(cls, kinds: losses.Kinds, extra_args, data: DataInfo) -> str:
        if kinds.input != "log_probabilities":
            return (
                f"a CTC network emits per-frame log-probabilities over the vocabulary, "
                f"not {kinds.input}"
            )
        if kinds.target != "label_sequences":
            return f"a transcript gives label sequences, not {kinds.target} targets"
        missing = [a for a in extra_args if a not in CTC_EXTRA_ARGS]
        if missing:
            return f"a CTC task has nothing to pass as {', '.join(missing)}"
        return ""

    @classmethod
    def preferred_targets(cls, data: DataInfo) -> tuple[str, ...]:
        return ("label_sequences",)

    # -- the network -------------------------------------------------------------------

    def output_width(self, binding: LossBinding | None = None) -> int:
        return len(self.data_info.vocabulary)

    def build_networks(self) -> None:
        """The network reads the frontend's features, ``(n_mels,)`` per frame."""
        widths = {t.key: self.output_width(t.binding) for t in self.terms}
        if len(set(widths.values())) > 1:  # every term is a CTC loss over one vocabulary
            raise IncompatibleLoss(f"the terms of the loss need different outputs: {widths}")
        self.net = build_network(
            self.model_factory,
            output_kind=self.output_kind,
            input_shape=(self.frontend.num_features,),
            num_outputs=next(iter(widths.values())),
        )

    def forward(self, waveforms: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Waveforms ``(B, T)`` and their lengths -> logits ``(B, T', V)``, output lengths."""
        features, frames = self.frontend(waveforms, lengths)
        features = self.augment(features, frames)  # identity outside training
        return self.net(features, frames)

    def _step(self, batch: Batch) -> tuple[tuple[Tensor, Tensor], Tensor, dict[str, Tensor]]:
        outputs = self(batch.inputs, batch.input_lengths)
        total, parts = self.compute_loss(outputs, batch)
        return outputs, total, parts

    # -- the loss ----------------------------------------------------------------------

    def loss_inputs(
        self, outputs: tuple[Tensor, Tensor], batch: Batch, binding: LossBinding | None = None
    ) -> tuple[tuple, dict]:
        logits, out_lengths = outputs
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T', B, V), float32
        kwargs = {}
        name = (binding or self.binding).name
        if self.training and self.drop_impossible and "zero_infinity" in losses.spec(name).options:
            kwargs["zero_infinity"] = True
        args = (log_probs, batch.targets.long(), out_lengths, batch.target_lengths)
        return args, kwargs

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        outputs, loss, parts = self._step(batch)
        if self.drop_impossible:
            dropped = impossible_alignments(batch.targets, outputs[1], batch.target_lengths)
            self._impossible = self._impossible.to(dropped.device) + dropped.sum()
        if (self.global_step + 1) % max(self.trainer.log_every_n_steps, 1) == 0:
            self.log_loss("train", loss, parts, len(batch), prog_bar=True)
        return loss

    def on_train_epoch_start(self) -> None:
        self._impossible = torch.zeros((), dtype=torch.long, device=self.device)

    def on_train_epoch_end(self) -> None:
        if not self.drop_impossible:
            return
        total = self.trainer.strategy.reduce(self._impossible.float(), reduce_op="sum")
        self.log("train/impossible_alignments", total)

    # -- decoding and metrics ----------------------------------------------------------

    def decode(self, logits: Tensor, out_lengths: Tensor) -> list[list[int]]:
        """Label ids per utterance with the task's decoder."""
        if self.beam is not None:
            return self.beam(logits.float().log_softmax(-1), out_lengths)
        return greedy_decode(logits, out_lengths, blank=CharVocabulary.blank_id)

    def predictions(self, outputs: tuple[Tensor, Tensor]) -> list[str]:
        return [self.vocabulary.decode(ids) for ids in self.decode(*outputs)]

    def metric_targets(self, batch: Batch) -> list[str]:
        targets, lengths = batch.targets.cpu(), batch.target_lengths.tolist()
        rows = zip(targets, lengths, strict=True)
        return [self.vocabulary.decode(row[:n].tolist()) for row, n in rows]

    def make_metrics(self) -> MetricCollection:
        return MetricCollection({"cer": CharErrorRate(), "wer": WordErrorRate()})

    def _evaluate(self, batch: Batch, split: str, metrics: MetricCollection) -> None:
        outputs, loss, parts = self._step(batch)
        hypotheses, references = self.predictions(outputs), self.metric_targets(batch)
        metrics.update(hypotheses, references)
        self.log_loss(split, loss, parts, len(batch), sync_dist=True)
        self.log_dict(metrics, batch_size=len(batch), prog_bar=split == "val")
        if self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        self._samples.extend(zip(references, hypotheses, strict=True))

    # evaluation batches are sorted by length: the pairs written each validation epoch are
    # spread evenly over the split, from the shortest utterances to the longest

    def on_validation_epoch_start(self) -> None:
        self._samples = []

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self.trainer.is_global_zero or not self._samples:
            return
        pairs, count = self._samples, min(self.sample_count, len(self._samples))
        picked = sorted({round(i * (len(pairs) - 1) / max(count - 1, 1)) for i in range(count)})
        self._samples = [pairs[i] for i in picked]
        if not self._samples:
            return
        if self.trainer.state.fn == TrainerFn.FITTING:
            name, title = f"val_epoch{self.current_epoch:03d}.txt", f"epoch {self.current_epoch}"
        else:  # trainer.validate() after fitting: the weights the run reports
            name, title = "val.txt", "the evaluated weights"
        self._write_samples(name, f"validation, {title}", log_them=True)

    def on_test_epoch_start(self) -> None:
        self._samples = []

    def on_test_epoch_end(self) -> None:
        if self.trainer.is_global_zero and self._samples:
            title = f"{self.test_samples_file.removesuffix('.txt')} (evaluated as a test)"
            self._write_samples(self.test_samples_file, title)

    def _write_samples(self, file_name: str, title: str, log_them: bool = False) -> Path:
        pairs, self._samples = self._samples, []
        lines = [f"# {title}: reference (REF) and {self.decoder_name} hypothesis (HYP)"]
        for reference, hypothesis in pairs:
            lines += [f"REF: {reference}", f"HYP: {hypothesis}", ""]
        folder = Path(self.trainer.default_root_dir) / SAMPLES_DIR
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / file_name
        path.write_text("\n".join(lines) + "\n")
        if log_them:
            shown = "\n".join(f"  REF: {r}\n  HYP: {h}" for r, h in pairs)
            log.info("%s:\n%s", title, shown)
        return path

    # -- the run folder ----------------------------------------------------------------

    def on_fit_start(self) -> None:
        if self.trainer.is_global_zero:
            self.vocabulary.save(Path(self.trainer.default_root_dir) / VOCABULARY_FILE)
