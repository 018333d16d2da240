"""Write a small project of your own that trains, compares and predicts with losslab.

    python scripts/new_project.py ~/work/leaves task=classification data.path=~/data/leaves
    python scripts/new_project.py my_counts task=regression data=folder data.path=counts/values.csv
    python scripts/new_project.py demo task=segmentation data=synthetic_segmentation

The project depends on this losslab checkout (its pyproject.toml names it by path;
``losslab=<path or git URL>`` names another copy) and composes losslab's configs with
its own: ``configs/experiment/project.yaml`` picks the task and
``configs/data/project.yaml`` the data (default ``data=folder``, your folder of files;
any dataset option of losslab works). Its README holds the three commands (train,
compare, predict); its test trains on the task's synthetic data for a few steps and
predicts, so ``pytest`` passes right after creation. docs/starter.md describes it.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from losslab.config import CONFIG_DIR, ConfigError, cli_errors, group_options

REPO = Path(__file__).resolve().parents[1]
USAGE = (
    "usage: python scripts/new_project.py <folder> task=<task> [data=<data option, default "
    "folder>] [data.path=<your data>] [losslab=<path or git URL>] [overwrite=true]"
)

#: per task: the synthetic dataset and the tiny run the project's own test trains
SMOKE_RUNS: dict[str, list[str]] = {
    "classification": ["data=synthetic", "data.train_size=256", "data.val_size=64",
                       "data.test_size=64", "data.batch_size=32", "model=cnn", "model.width=8"],
    "regression": ["data=synthetic_regression", "data.train_size=256", "data.val_size=64",
                   "data.test_size=64", "data.batch_size=32", "model=cnn", "model.width=8"],
    "multilabel": ["data=synthetic_multilabel", "data.num_classes=5", "data.train_size=256",
                   "data.val_size=64", "data.test_size=64", "data.batch_size=32", "model=cnn",
                   "model.width=8"],
    "ranking": ["data=synthetic_ranking", "data.train_size=320", "data.val_size=64",
                "data.test_size=128", "data.batch_size=4", "model=cnn", "model.width=8"],
    "metric_learning": ["data=synthetic_open_set", "data.source.train_size=400",
                        "data.source.test_size=100", "data.val_size=50", "data.batch_size=50",
                        "model=cnn", "model.width=8", "task.embedding_dim=8"],
    "segmentation": ["data=synthetic_segmentation", "data.train_size=64", "data.val_size=16",
                     "data.test_size=16", "data.batch_size=16", "model=unet", "model.width=8"],
    "detection": ["data=synthetic_detection", "data.source_items=120", "data.val_size=20",
                  "data.train_canvases=32", "data.val_canvases=8", "data.test_canvases=8",
                  "data.batch_size=16", "model.width=4", "model.fpn_channels=16",
                  "model.head_convs=1", "model.norm_groups=4"],
    "ctc": ["data=synthetic_ctc", "data.train_size=32", "data.val_size=8", "data.test_size=8",
            "data.batch_size=8", "model=speech_gru", "model.conv_channels=8",
            "model.hidden_size=16", "model.num_layers=1", "scheduler=none"],
    "gan": ["data=synthetic_images_gan", "data.train_size=300", "data.val_size=100",
            "data.test_size=100", "data.batch_size=32", "model.generator_width=8",
            "model.discriminator_width=8", "task.fid_samples=64", "task.kid_subsets=2",
            "task.kid_subset_size=32"],
}  # fmt: skip


def parse(argv: list[str]) -> dict:
    if not argv or "=" in argv[0] or argv[0].startswith("-"):
        raise ConfigError(USAGE)
    options = {"folder": Path(argv[0]).expanduser(), "task": None, "data": "folder",
               "data.path": None, "losslab": None, "overwrite": "false"}  # fmt: skip
    for arg in argv[1:]:
        key, sep, value = arg.partition("=")
        if not sep or key not in options or key == "folder":
            raise ConfigError(f"unknown argument {arg!r}. {USAGE}")
        options[key] = value
    tasks = group_options("task")
    if options["task"] not in tasks:
        raise ConfigError(f"task={options['task']!r}; choose one of {', '.join(tasks)}. {USAGE}")
    if options["data"] not in group_options("data") and options["data"] != "folder":
        raise ConfigError(
            f"data={options['data']!r} is no dataset option of losslab; choose folder (your own "
            f"files) or one of {', '.join(group_options('data'))}"
        )
    if options["data"] == "folder" and not options["data.path"]:
        options["data.path"] = "data"
    if options["data"] != "folder" and options["data.path"]:
        raise ConfigError("data.path is an option of data=folder only")
    options["overwrite"] = options["overwrite"].lower() in ("true", "1", "yes")
    return options


def project_name(folder: Path) -> str:
    name = re.sub(r"[^a-z0-9]+", "_", folder.resolve().name.lower()).strip("_")
    return name if name and not name[0].isdigit() else f"project_{name}"


def dependency(losslab: str | None) -> str:
    """The pyproject requirement on losslab: this checkout's path, or the path / URL given."""
    if losslab is None:
        return f"losslab @ {REPO.as_uri()}"
    if "://" in losslab:  # a git URL: git+https://..., or file://
        return f"losslab @ {losslab}"
    return f"losslab @ {Path(losslab).expanduser().resolve().as_uri()}"


