"""task=ctc: the loss inputs, impossible alignments, decoding, the run folder, learning."""

from __future__ import annotations

import functools
import importlib.util
import json
import math
from pathlib import Path

import lightning
import pytest
import torch

from datamodules.batch import Batch
from datamodules.speech import SyntheticCTCDataModule
from datamodules.text import CharVocabulary
from losslab.build import build_components
from losslab.config import ConfigError, compose
from losslab.train import train
from models.speech import SpeechGRU
from tasks.ctc import CTCTask
from tasks.data_info import DataInfo

VOCABULARY = CharVocabulary(("a", "b", "c"))
TOY = DataInfo(
    "toy", "ctc", (1,), "label_sequences", 4, VOCABULARY.symbols, vocabulary=VOCABULARY.symbols
)
#: a run of seconds on the synthetic tone sequences, files and all
#: a small SpeechGRU for one CPU epoch (shared with tests/folder_dense)
TINY_GRU_RUN = (
    "model=speech_gru",
    "model.conv_channels=8",
    "model.hidden_size=16",
    "model.num_layers=1",
    "scheduler=none",
    "trainer=cpu",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "logger=none",
)
QUICK = (
    "task=ctc",
    "data=synthetic_ctc",
    "data.train_size=64",
    "data.val_size=32",
    "data.test_size=32",
    *TINY_GRU_RUN,
)


def make_task(loss: dict | None = None, data: DataInfo = TOY, **options) -> CTCTask:
    return CTCTask(
        model=functools.partial(SpeechGRU, conv_channels=4, hidden_size=8, num_layers=1),
        loss=loss or {"name": "ctc"},
        data=data,
        optimizer=functools.partial(torch.optim.SGD, lr=0.1),
        **options,
    )


def reference_greedy(scores: torch.Tensor, length: int) -> list[int]:
    """Arg-max of each frame, one frame at a time; merge runs, drop blanks."""
    out, previous = [], None
    for t in range(length):
        best = max(range(scores.shape[1]), key=lambda v: float(scores[t, v]))
        if best != previous and best != 0:
            out.append(best)
        previous = best
    return out


# -- construction and the compatibility check ----------------------------------------


def test_the_default_config_builds_speech_gru_on_spoken_digits_without_reading_files(tmp_path):
    parts = build_components(compose(["task=ctc", f"paths.root_dir={tmp_path}"]))
    assert parts.names == {"task": "ctc", "data": "spoken_digits", "loss": "ctc"}
    assert isinstance(parts.task.net, SpeechGRU)  # model=auto picks it for frames
    assert parts.task.net.subsample.convs[0].in_channels == 1
    assert parts.task.frontend.num_features == 80
    assert parts.task.monitor == "val/cer" and parts.task.monitor_mode == "min"
    assert not any(tmp_path.iterdir())


def test_a_loss_of_another_problem_type_is_refused():
    with pytest.raises(ConfigError, match=r"task=ctc cannot use loss 'cross_entropy'.*ctc"):
        build_components(compose(["task=ctc", "loss=cross_entropy"]))


def test_a_dataset_of_another_problem_type_is_refused():
    with pytest.raises(ConfigError, match=r"needs ctc data.*synthetic_ctc"):
        build_components(compose(["task=ctc", "data=synthetic"]))


def test_bad_task_options_are_refused():
    with pytest.raises(ValueError, match=r"task\.decoder must be one of greedy, beam"):
        make_task(decoder="viterbi")
    with pytest.raises(ValueError, match="blank=2, but the vocabulary's blank is label 0"):
        make_task(loss={"name": "ctc", "options": {"blank": 2}})


# -- what the loss gets --------------------------------------------------------------


def toy_batch(seconds: list[float], texts: list[str]) -> Batch:
    samples = [int(s * 16000) for s in seconds]
    waveforms = torch.zeros(len(samples), max(samples))
    generator = torch.Generator().manual_seed(0)
    for row, n in enumerate(samples):
        waveforms[row, :n] = 0.1 * torch.randn(n, generator=generator)
    labels = [VOCABULARY.encode(t) for t in texts]
    targets = torch.zeros(len(labels), max(map(len, labels)), dtype=torch.long)
    for row, ids in enumerate(labels):
        targets[row, : len(ids)] = torch.tensor(ids)
    return Batch(
        waveforms,
        targets,
        input_lengths=torch.tensor(samples),
        target_lengths=torch.tensor([len(ids) for ids in labels]),
    )


