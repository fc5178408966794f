"""Where weights come from: a folder ``FER_WEIGHTS_DIR`` names, else the copy shipped in ``weights/`` when it
matches its pins (:mod:`fer_core.pretrained`), else the Hugging Face Hub's pinned copy, cached the usual Hub way.

An unreachable Hub costs one bounded probe (``FER_HUB_TIMEOUT`` seconds, 5 by default), never huggingface_hub's
retry loop; with ``HF_HUB_OFFLINE`` set no request is sent. Whatever the source, weights and config must match their
pins: no silent switch to other weights. Loading what is found (:func:`fer_core.weights.load_pretrained`) and the
format itself are :mod:`fer_core.weights`.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from .files import sha256_file
from .pretrained import CONFIG_FILE, PROJECT_WEIGHTS, WEIGHTS_FILE, PretrainedEntry, WeightsError, weights_source


class HubUnavailable(RuntimeError):
    pass


def _hub_timeout() -> float:
    return float(os.environ.get("FER_HUB_TIMEOUT", "5"))


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _probe(endpoint: str, entry: PretrainedEntry, filename: str, timeout: float):
    """One HEAD request without retries, so that an unreachable Hub costs at most ``timeout`` seconds."""
    url = f"{endpoint.rstrip('/')}/{entry.hf_hub_id}/resolve/{entry.revision}/{filename}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return
    except urllib.error.HTTPError as e:
        raise HubUnavailable(f"{url} answered {e.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise HubUnavailable(f"cannot reach {endpoint} ({getattr(e, 'reason', e)})") from None


def download_files(entry: PretrainedEntry, filenames, *, endpoint: str | None = None, cache_dir=None) -> list[Path]:
    """Fetch files of a Hub entry (pinned revision) into the Hub cache; a cached copy serves when the Hub
    cannot be reached, and an unreachable Hub costs one bounded probe, never huggingface_hub's retry loop."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError, HTTPError

    # read at call time (huggingface_hub reads these once, at import)
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    cache_dir = cache_dir or os.environ.get("HF_HUB_CACHE") or None
    timeout = _hub_timeout()
    local_only = _offline()  # passed per call: huggingface_hub's process-wide offline flag is left alone
    why = "HF_HUB_OFFLINE is set" if local_only else ""
    if not local_only:
        try:
            _probe(endpoint, entry, filenames[0], timeout)
        except HubUnavailable as e:
            local_only, why = True, str(e)  # a cached copy may still be there
    paths = []
    for fname in filenames:
        try:
            paths.append(Path(hf_hub_download(entry.hf_hub_id, fname, revision=entry.revision, endpoint=endpoint,
                                              cache_dir=cache_dir, etag_timeout=timeout,
                                              local_files_only=local_only)))
        # not found on the Hub or in the cache (EntryNotFoundError, its LocalEntryNotFoundError), HTTP errors
        # (HfHubHTTPError is an OSError), offline mode (OfflineModeIsEnabled, an OSError), network errors
        # (httpx's HTTPError), bad repo ids or revisions (HFValidationError), the file system (OSError)
        except (EntryNotFoundError, HTTPError, HFValidationError, OSError) as e:
            where = f"{entry.hf_hub_id}@{entry.revision}/{fname}"
            if local_only:
                raise HubUnavailable(f"{where} is not in the local Hub cache and the Hub is not used ({why})") from None
            raise HubUnavailable(f"{where} not available on {endpoint} "
                                 f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return paths


def download(entry: PretrainedEntry, *, endpoint: str | None = None, cache_dir=None) -> Path:
    """Fetch a weights entry's config and weights; returns their snapshot folder."""
    cfg, weights = download_files(entry, [CONFIG_FILE, WEIGHTS_FILE], endpoint=endpoint, cache_dir=cache_dir)
    if cfg.parent != weights.parent:
        raise HubUnavailable(f"{entry.hf_hub_id}: config and weights resolved to different snapshots")
    return cfg.parent


def fetch_file(entry: PretrainedEntry, filename: str, *, endpoint=None, cache_dir=None) -> Path:
    """One file (e.g. a face detector) from the Hub, else from ``weights/<entry.local_dir>``; sha256 pinned."""
    try:
        path = download_files(entry, [filename], endpoint=endpoint, cache_dir=cache_dir)[0]
    except HubUnavailable as e:
        path = _local_copy(entry)
        if not path.is_file():
            raise WeightsError(f"{e}; and there is no local copy at {path}") from None
        warnings.warn(f"{e}; using the local copy {path}", stacklevel=2)
    if entry.sha256 and sha256_file(path) != entry.sha256:
        raise WeightsError(f"{path}: sha256 is not the pinned {entry.sha256[:12]}...")
    return path


def _local_copy(entry: PretrainedEntry) -> Path:
    """The shipped copy: ``weights/<local_dir>`` (``FER_WEIGHTS_DIR`` points elsewhere)."""
    return Path(os.environ.get("FER_WEIGHTS_DIR", PROJECT_WEIGHTS)) / entry.local_dir


def pin_mismatch(entry: PretrainedEntry, folder: Path) -> str | None:
    """Why ``folder`` is not the pinned copy of ``entry`` (None when it is, or when nothing is pinned)."""
    for fname, pinned in ((CONFIG_FILE, entry.config_sha256), (WEIGHTS_FILE, entry.sha256)):
        if pinned is None:
            continue
        path = folder / fname
        if not path.is_file():
            return f"{path}: no such file"
        actual = sha256_file(path)
        if actual != pinned:
            return f"{path}: sha256 {actual[:12]}... is not the pinned {pinned[:12]}..."
    return None


def _locate(entry: PretrainedEntry, endpoint=None, cache_dir=None, source: str | None = None) -> tuple[Path, bool]:
    """The folder to load ``entry`` from, and whether it is a folder of the user's own (``FER_WEIGHTS_DIR``:
    checked against its own config, not the pins).

    ``auto``: a ``FER_WEIGHTS_DIR`` folder that holds the entry; else the shipped copy when it matches its pins
    (no network call at all); else the Hub's pinned copy. ``local``: never the Hub. ``hub``: always the Hub."""
    source = source or weights_source()
    local = _local_copy(entry)
    has_local = (local / CONFIG_FILE).exists()
    if source != "hub" and has_local and "FER_WEIGHTS_DIR" in os.environ:
        return local, True  # weights a user pointed at come first, online or not
    why_not_local = f"there is no copy in {local}"
    if source != "hub" and has_local:
        why_not_local = pin_mismatch(entry, local)
        if why_not_local is None:
            return local, False
    if source == "local":
        raise WeightsError(f"{entry.name}: {why_not_local}, and FER_WEIGHTS_SOURCE=local keeps the Hub out. "
                           f"Restore weights/ from git, or unset FER_WEIGHTS_SOURCE to fetch the pinned copy.")
    try:
        path = download(entry, endpoint=endpoint, cache_dir=cache_dir)
    except HubUnavailable as e:
        raise WeightsError(f"{entry.name}: {why_not_local}; and the Hub's copy cannot be had: {e}. Restore "
                           f"weights/ from git, train the weights (README: Training), or pass a weights folder "
                           f"path.") from None
    if has_local and source != "hub":
        warnings.warn(f"{why_not_local}: using the pinned copy from the Hub instead", stacklevel=3)
    return path, False


def locate_pinned(entry: PretrainedEntry, endpoint=None, cache_dir=None, source=None) -> tuple[Path, bool]:
    """:func:`_locate`, then the pins checked on what it found (a user's own folder excepted)."""
    path, own_folder = _locate(entry, endpoint, cache_dir, source)
    if not own_folder:
        bad = pin_mismatch(entry, path)
        if bad:
            raise WeightsError(f"{entry.hf_hub_id}@{entry.revision}: {bad} (not the pinned weights: refused)")
    return path, own_folder