def files(options: dict) -> dict[str, str]:
    """Path in the project -> text of every file the project starts with."""
    task, data, name = options["task"], options["data"], project_name(options["folder"])
    data_path = options["data.path"]
    data_lines = f"path: {data_path}\n" if data == "folder" else ""
    folder_note = (
        "configs/data/folder.yaml is losslab's reader of your own files (the layout each task "
        "reads: losslab's docs/own_data.md)"
        if data == "folder"
        else f"losslab's data={data}"
    )
    # continuation lines carry the template's indentation, which dedent removes
    smoke = (",\n" + " " * 16).join(f'"{o}"' for o in SMOKE_RUNS[task])
    return {
        "pyproject.toml": f"""\
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name}"
            version = "0.1.0"
            description = "{task} with losslab"
            requires-python = ">=3.11"
            dependencies = [
                # losslab by path (this checkout) or by git URL, e.g.
                # "losslab @ git+https://github.com/<you>/losslab.git@main"
                "{dependency(options["losslab"])}",
            ]

            [project.optional-dependencies]
            dev = ["pytest>=8"]

            [tool.setuptools]
            packages = []

            [tool.pytest.ini_options]
            testpaths = ["tests"]
            """,
        ".gitignore": "runs/\npredictions/\ncomparisons/\n__pycache__/\n.venv/\n",
        "configs/experiment/project.yaml": f"""\
            # @package _global_
            # This project's choices on top of losslab's configs/train.yaml: the task and the
            # data. Every losslab option still applies on the command line (loss=focal,
            # trainer=gpu, data.batch_size=64; python scripts/train.py --help lists them).
            defaults:
              - override /task: {task}
              - override /data: project
            """,
        "configs/data/project.yaml": f"""\
            # The data of this project: {folder_note}.
            # Relative paths are relative to the folder the command runs in.
            defaults:
              - {data}
              - _self_
            {data_lines}""",
        "scripts/train.py": '''\
            """Train: python scripts/train.py [loss=...] [seed=...] [trainer=gpu] [--help]"""

            import sys
            from pathlib import Path

            import hydra

            import losslab.catalog  # noqa: F401  (the --help listing)
            from losslab.config import CONFIG_DIR, cli_errors, project_arguments
            from losslab.train import train

            PROJECT = Path(__file__).resolve().parents[1]


            @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
            def main(cfg):
                record = train(cfg)
                return record["val"].get(record["monitor"])


            if __name__ == "__main__":
                sys.argv[1:] = project_arguments(PROJECT / "configs", sys.argv[1:], "project")
                with cli_errors():
                    main()
            ''',
        "scripts/compare.py": f'''\
            """Compare losses on this project's data: a grid of losses x seeds to a report.

                python scripts/compare.py loss=cross_entropy,focal seed=0,1,2 [other overrides]
                python scripts/compare.py --report-only comparisons/<name>

            losslab's comparisons (its docs/comparisons.md) with this project's configs:
            finished runs are reused, and comparisons/<name>/ gets results.csv, report.md
            (mean, spread and 95% interval per loss over the seeds) and the plots.
            """

            import sys
            from pathlib import Path

            from losslab.compare import compare, report_only
            from losslab.config import cli_errors, project_arguments

            PROJECT = Path(__file__).resolve().parents[1]

            if __name__ == "__main__":
                with cli_errors():
                    if sys.argv[1:2] == ["--report-only"]:
                        result = report_only(sys.argv[2])
                    else:
                        words = project_arguments(PROJECT / "configs", sys.argv[1:], "project")
                        given = {{word.split("=", 1)[0] for word in words}}
                        defaults = [w for w in ("task={task}", "data=project")
                                    if w.split("=")[0] not in given]
                        result = compare([*defaults, *words])
                    print(f"-> {{result['out_dir']}}/report.md")
            ''',
        "scripts/predict.py": '''\
            """Predict on new files with a trained checkpoint (losslab's docs/predict.md):

                python scripts/predict.py ckpt_path=runs/.../checkpoints/best.ckpt input=<file or folder>
            """

            import sys
            from pathlib import Path

            import hydra

            from losslab.config import CONFIG_DIR, cli_errors, project_arguments
            from losslab.predict import predict_from_config

            PROJECT = Path(__file__).resolve().parents[1]


            @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
            def main(cfg):
                predict_from_config(cfg)


            if __name__ == "__main__":
                sys.argv[1:] = project_arguments(PROJECT / "configs", sys.argv[1:], "")
                with cli_errors():
                    main()
            ''',
        "tests/test_project.py": f'''\
            """The project's wiring: a few training steps on losslab's synthetic {task} data,
            then predict with the checkpoint. Your own data is not read (it may be large)."""

            import os
            import subprocess
            import sys
            from pathlib import Path

            import numpy as np

            PROJECT = Path(__file__).resolve().parents[1]
            TASK = "{task}"
            SMOKE = [
                {smoke},
            ]
            TINY = [
                "trainer=cpu",
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=2",
                "trainer.limit_val_batches=1",
                "trainer.limit_test_batches=1",
                "trainer.num_sanity_val_steps=0",
                "logger=none",
            ]


            def run(script, *args, cwd):
                env = {{**os.environ, "OMP_NUM_THREADS": "1"}}
                command = [sys.executable, str(PROJECT / "scripts" / script), *args]
                done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
                assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
                return done


            def write_inputs(folder):
                from PIL import Image

                folder.mkdir()
                draw = np.random.default_rng(0)
                if TASK == "ctc":
                    import soundfile

                    soundfile.write(folder / "a.wav", draw.normal(0, 0.1, 8000), 16000)
                    return
                side = {{"segmentation": 32, "detection": 64}}.get(TASK, 28)
                for i in range(2):
                    pixels = draw.integers(0, 256, (side, side), dtype=np.uint8)
                    Image.fromarray(pixels).save(folder / f"image{{i}}.png")


            def test_train_then_predict(tmp_path):
                run("train.py", *SMOKE, *TINY, f"paths.root_dir={{tmp_path}}", cwd=tmp_path)
                checkpoints = sorted(tmp_path.glob("runs/**/checkpoints/*.ckpt"))
                assert checkpoints, "training wrote no checkpoint"
                options = [f"ckpt_path={{checkpoints[0]}}", f"output={{tmp_path / 'out'}}"]
                if TASK == "gan":
                    options.append("num_samples=4")
                else:
                    write_inputs(tmp_path / "inputs")
                    options.append(f"input={{tmp_path / 'inputs'}}")
                done = run("predict.py", *options, "device=cpu", cwd=tmp_path)
                assert '"statistics"' in done.stdout
                assert any((tmp_path / "out").iterdir())


            def test_compare_two_losses(tmp_path):
                losses = "{_two_losses(task)}"
                words = [f"loss={{losses}}", "seed=0", "name=smoke", *SMOKE, *TINY]
                run("compare.py", *words, f"paths.root_dir={{tmp_path}}", cwd=tmp_path)
                report = (tmp_path / "comparisons" / "smoke" / "report.md").read_text()
                assert f"runs: {{len(losses.split(','))}} finished" in report
                assert all(loss in report for loss in losses.split(","))
            ''',
        "README.md": f"""\
            # {name}

            {task.replace("_", " ").capitalize()} on your own data with
            losslab (its task, losses, network and training harness).

            ## Set-up

            ```bash
            python -m venv .venv && . .venv/bin/activate
            pip install -e '.[dev]'      # installs losslab from the path in pyproject.toml
            pytest                       # a few training steps on synthetic data, then predict
            ```

            `pyproject.toml` points at the losslab this project was made from
            (`{dependency(options["losslab"])}`). To use another copy, change that line to
            its path (`losslab @ file:///path/to/losslab`) or its git URL
            (`losslab @ git+https://github.com/<you>/losslab.git@main`) and install again;
            to edit losslab alongside, `pip install -e /path/to/losslab` first.

            ## Your data

            `configs/data/project.yaml` says where it is ({folder_note}){
            f": `path: {data_path}`. Put your files there or pass `data.path=<folder>`"
            if data == "folder"
            else ""
        }.
            `configs/experiment/project.yaml` picks the task ({task}).

            ## Train, compare, predict

            ```bash
            # 1. train (runs/<task>/<data>/<loss>/seed0/: metrics.json, checkpoints/best.ckpt)
            python scripts/train.py                      # add loss=..., trainer=gpu, --help
            # 2. compare losses: one run per loss and seed -> comparisons/<name>/report.md, plots
            python scripts/compare.py loss={_two_losses(task)} seed=0,1,2
            # 3. predict on new files with a checkpoint
            python scripts/predict.py ckpt_path=runs/.../checkpoints/best.ckpt input=<file or folder>
            ```

            Every option of losslab's configs works on these command lines
            (`python scripts/train.py --help`).
            """,
    }