def test_the_loss_gets_float32_time_major_log_probabilities_and_computed_lengths():
    task = make_task().eval()
    batch = toy_batch([0.5, 0.3], ["abc", "a"])
    outputs = task(batch.inputs, batch.input_lengths)
    (log_probs, targets, lengths, target_lengths), kwargs = task.loss_inputs(outputs, batch)
    frames = batch.input_lengths // 160 + 1  # LogMel: centred 10 ms frames
    expected = (frames + 3) // 4  # two stride-2 convolutions: ceil(n / 4)
    assert torch.equal(lengths, expected)
    assert log_probs.dtype == torch.float32 and log_probs.shape == (int(expected.max()), 2, 4)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]))
    assert torch.equal(targets, batch.targets) and torch.equal(target_lengths, batch.target_lengths)
    assert kwargs == {}  # evaluation: the loss's own zero_infinity
    task.train()
    assert task.loss_inputs(outputs, batch)[1] == {"zero_infinity": True}


def test_label_smoothing_and_focal_options_reach_the_loss():
    batch = toy_batch([0.5, 0.3], ["abc", "a"])
    values = {}
    for name, options in {
        "plain": {},
        "smoothed": {"label_smoothing": 0.2},
        "focal": {"focal_gamma": 2.0},
    }.items():
        torch.manual_seed(0)
        task = make_task({"name": "ctc", "options": options}).eval()
        loss, _ = task.compute_loss(task(batch.inputs, batch.input_lengths), batch)
        values[name] = float(loss.detach())
    assert values["smoothed"] != pytest.approx(values["plain"], rel=1e-3)
    assert 0 < values["focal"] < values["plain"]  # (1 - p)^2 < 1 scales every sample down


def test_impossible_alignments_are_dropped_and_counted_in_training(tmp_path):
    # 0.1 s: 11 frames -> 3 after x4 subsampling; "abcab" needs 5, "aab" needs 4
    batch = toy_batch([0.1, 1.0, 0.1], ["abcab", "abc", "aab"])
    task = make_task()
    with pytest.raises(ValueError, match="sample 0 has input length 3 but its target needs 5"):
        task.eval()
        task.compute_loss(task(batch.inputs, batch.input_lengths), batch)
    task.train()
    trainer = lightning.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    losses_seen = []
    task.on_before_backward = lambda loss: losses_seen.append(float(loss))
    loader = torch.utils.data.DataLoader([batch, batch], batch_size=None)
    trainer.fit(task, train_dataloaders=loader)
    assert trainer.callback_metrics["train/impossible_alignments"] == 4  # 2 per batch
    assert all(math.isfinite(v) and v > 0 for v in losses_seen)
    assert (tmp_path / "vocabulary.json").is_file()


# -- decoding ------------------------------------------------------------------------


def test_greedy_decoding_matches_a_frame_by_frame_reference():
    task = make_task()
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 12, 4, generator=generator)
    logits[:, ::3, 0] += 2.0  # blanks now and then, so repeats survive as separate labels
    lengths = torch.tensor([12, 7, 1, 9, 12])
    hypotheses = task.predictions((logits, lengths))
    rows = zip(logits, lengths, strict=True)
    expected = [VOCABULARY.decode(reference_greedy(s, int(n))) for s, n in rows]
    assert hypotheses == expected
    assert len(hypotheses[2]) <= 1 and max(map(len, hypotheses)) >= 3


def test_beam_decoding_sums_alignments_where_greedy_takes_one():
    pytest.importorskip("flashlight.lib.text", reason="beam search needs flashlight-text")
    greedy, beam = make_task(), make_task(decoder="beam", beam_size=8)
    # two frames, p(blank) = 0.6, p(a) = 0.4: the best path is blank blank (""), but
    # "a" has 0.4*0.4 + 0.4*0.6 + 0.6*0.4 = 0.64 of the probability
    probabilities = torch.tensor([[[0.6, 0.4, 1e-6, 1e-6]] * 2])
    logits, lengths = probabilities.log(), torch.tensor([2])
    assert greedy.predictions((logits, lengths)) == [""]
    assert beam.predictions((logits, lengths)) == ["a"]
    peaky = torch.full((1, 6, 4), -20.0)
    for t, label in enumerate([1, 0, 1, 2, 2, 3]):  # a - a b b c -> "aabc"
        peaky[0, t, label] = 0.0
    assert beam.predictions((peaky, torch.tensor([6]))) == ["aabc"]


