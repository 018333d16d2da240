"""Generative adversarial networks: a generator and a discriminator trained against each other.

Two networks from one model factory (``models.gan.dcgan`` or ``gan_mlp``, which return a
:class:`~models.gan.GANPair`), one optimizer each from the optimizer config (Adam with
betas (0.5, 0.999) by default, ``configs/optimizer/adam_gan.yaml``), and Lightning's
manual optimization (``automatic_optimization = False``):

- every training batch is one **discriminator step** on the real batch and as many
  generated samples (detached from the generator); every ``n_critic``-th batch is also
  one **generator step** on a fresh batch of latents;
- each step runs with its optimizer toggled (:meth:`toggled_optimizer`): the other
  network's parameters do not require grad, so a step's backward reaches only the
  network it trains;
- gradients are clipped with the trainer's ``gradient_clip_val`` /
  ``gradient_clip_algorithm`` (Lightning clips only under automatic optimization), and
  each optimizer's learning-rate schedule is stepped after each of its steps.

The loss is ``gan`` (any ``kind``) alone or summed with discriminator penalties through
the several-losses syntax: ``loss=gan+gradient_penalty`` (WGAN-GP),
``loss=gan+r1_penalty``. The ``gan`` term reads the discriminator's outputs on real and
generated samples (its discriminator loss in the D step, its generator loss in the G
step); ``gradient_penalty`` gets the discriminator itself, the real and the generated
batch; ``r1_penalty`` the discriminator's outputs on the real batch and that batch (which
then requires grad). Penalties enter the D step only. Logs: ``d/loss`` (the weighted sum)
and, for a sum, ``d/loss/<term>``; ``g/loss``.

Under DDP (``trainer=ddp_cpu``) the D step leaves the generator's parameters without
gradient and the G step the discriminator's, which DDP's reducer refuses unless it looks
for unused parameters: the task switches ``find_unused_parameters`` on in :meth:`setup`,
before the strategy wraps the module. The penalty's double backward runs through the
same parameters as the step's loss, so the reducer averages complete gradients.

Quality (:mod:`tasks.gan_metrics`): at the end of each validation epoch ``fid_samples``
samples (fixed latents) are compared with the validation split: ``val/fid``,
``val/kid_mean``, ``val/kid_std``, ``val/modes_covered``, ``val/mode_kl`` (and
``val/high_quality`` on 2-D mixtures); ``val/fid`` picks the best checkpoint. The test
compares with the test split and also logs the losses at the end of training
(``test/d_loss``, ``test/g_loss``, means over the last ``loss_window`` generator steps)
and ``test/diverged``; ``sample_quality.json`` in the run folder holds the per-mode
shares and where the features came from. Pictures: ``pictures/samples_epoch<k>.png``
(a fixed-noise grid; on 2-D data ``scatter_epoch<k>.png``) each validation epoch, also to
TensorBoard, and ``samples_final.png`` / ``scatter_final.png`` at the test.

Divergence (:class:`DivergenceMonitor`): a NaN or infinite loss, discriminator outputs
beyond ``max_critic_output``, or a collapsed discriminator (its loss below
``collapse_threshold`` for ``collapse_patience`` generator steps in a row: it tells real
from generated samples with certainty and the generator learns nothing) stops the run at
once with a message saying which; ``test/diverged`` is then 1.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

import losses
from datamodules.batch import Batch
from models.gan import check_penalty_compatible
from tasks.base import TaskCore
from tasks.binding import IncompatibleLoss, LossBinding
from tasks.data_info import DataInfo
from tasks.gan_metrics import ClassifierRecipe, SampleQuality, sample_quality_for
from tasks.gan_pictures import fixed_noise, image_grid, save_image_grid, scatter_figure
from tasks.pictures import PICTURES_DIR

log = logging.getLogger("losslab")

#: the adversarial loss every GAN run has; the other terms are discriminator penalties
ADVERSARIAL = "gan"
PENALTIES = ("gradient_penalty", "r1_penalty")
#: what a GAN task can hand a loss: critic outputs, or the critic itself (a penalty)
GAN_INPUTS = ("critic_logits", "critic")
#: no target (the adversarial loss), or the real samples (the penalties)
GAN_TARGETS = ("none", "samples")
#: positional arguments beyond (input, target) the task can fill: the generated batch
GAN_EXTRA_ARGS = ("fake",)
#: file the task writes into the run folder at the end of a test
QUALITY_FILE = "sample_quality.json"
#: kinds whose discriminator loss has a floor (0) that a collapsed discriminator reaches
BOUNDED_KINDS = ("minimax", "non_saturating", "lsgan", "hinge")


@dataclass
class DivergenceMonitor:
    """Decides after each generator step whether training has diverged (module doc)."""

    kind: str
    collapse_threshold: float | None = 1e-3
    collapse_patience: int = 200
    max_critic_output: float | None = 1e6
    low_streak: int = 0
    reason: str | None = None

    def check(self, d_loss: float, g_loss: float, critic_max: float, step: int) -> str | None:
        """The reason training diverged at generator step ``step``, or None."""
        if not (math.isfinite(d_loss) and math.isfinite(g_loss) and math.isfinite(critic_max)):
            return (
                f"a loss became NaN or infinite at generator step {step} (discriminator loss "
                f"{d_loss}, generator loss {g_loss}); lower the learning rate, clip gradients "
                "(trainer.gradient_clip_val) or add a penalty (loss=gan+gradient_penalty)"
            )
        if self.max_critic_output is not None and critic_max > self.max_critic_output:
            return (
                f"the discriminator's outputs exploded at generator step {step} "
                f"(|D(x)| up to {critic_max:.3g} > task.max_critic_output="
                f"{self.max_critic_output:g}); a wasserstein critic needs a Lipschitz "
                "constraint (loss=gan+gradient_penalty or model.spectral_norm=true)"
            )
        if self.collapse_threshold is not None and self.kind in BOUNDED_KINDS:
            self.low_streak = self.low_streak + 1 if d_loss < self.collapse_threshold else 0
            if self.low_streak >= self.collapse_patience:
                return (
                    f"the discriminator collapsed: its loss stayed below "
                    f"{self.collapse_threshold:g} for {self.collapse_patience} generator steps "
                    f"(up to step {step}), so it tells real from generated samples with "
                    "certainty and the generator gets no useful gradient; try "
                    "kind=non_saturating, a smaller discriminator, or a penalty"
                )
        return None


def _window_mean(values: deque) -> float:
    return float(sum(values) / len(values)) if values else float("nan")


class GANTask(TaskCore):
    """Train a generator against a discriminator (module doc).

    Args:
        model: a GAN-pair factory, ``model(input_shape=...)`` -> :class:`models.gan.GANPair`.
        n_critic: discriminator steps per generator step (5 for WGAN-GP).
        generator_steps: stop after this many generator steps (None: the trainer's
            ``max_epochs`` / ``max_steps`` decide; note that Lightning's ``global_step``
            counts the steps of both optimizers).
        fid_features: ``auto`` (a domain classifier trained and cached on first use),
            the path of a ``task=classification`` checkpoint, or ``inception``.
        inception_weights: the Inception-v3 weights file for ``fid_features=inception``.
        classifier: overrides of :class:`tasks.gan_metrics.ClassifierRecipe` for ``auto``.
        fid_samples: generated samples per evaluation (split over DDP processes).
        fid_real_samples: cap on the real samples of the reference set (None: the split).
        kid_subsets, kid_subset_size: KID's subsets.
        coverage_threshold: a mode is covered at this fraction of the uniform share.
        eval_seed: seed of the evaluation latents (the same samples every evaluation).
        grid_samples: images in the per-epoch grid (0: no pictures); points in the scatter.
        loss_window: generator steps averaged into the end-of-training losses.
        collapse_threshold, collapse_patience, max_critic_output: divergence checks
            (None switches one off).
    """

    problem_type: ClassVar[str] = "gan"

    def __init__(
        self,
        *,
        model,
        n_critic: int = 1,
        generator_steps: int | None = None,
        fid_features: str | None = "auto",
        inception_weights: str | None = None,
        classifier: Mapping | None = None,
        fid_samples: int = 2000,
        fid_real_samples: int | None = None,
        kid_subsets: int = 20,
        kid_subset_size: int = 500,
        coverage_threshold: float = 0.2,
        eval_seed: int = 0,
        grid_samples: int = 64,
        loss_window: int = 50,
        collapse_threshold: float | None = 1e-3,
        collapse_patience: int = 200,
        max_critic_output: float | None = 1e6,
        monitor: str = "val/fid",
        monitor_mode: str = "min",
        **core: Any,
    ):
        super().__init__(monitor=monitor, monitor_mode=monitor_mode, **core)
        self.automatic_optimization = False
        if int(n_critic) < 1:
            raise ValueError(f"task.n_critic must be at least 1, got {n_critic}")
        if generator_steps is not None and int(generator_steps) < 1:
            raise ValueError(
                f"task.generator_steps must be positive or null, got {generator_steps}"
            )
        if int(fid_samples) < 2 or int(grid_samples) < 0 or int(loss_window) < 1:
            raise ValueError(
                "task.fid_samples must be >= 2, task.grid_samples >= 0 and task.loss_window >= 1"
            )
        self.model_factory = model
        self.n_critic = int(n_critic)
        self.generator_step_limit = None if generator_steps is None else int(generator_steps)
        self.fid_features = fid_features
        self.inception_weights = inception_weights
        self.recipe = ClassifierRecipe(**dict(classifier or {}))
        self.fid_samples, self.fid_real_samples = int(fid_samples), fid_real_samples
        self.quality_options = {
            "kid_subsets": int(kid_subsets),
            "kid_subset_size": int(kid_subset_size),
            "coverage_threshold": float(coverage_threshold),
        }
        self.eval_seed, self.grid_samples = int(eval_seed), int(grid_samples)
        kinds = [t for t in self.terms if t.binding.name == ADVERSARIAL]
        if len(kinds) != 1:
            raise IncompatibleLoss(
                f"a GAN needs the adversarial loss {ADVERSARIAL!r} as one term (loss=gan, "
                f"loss=gan+gradient_penalty, loss=gan+r1_penalty); got {self.loss_name!r}"
            )
        self.adversarial = kinds[0]
        self.kind = str(self.adversarial.binding.options.get("kind", "non_saturating"))
        self.divergence = DivergenceMonitor(
            self.kind, collapse_threshold, int(collapse_patience), max_critic_output
        )
        self.diverged: str | None = None
        # the trainer's gradient_clip_val / _algorithm, taken over in configure_callbacks
        self.clip_value: float | None = None
        self.clip_algorithm = "norm"
        # progress, stored in checkpoints (on_save_checkpoint)
        self.d_steps = 0
        self.g_steps = 0
        self.recent: dict[str, deque] = {}
        self.loss_window = int(loss_window)
        # built at setup: the quality measures of each split, not part of the state_dict
        self._quality: dict[str, SampleQuality] = {}
        self._real_done: dict[str, bool] = {}
        self._scatter_real: Tensor | None = None

    # -- compatibility -----------------------------------------------------------------

    @classmethod
    def unsupported(cls, kinds: losses.Kinds, extra_args, data: DataInfo) -> str:
        if kinds.input not in GAN_INPUTS:
            return f"a GAN task gives {', '.join(GAN_INPUTS)}, not {kinds.input}"
        if kinds.target not in GAN_TARGETS:
            return f"a GAN task has no {kinds.target} targets (it gives {', '.join(GAN_TARGETS)})"
        missing = [a for a in extra_args if a not in GAN_EXTRA_ARGS]
        if missing:
            return f"a GAN task has nothing to pass as {', '.join(missing)}"
        return ""

    @classmethod
    def preferred_targets(cls, data: DataInfo) -> tuple[str, ...]:
        return GAN_TARGETS

    # -- networks ----------------------------------------------------------------------

    def build_networks(self) -> None:
        shape = tuple(self.data_info.input_shape)
        try:
            pair = self.model_factory(input_shape=shape)
        except ValueError as error:
            hint = " (2-D points need model=gan_mlp)" if len(shape) == 1 else ""
            raise ValueError(
                f"cannot build the GAN pair for {shape} samples{hint}: {error}"
            ) from error
        if not (hasattr(pair, "generator") and hasattr(pair, "discriminator")):
            raise TypeError(
                f"task=gan needs a model that returns a generator and a discriminator "
                f"(models.gan.GANPair: model=dcgan or model=gan_mlp), got {type(pair).__name__}"
            )
        self.pair = pair
        for term in self.terms:
            if term.binding.name in PENALTIES:
                check_penalty_compatible(pair.discriminator, term.binding.name)
        noise = fixed_noise(max(self.grid_samples, 1), pair.latent_dim, seed=self.eval_seed)
        self.register_buffer("grid_noise", noise, persistent=False)

    @property
    def generator(self) -> nn.Module:
        return self.pair.generator

    @property
    def discriminator(self) -> nn.Module:
        return self.pair.discriminator

    def forward(self, z: Tensor) -> Tensor:
        """Generated samples for latents ``z``."""
        return self.pair(z)

    def make_metrics(self) -> MetricCollection:
        # FID, KID and coverage need the data (set up at fit time): see _quality_for
        return MetricCollection({})

    # -- the losses --------------------------------------------------------------------

    def loss_inputs(
        self, outputs: Mapping[str, Tensor], batch: Batch, binding: LossBinding | None = None
    ) -> tuple[tuple, dict]:
        """One term's arguments from the step's ``outputs``: ``fake_logits`` (and in the D
        step ``real_logits``, ``real``, ``fake``, ``interpolation``)."""
        name = (binding or self.binding).name
        if name == ADVERSARIAL:
            if "real_logits" in outputs:  # discriminator step
                return (outputs["fake_logits"], outputs["real_logits"]), {}
            return (outputs["fake_logits"],), {}
        if name == "gradient_penalty":
            critic = self.discriminator
            return (critic, outputs["real"], outputs["fake"], outputs["interpolation"]), {}
        if name == "r1_penalty":
            return (outputs["real_logits"], outputs["real"]), {}
        raise IncompatibleLoss(f"task=gan does not know how to feed loss {name!r}")

    def _term_value(self, term, outputs: Mapping[str, Tensor], batch: Batch) -> Tensor:
        args, kwargs = self.loss_inputs(outputs, batch, term.binding)
        if self._skip_value_checks and term.may_skip_value_checks:
            kwargs = {**kwargs, "check_values": False}
        return self.loss_fns[term.key](*args, **kwargs)

    def penalty_interpolation(self, n: int, device) -> Tensor:
        """WGAN-GP's ``u`` per sample (the DDP test replaces it with fixed values)."""
        return torch.rand(n, device=device)

    def discriminator_loss(
        self, real: Tensor, fake: Tensor, batch: Batch | None = None
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """The D step's weighted loss, each term's value, and the critic's outputs."""
        batch = batch if batch is not None else Batch(real)
        needs_r1 = any(t.binding.name == "r1_penalty" for t in self.terms)
        if needs_r1:
            real = real.detach().requires_grad_(True)
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(fake)
        outputs = {"real": real, "fake": fake, "real_logits": real_logits}
        outputs["fake_logits"] = fake_logits
        if any(t.binding.name == "gradient_penalty" for t in self.terms):
            outputs["interpolation"] = self.penalty_interpolation(len(real), real.device)
        parts = {t.key: self._term_value(t, outputs, batch) for t in self.terms}
        total = sum(t.weight * parts[t.key] for t in self.terms)
        critic = torch.cat([real_logits.detach().reshape(-1), fake_logits.detach().reshape(-1)])
        return total, parts, critic

    def generator_loss(self, fake: Tensor, batch: Batch | None = None) -> Tensor:
        """The G step's loss: the adversarial term's generator loss (penalties are D's)."""
        batch = batch if batch is not None else Batch(fake)
        value = self._term_value(self.adversarial, {"fake_logits": self.discriminator(fake)}, batch)
        return self.adversarial.weight * value

    # -- optimisation ------------------------------------------------------------------

    def _step_totals(self) -> tuple[int, int]:
        """(discriminator steps, generator steps) the run will take at most."""
        batches = int(self.trainer.estimated_stepping_batches)
        d_total = batches
        if self.generator_step_limit is not None:
            d_total = min(d_total, self.generator_step_limit * self.n_critic)
        return max(d_total, 1), max(math.ceil(d_total / self.n_critic), 1)

    def configure_optimizers(self):
        opt_d = self.make_optimizer(self.discriminator.parameters())
        opt_g = self.make_optimizer(self.generator.parameters())
        if self.scheduler_factory is None:
            return [opt_d, opt_g]
        d_total, g_total = self._step_totals()
        return (
            {"optimizer": opt_d, "lr_scheduler": self.make_schedule(opt_d, d_total)},
            {"optimizer": opt_g, "lr_scheduler": self.make_schedule(opt_g, g_total)},
        )

    def _schedulers(self) -> tuple[Any, Any]:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return None, None
        if not isinstance(schedulers, list):
            schedulers = [schedulers]
        return schedulers[0], schedulers[1]

    def configure_callbacks(self):
        # Lightning refuses Trainer(gradient_clip_val=...) under manual optimization (its
        # check runs right after this hook): the task takes the value over and clips each
        # step itself (_clip)
        trainer = self.trainer
        if trainer.gradient_clip_val is not None:
            self.clip_value = float(trainer.gradient_clip_val)
            algorithm = trainer.gradient_clip_algorithm or "norm"
            self.clip_algorithm = str(getattr(algorithm, "value", algorithm))
            trainer.gradient_clip_val = None
        return []

    def _clip(self, optimizer) -> None:
        """Clip as the trainer was told to: Lightning does not under manual optimization."""
        if self.clip_value:
            self.clip_gradients(
                optimizer,
                gradient_clip_val=self.clip_value,
                gradient_clip_algorithm=self.clip_algorithm,
            )

    def setup(self, stage: str | None = None) -> None:
        strategy = getattr(self._trainer, "strategy", None) if self._trainer else None
        ddp_kwargs = getattr(strategy, "_ddp_kwargs", None)
        if isinstance(ddp_kwargs, dict) and not ddp_kwargs.get("find_unused_parameters"):
            # each step's backward reaches one network only (module doc)
            ddp_kwargs["find_unused_parameters"] = True

    def prepare_data(self) -> None:
        # train the domain classifier once, on one process; setup then loads the cache
        datamodule = self.trainer.datamodule if self._trainer else None
        if datamodule is None or getattr(datamodule, "mixture", None) is not None:
            return
        if self.fid_features in (None, "auto", "inception"):
            from tasks.gan_metrics import cached_domain_classifier

            cached_domain_classifier(datamodule, self.recipe)

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        if self.diverged:
            self.trainer.should_stop = True
            return
        try:
            self._train(batch)
        except losses.LossInputError as error:
            if "NaN or Inf" not in str(error):
                raise
            self._diverge(
                f"a loss input became NaN or infinite after generator step {self.g_steps} "
                f"({error}); lower the learning rate, clip gradients "
                "(trainer.gradient_clip_val) or add a penalty (loss=gan+gradient_penalty)"
            )

    def _train(self, batch: Batch) -> None:
        opt_d, opt_g = self.optimizers()
        sched_d, sched_g = self._schedulers()
        real = batch.inputs
        n = len(real)
        with self.toggled_optimizer(opt_d):
            with torch.no_grad():
                fake = self.generator(self.pair.sample_latent(n, device=real.device))
            d_loss, d_parts, critic = self.discriminator_loss(real, fake, batch)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            self._clip(opt_d)
            opt_d.step()
        if sched_d is not None:
            sched_d.step()
        self.d_steps += 1
        self.log_loss("d", d_loss.detach(), {k: v.detach() for k, v in d_parts.items()}, n)
        self._remember("d_loss", d_loss)
        for key, value in d_parts.items():
            self._remember(f"d_loss/{key}", value)
        if self.d_steps % self.n_critic:
            return
        with self.toggled_optimizer(opt_g):
            fake = self.generator(self.pair.sample_latent(n, device=real.device))
            g_loss = self.generator_loss(fake, batch)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            self._clip(opt_g)
            opt_g.step()
        if sched_g is not None:
            sched_g.step()
        self.g_steps += 1
        self.log("g/loss", g_loss.detach(), batch_size=n, prog_bar=True)
        self.log("g/steps", float(self.g_steps), batch_size=n)
        self._remember("g_loss", g_loss)
        self._watch(float(d_loss), float(g_loss), float(critic.abs().max()) if len(critic) else 0)
        if self.generator_step_limit is not None and self.g_steps >= self.generator_step_limit:
            self.trainer.should_stop = True

    def _remember(self, key: str, value: Tensor) -> None:
        self.recent.setdefault(key, deque(maxlen=self.loss_window)).append(float(value.detach()))

    def _watch(self, d_loss: float, g_loss: float, critic_max: float) -> None:
        reason = self.divergence.check(d_loss, g_loss, critic_max, self.g_steps)
        if self.trainer.world_size > 1:  # every process stops, or none
            stop = self.trainer.strategy.reduce_boolean_decision(reason is not None, all=False)
            if stop and reason is None:
                reason = f"another process found training diverged at generator step {self.g_steps}"
        if reason is not None:
            self._diverge(reason)

    def _diverge(self, reason: str) -> None:
        self.diverged = reason
        self.trainer.should_stop = True
        message = f"GAN training diverged, stopping the run: {reason}"
        log.error(message)
        if self.trainer.is_global_zero:
            print(message, file=sys.stderr, flush=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gan_progress"] = {
            "d_steps": self.d_steps,
            "g_steps": self.g_steps,
            "diverged": self.diverged,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        progress = checkpoint.get("gan_progress")
        if progress and self.trainer.state.fn == "fit":  # resuming: continue the counts
            self.d_steps, self.g_steps = progress["d_steps"], progress["g_steps"]

    # -- evaluation --------------------------------------------------------------------

    def _quality_for(self, split: str) -> SampleQuality:
        if split not in self._quality:
            datamodule = self.trainer.datamodule
            quality = sample_quality_for(
                datamodule,
                self.fid_features,
                inception_weights=self.inception_weights,
                recipe=self.recipe,
                **self.quality_options,
            )
            self._quality[split] = quality.to(self.device)
            self._real_done[split] = False
        return self._quality[split]

    def _feed_real(self, batch: Batch, split: str) -> None:
        quality = self._quality_for(split)
        if self._real_done[split]:
            return
        inputs = batch.inputs
        if self.fid_real_samples is not None:
            room = math.ceil(self.fid_real_samples / self.trainer.world_size) - quality.real_samples
            inputs = inputs[: max(room, 0)]
        if len(inputs):
            quality.update(inputs, real=True)
        # 2-D data: real points for the scatter plots (a spawned test process has not
        # seen the validation split, so any split serves)
        if inputs.shape[1:] == (2,) and self.trainer.is_global_zero:
            kept = self._scatter_real
            if kept is None or len(kept) < 2000:
                part = inputs[: 2000 - (0 if kept is None else len(kept))].detach().cpu()
                self._scatter_real = part if kept is None else torch.cat([kept, part])

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        if not self.trainer.sanity_checking:
            self._feed_real(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._feed_real(batch, "test")

    @torch.no_grad()
    def generate(self, n: int, seed: int, batch_size: int = 500) -> Tensor:
        """``n`` samples from latents drawn with ``seed`` (on the CPU, so any device agrees)."""
        draw = torch.Generator().manual_seed(seed)
        latents = torch.randn(n, self.pair.latent_dim, generator=draw)
        return (
            torch.cat([self.pair(z.to(self.device)) for z in latents.split(batch_size)])
            if n
            else torch.empty(0, *self.data_info.input_shape, device=self.device)
        )

    def _measure(self, split: str) -> dict[str, float]:
        """FID, KID and coverage of ``fid_samples`` generated samples against the split."""
        quality = self._quality_for(split)
        self._real_done[split] = True
        quality.reset()
        world, rank = self.trainer.world_size, self.trainer.global_rank
        share = math.ceil(self.fid_samples / world)
        samples = self.generate(share, seed=self.eval_seed * 1000 + rank + 1)
        finite = bool(torch.isfinite(samples).all())
        if world > 1:
            finite = not self.trainer.strategy.reduce_boolean_decision(not finite, all=False)
        if not finite:
            keys = ("fid", "kid_mean", "kid_std", "modes_covered", "mode_kl")
            return {f"{split}/{k}": float("nan") for k in keys}
        quality.update(samples, real=False)
        values = {f"{split}/{k}": v for k, v in quality.compute().items()}
        return values

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        values = self._measure("val")
        values["val/d_loss"] = _window_mean(self.recent.get("d_loss", deque()))
        values["val/g_loss"] = _window_mean(self.recent.get("g_loss", deque()))
        self.log_dict(values, sync_dist=True)
        fitting = self.trainer.state.fn == "fit"  # not the final trainer.validate
        if fitting and self.trainer.is_global_zero and self.grid_samples:
            self._pictures(f"epoch{self.current_epoch:03d}")

    def on_test_epoch_end(self) -> None:
        values = self._measure("test")
        values["test/d_loss"] = _window_mean(self.recent.get("d_loss", deque()))
        values["test/g_loss"] = _window_mean(self.recent.get("g_loss", deque()))
        for key, window in self.recent.items():
            if key.startswith("d_loss/"):
                values[f"test/{key}"] = _window_mean(window)
        values["test/diverged"] = float(self.diverged is not None)
        values["test/generator_steps"] = float(self.g_steps)
        self.log_dict(values, sync_dist=True)
        if self.trainer.is_global_zero:
            if self.grid_samples:
                self._pictures("final")
            self._write_report(values)

    def _write_report(self, values: dict[str, float]) -> None:
        quality = self._quality["test"]
        coverage = quality.coverage()
        features = getattr(quality.features, "provenance", None) or {
            "source": type(quality.features).__name__
        }
        report = {
            **{k.removeprefix("test/"): v for k, v in values.items()},
            "dataset": self.data_info.name,
            "loss": self.loss_name,
            "kind": self.kind,
            "n_critic": self.n_critic,
            "generator_steps": self.g_steps,
            "discriminator_steps": self.d_steps,
            "diverged": self.diverged is not None,
            "divergence": self.diverged,
            "generated_samples": self.fid_samples,
            "real_samples": quality.real_modes.summed()[1],
            "features": {k: v for k, v in features.items() if not isinstance(v, Tensor)},
            "coverage": coverage.as_dict() if coverage is not None else None,
        }
        folder = Path(self.trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / QUALITY_FILE).write_text(json.dumps(report, indent=2) + "\n")

    # -- pictures ----------------------------------------------------------------------

    def _pictures(self, label: str) -> Path:
        folder = Path(self.trainer.default_root_dir) / PICTURES_DIR
        was_training = self.pair.training
        self.pair.eval()
        try:
            with torch.no_grad():
                samples = self.pair(self.grid_noise[: self.grid_samples]).float().cpu()
        finally:
            self.pair.train(was_training)
        step = self.g_steps
        if samples.ndim == 2:  # 2-D points: real (grey) against generated (orange)
            generated = self.generate(min(self.fid_samples, 2000), seed=self.eval_seed + 7)
            real = self._scatter_real if self._scatter_real is not None else generated[:0]
            centres = getattr(self.trainer.datamodule, "mixture", None)
            figure = scatter_figure(
                real,
                generated,
                centres=centres.centres if centres is not None else None,
                title=f"{self.loss_name} ({self.kind}), generator step {step}",
            )
            path = folder / f"scatter_{label}.png"
            folder.mkdir(parents=True, exist_ok=True)
            figure.savefig(path)
            for experiment in self._tensorboards():
                experiment.add_figure("samples/scatter", figure, step)
            return path
        path = save_image_grid(samples, folder / f"samples_{label}.png", scale=2)
        for experiment in self._tensorboards():
            experiment.add_image("samples/grid", image_grid(samples), step)
        return path

    def _tensorboards(self) -> list:
        return [
            lg.experiment
            for lg in self.loggers
            if hasattr(getattr(lg, "experiment", None), "add_image")
        ]
