"""The batch every loader yields and every task reads: one contract for all problem shapes.

A task never indexes a batch by position; it reads named parts:

- ``inputs``: the network's input, a dense tensor ``(B, ...)``: standardised images
  ``(B, C, H, W)``, query lists of images ``(B, L, C, H, W)``, padded waveforms or
  features ``(B, T, ...)``;
- ``targets``: dense per-sample targets when the problem has them: class indices
  ``(B,)``, multi-hot rows ``(B, C)``, values ``(B,)``, grades ``(B, L)``, a label map
  ``(B, H, W)``, padded label sequences ``(B, S)``; ``None`` for unsupervised data;
- ``items``: ragged per-sample targets that do not stack, one dict per sample (a
  detection image's ``{"boxes": (n, 4), "labels": (n,)}``); ``None`` otherwise;
- ``input_lengths`` / ``target_lengths``: ``(B,)`` int64 valid lengths of padded
  sequences (CTC), ``None`` otherwise;
- ``extras``: tensors a task derives from the batch on the host before it moves to the
  device (in ``on_before_batch_transfer``), so the training step needs no device-to-host
  synchronisation for data-dependent shapes (ranking's pairs of differing grades).

It is a plain dataclass and deliberately not a sequence: ``x, y = batch`` and
``batch[1]`` fail at once instead of meaning different things for different problem
shapes. Lightning moves it to the device as a whole and reads its batch size
(``apply_to_collection`` and ``extract_batch_size`` descend into dataclasses).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from torch import Tensor


@dataclass
class Batch:
    """One batch: inputs and whichever target parts the problem has (module doc)."""

    inputs: Tensor
    targets: Tensor | None = None
    items: list[dict[str, Tensor]] | None = None
    input_lengths: Tensor | None = None
    target_lengths: Tensor | None = None
    extras: dict[str, Tensor] | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def __post_init__(self) -> None:
        size = len(self)
        for part in fields(self):
            value = getattr(self, part.name)
            per_sample = part.name not in ("inputs", "extras")
            if value is not None and per_sample and len(value) != size:
                raise ValueError(
                    f"batch part {part.name!r} holds {len(value)} samples, inputs hold {size}"
                )