# -- the run folder and learning -----------------------------------------------------


def test_a_run_writes_vocabulary_samples_and_cer_wer(tmp_path):
    overrides = [*QUICK, "trainer.max_epochs=2", "logger=csv", f"paths.root_dir={tmp_path}"]
    record = train(compose(overrides))
    run = Path(record["run_dir"])
    assert set(record["test"]) >= {"test/cer", "test/wer", "test/loss"}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["test/cer"] == pytest.approx(record["test"]["test/cer"])
    assert metrics["test"]["test/wer"] >= 0
    dm = SyntheticCTCDataModule()
    assert CharVocabulary.load(run / "vocabulary.json") == dm.vocab
    epochs = sorted((run / "samples").glob("val_epoch*.txt"))
    assert [p.name for p in epochs] == ["val_epoch000.txt", "val_epoch001.txt"]
    assert "the evaluated weights" in (run / "samples" / "val.txt").read_text()
    lines = epochs[-1].read_text().splitlines()
    references = [line[5:] for line in lines if line.startswith("REF: ")]
    assert len(references) == 5 and len([x for x in lines if x.startswith("HYP: ")]) == 5
    assert references == sorted(references, key=len)  # spread from short to long
    assert all(set(r) <= set(dm.letters) for r in references)
    test_pairs = (run / "samples" / "test_synthetic_ctc.txt").read_text()
    assert test_pairs.count("REF: ") == 32
    logged = (run / "csv" / "version_0" / "metrics.csv").read_text().splitlines()
    column = logged[0].split(",").index("train/impossible_alignments")
    counts = [row.split(",")[column] for row in logged[1:] if row.split(",")[column]]
    assert [float(c) for c in counts] == [0.0, 0.0]  # one per epoch; every tone fits


def load_script(name: str):
    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_checkpoint_is_evaluated_on_another_dataset_and_on_its_training_split(tmp_path):
    record = train(compose([*QUICK, "callbacks=default", f"paths.root_dir={tmp_path}"]))
    ckpt = Path(record["run_dir"]) / "checkpoints" / "best.ckpt"
    script = load_script("eval_on_data")
    other = script.evaluate_on(ckpt, ["data=synthetic_ctc", "data.test_size=12", "data.seed=5"])
    assert set(other) == {"test/cer", "test/wer", "test/loss"}
    pairs = (ckpt.parent.parent / "samples" / "test_synthetic_ctc.txt").read_text()
    assert pairs.count("REF: ") == 12
    on_train = script.evaluate_on(ckpt, ["data=synthetic_ctc", "data.train_size=64"], "train")
    assert set(on_train) == {"train/cer", "train/wer", "train/loss"}
    assert (ckpt.parent.parent / "samples" / "train_synthetic_ctc.txt").read_text().count(
        "REF: "
    ) == 64
    with pytest.raises(ConfigError, match="would mean other labels"):
        script.evaluate_on(ckpt, ["data=synthetic_ctc", "data.num_symbols=4"])


@pytest.mark.slow
def test_the_task_learns_synthetic_ctc(tmp_path):
    """10 epochs of 25 steps: test CER 0.0035 in 44 s on one thread of the loaded machine.

    With the default one-cycle schedule instead, the same 10 epochs end at CER 0.78: the
    warm-up keeps the rate low while the network sits on CTC's all-blank plateau."""
    record = train(
        compose(
            [
                "task=ctc",
                "data=synthetic_ctc",
                "model=speech_gru",
                "model.conv_channels=16",
                "model.hidden_size=64",
                "task.spec_augment.time_mask_param=5",
                "scheduler=none",  # a constant rate leaves the all-blank plateau sooner
                "trainer=cpu",
                "trainer.max_epochs=10",
                "trainer.num_sanity_val_steps=0",
                "logger=none",
                f"paths.root_dir={tmp_path}",
            ]
        )
    )
    assert record["test"]["test/cer"] < 0.1, record["test"]
    assert record["test"]["test/wer"] < 0.3, record["test"]
