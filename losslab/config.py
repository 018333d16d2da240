"""Composing the config like the command line does, and config errors that name the choices."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, ConfigCompositionException
from omegaconf import DictConfig, OmegaConf, open_dict

from datamodules import DatasetUnavailableError
from losslab import loss_terms

CONFIG_DIR = loss_terms.CONFIG_DIR


class ConfigError(CompactHydraException, ValueError):
    """A config that cannot run: unknown name, misspelt key, incompatible choices.

    Raised before any data is read; the message names the valid choices. (A
    ``CompactHydraException``, so the command line prints the message alone.)
    """


class DataError(CompactHydraException, ValueError):
    """A dataset that is on disk but cannot be used: a damaged file, labels out of range.

    Raised when the data is loaded, before the run folder is made; the message names
    the file or dataset. The scripts print it alone and exit with status 1.
    """


class TrainingDiverged(CompactHydraException, RuntimeError):
    """The training loss became NaN or infinite (losslab.callbacks.NonFiniteLoss).

    The scripts print the message alone and exit with status 3.
    """


#: the search-path entry of configs/train.yaml (loss sums, losslab/loss_terms.py)
LOSS_SUM_SEARCHPATH = "losssum://losslab"


def project_arguments(project_configs: str | Path, argv: Sequence[str], preset: str) -> list[str]:
    """Command-line arguments for a project of its own (``scripts/new_project.py``) that runs
    losslab's configs (``train.yaml``, ``predict.yaml``) as its primary config.

    The project's config folder joins Hydra's search path after losslab's own entries, so
    its options (``experiment=<preset>``, data configs of its own) compose like losslab's;
    ``preset``, when given, is chosen as ``experiment=`` unless ``argv`` picks one.
    """
    args = list(argv)
    keys = [a.split("=", 1)[0].lstrip("+~") for a in args if "=" in a]
    if "hydra.searchpath" not in keys:
        where = f"file://{Path(project_configs).resolve()}"
        args.insert(0, f"hydra.searchpath=[{LOSS_SUM_SEARCHPATH},{where}]")
    if preset and "experiment" not in keys:
        args.append(f"experiment={preset}")
    return args


def group_options(group: str) -> list[str]:
    """The options of a config group: the YAML files in ``configs/<group>/``."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def config_groups() -> list[str]:
    return sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and p.name != "hydra")


@contextmanager
def hydra_context() -> Iterator[None]:
    """Use the running Hydra app's context, or open one on configs/."""
    if GlobalHydra.instance().is_initialized():
        yield
        return
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        yield


def compose(overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with ``overrides`` exactly as the CLI would.

    Hydra's runtime information (the group choices, the overrides) is registered as
    ``HydraConfig`` the way ``@hydra.main`` does, so ``train(compose([...]))`` runs the
    same code path as ``python scripts/train.py ...``. That registration is
    process-wide, as in the CLI: train a composed config before composing the next.
    Composition errors become :class:`ConfigError` naming the valid choices.
    """
    overrides = list(overrides)
    with hydra_context():
        try:
            cfg = hydra_compose(config_name, overrides, return_hydra_config=True)
        except ConfigCompositionException as error:
            raise ConfigError(explain(error, overrides, config_name)) from error
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def explain(error: Exception, overrides: Sequence[str], config_name: str = "train") -> str:
    """A composition error rewritten to name the valid choices."""
    message = str(error)
    key = _unknown_key(error)
    if key is not None:
        return _explain_unknown_key(key, overrides, config_name)
    if "Could not find" in message:
        return _explain_unknown_option(message)
    return message


def _unknown_key(error: Exception) -> str | None:
    cause = error.__cause__
    full_key = getattr(cause, "full_key", None)
    if full_key and "not in struct" in str(cause):
        return str(full_key)
    return None


def _explain_unknown_key(key: str, overrides: Sequence[str], config_name: str) -> str:
    parent, _, leaf = key.rpartition(".")
    valid = _keys_under(parent, overrides, config_name)
    where = f"under '{parent}'" if parent else "at the top level"
    close = difflib.get_close_matches(leaf, valid, n=3, cutoff=0.6)
    hint = (
        f" Did you mean {', '.join(repr(f'{parent}.{c}' if parent else c) for c in close)}?"
        if close
        else ""
    )
    return (
        f"Unknown config key '{key}'.{hint} Valid keys {where}: {', '.join(valid)}. "
        f"(To add a key that is not in the config on purpose, write +{key}=...)"
    )


def _keys_under(parent: str, overrides: Sequence[str], config_name: str) -> list[str]:
    """Keys of node ``parent`` in the config composed with the overrides' group choices."""
    groups = set(config_groups())
    choices = [
        o
        for o in overrides
        if "=" in o and o.split("=", 1)[0].lstrip("+~") in groups and "," not in o
    ]
    with hydra_context():
        try:
            cfg = hydra_compose(config_name, choices)
        except ConfigCompositionException:
            cfg = hydra_compose(config_name)
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return sorted(str(k) for k in node) if isinstance(node, DictConfig) else []


def _explain_unknown_option(message: str) -> str:
    # Hydra lists the available options; add the closest ones and drop the search path
    message = message.split("\nConfig search path:")[0].rstrip()
    first = message.splitlines()[0]
    try:
        group, option = first.split("Could not find '", 1)[1].rstrip("'").rsplit("/", 1)
    except (IndexError, ValueError):
        return message
    options = group_options(group)
    if group == "loss" and loss_terms.SEPARATOR in option:  # a sum: name the unknown parts
        unknown = [part for part in option.split(loss_terms.SEPARATOR) if part not in options]
        if unknown:
            within = f" in loss={option}"
            option = unknown[0]
            close = difflib.get_close_matches(option, options, n=3, cutoff=0.5)
            hint = f"Did you mean {', '.join(close)}? " if close else ""
            return (
                f"Unknown loss '{option}'{within}. {hint}Each part of a sum is a loss "
                f"name: {', '.join(options)}."
            )
    close = difflib.get_close_matches(option, options, n=3, cutoff=0.5)
    hint = f"Did you mean {', '.join(f'{group}={c}' for c in close)}? " if close else ""
    return f"Unknown {group} '{option}'. {hint}Valid choices for {group}: {', '.join(options)}."


@contextmanager
def cli_errors() -> Iterator[None]:
    """For scripts: config errors (exit 2), data errors (exit 1), divergence (exit 3).

    Each is printed as one message without a traceback: a traceback would add nothing
    to a message that names the key, the file or the step. Hydra prints composition
    errors itself unless HYDRA_FULL_ERROR is set; setting it lets them reach here to be
    rewritten with the valid choices. A user who sets ``HYDRA_FULL_ERROR=1`` gets the
    full traceback after the message, as Hydra users expect. Other errors keep their
    traceback.
    """
    full_traceback = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        yield
    except ConfigCompositionException as error:
        overrides = [a for a in sys.argv[1:] if not a.startswith("-")]
        _exit_with(explain(error, overrides), 2, full_traceback)
    except ConfigError as error:
        _exit_with(str(error), 2, full_traceback)
    except (DatasetUnavailableError, DataError) as error:
        _exit_with(str(error), 1, full_traceback)
    except TrainingDiverged as error:
        _exit_with(str(error), 3, full_traceback)


def _exit_with(message: str, status: int, full_traceback: bool = False) -> None:
    print(f"Error: {message}", file=sys.stderr)
    if full_traceback:
        raise  # the error being handled, with its traceback
    raise SystemExit(status)
