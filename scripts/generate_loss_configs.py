"""Write configs/loss/<name>.yaml for every registered loss (and delete left-over ones).

python scripts/generate_loss_configs.py          # update the files
python scripts/generate_loss_configs.py --check  # exit 1 if any is missing or stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from losslab.loss_configs import differences, write_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report differences")
    args = parser.parse_args()
    changes = differences() if args.check else write_all()
    for kind, names in changes.items():
        for name in names:
            print(f"{kind}: configs/loss/{name}")
    if args.check:
        return 1 if any(changes.values()) else 0
    print(f"configs/loss/ matches the registry ({sum(map(len, changes.values()))} files changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
