"""Files written whole or not at all: a reader (another process, a resumed run, a download) never sees half a file.

Everything the project writes that something else may read while it is written goes through :func:`atomic_output`
or its two shorthands: the data goes to a unique temporary file beside the target, is flushed to disk, and one
``os.replace`` puts it in place.
"""
from __future__ import annotations

import hashlib
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_output(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it replaces ``path`` (fsynced), on error
    it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # as a plain file would be (some writers create their files private)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path, data: bytes) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def project_root() -> Path:
    """The project's checkout, for the commands that read or write its files (the weights tables, publishing): the
    folder above this package when it holds ``app.py`` (a checkout, or an editable install of one), else the
    current folder."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "app.py").is_file() else Path.cwd()


def sha256_file(path) -> str:
    """The sha256 of a file, read in 1 MB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
