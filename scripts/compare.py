"""Compare losses: run a grid of task x data x losses x seeds and write a report.

    python scripts/compare.py compare=focal_imbalance               # configs/compare/<name>.yaml
    python scripts/compare.py name=ce_vs_focal task=classification data=fashion_mnist_lt \\
        loss=cross_entropy,focal seed=0,1,2 trainer.max_epochs=1
    python scripts/compare.py compare=focal_imbalance hydra/launcher=joblib   # parallel runs
    python scripts/compare.py compare=focal_imbalance tune=true     # same Optuna budget per loss
    python scripts/compare.py compare=focal_imbalance rerun=true    # train every run again
    python scripts/compare.py compare=focal_imbalance retry_failed=true   # only the failed runs
    python scripts/compare.py compare=focal_imbalance_cifar hydra/launcher=slurm \\
        hydra.launcher.partition=gpu trainer=gpu parallel_sweeps=6   # SLURM, whole grid queued
    python scripts/compare.py --report-only comparisons/focal_imbalance

Finished runs are reused and interrupted ones resumed: the same command continues a grid.
The report goes to comparisons/<name>/ (out=<folder> to choose). All logic lives in
losslab.compare; docs/comparisons.md describes the grid words, the config format,
launchers, tuning and the report.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from losslab.config import cli_errors


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    from losslab.compare import compare, report_only

    if argv[0] == "--report-only":
        if len(argv) != 2:
            print("usage: python scripts/compare.py --report-only <comparison folder>")
            return 2
        result = report_only(argv[1])
    else:
        result = compare(argv)
        print(f"trained {result['trained']} run(s)")
    print(f"report: {Path(result['out_dir']) / 'report.md'}")
    for setting, label in result["best"].items():
        print(f"best on {setting}: {label} ({result['headline']})")
    return 0


if __name__ == "__main__":
    with cli_errors():
        sys.exit(main(sys.argv[1:]))
