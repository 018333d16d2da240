"""Print the tasks, the losses each accepts on each dataset, and the other config groups.

python scripts/list.py     (the same text as python scripts/train.py --help)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from losslab.catalog import listing

if __name__ == "__main__":
    print(listing())