def _two_losses(task: str) -> str:
    from omegaconf import OmegaConf

    default = OmegaConf.load(CONFIG_DIR / "task" / f"{task}.yaml").defaults
    loss = next(
        (next(iter(d.values())) for d in default if isinstance(d, dict) and "override /loss" in d),
        "cross_entropy",
    )
    others = {"classification": "focal", "regression": "huber", "multilabel": "asymmetric",
              "segmentation": "dice", "metric_learning": "contrastive", "ranking": "hinge",
              "detection": "focal+iou", "ctc": "ctc", "gan": "gan"}  # fmt: skip
    return loss if others[task] == loss else f"{loss},{others[task]}"


def create(argv: list[str]) -> Path:
    """Write the project; returns its folder."""
    options = parse(argv)
    folder: Path = options["folder"]
    if folder.exists() and any(folder.iterdir()) and not options["overwrite"]:
        raise ConfigError(
            f"{folder} exists and is not empty; choose a new folder (or overwrite=true)"
        )
    if options["data"] == "folder" and not (CONFIG_DIR / "data" / "folder.yaml").is_file():
        print(
            "note: data=folder needs configs/data/folder.yaml, which this losslab does not have "
            "yet; the project's test runs on synthetic data and passes regardless",
            file=sys.stderr,
        )
    for relative, text in files(options).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    print(f"wrote {folder}: cd {folder} && pip install -e '.[dev]' && pytest")
    return folder


if __name__ == "__main__":
    with cli_errors():
        create(sys.argv[1:])
