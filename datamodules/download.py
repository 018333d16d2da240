"""Downloads that fail within seconds, with an error that says how to supply the files.

torchvision's downloaders open URLs without a timeout and try mirror after mirror, so on
a machine without network they can hang for minutes before raising an error that names
neither the dataset nor the folder. :func:`fetch` probes the servers first with a short
timeout, through the same ``urllib`` machinery (and so the same proxy settings)
torchvision uses, and turns every failure into a :class:`DatasetUnavailableError`.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

#: Seconds one server may take to answer the probe; the whole probe stays under 10 s
#: for the two MNIST mirrors.
PROBE_TIMEOUT_S = 3.0


class DatasetUnavailableError(RuntimeError):
    """A dataset is neither on disk nor downloadable; the message says how to supply it."""


def unreachable_reason(urls: Sequence[str], timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """``None`` when at least one of ``urls`` answers, else why none did."""
    reasons = []
    for url in urls:
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "losslab"})
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                return None
        except urllib.error.HTTPError:
            return None  # the server answered; let torchvision deal with the status
        except (urllib.error.URLError, OSError) as err:
            reasons.append(f"{url}: {getattr(err, 'reason', err)}")
    return "; ".join(reasons) or "no download URL known"


def fetch(dataset: str, urls: Sequence[str], download: Callable[[], object], how_to_supply: str):
    """Run torchvision's ``download`` for ``dataset`` unless its servers are unreachable.

    ``urls`` are probed first; ``how_to_supply`` (which files to put where) ends the
    error message of every failure.
    """
    reason = unreachable_reason(urls)
    if reason is not None:
        raise DatasetUnavailableError(
            f"{dataset} is not on disk and cannot be downloaded (no answer from {reason}). "
            f"{how_to_supply}"
        )
    try:
        download()
    except (urllib.error.URLError, OSError, RuntimeError) as err:
        raise DatasetUnavailableError(
            f"downloading {dataset} failed ({err}). {how_to_supply}"
        ) from err
