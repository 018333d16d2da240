"""Run settings several test packages share."""

from __future__ import annotations

#: a run of seconds on the synthetic patterns (the data config chosen by the caller):
#: small splits, a narrow CNN, one epoch on the CPU
SYNTHETIC_CNN_RUN = (
    "data.train_size=256",
    "data.val_size=64",
    "data.test_size=64",
    "data.batch_size=64",
    "model=cnn",
    "model.width=4",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
)
