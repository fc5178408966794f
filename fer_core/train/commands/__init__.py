"""The commands that train, evaluate, export and calibrate weights (the console commands and ``python -m`` entries
are listed in :mod:`fer_core.commands`): they use the trainer, so they live in its layer."""
from __future__ import annotations

import sys
from pathlib import Path


def program(command: str) -> str:
    """How the running command was called, for the provenance a run records: ``train_scripts/NAME.py`` when run by
    that path, ``python -m fer_core.train.commands.NAME`` when run as a module, else its console command
    (``command``, e.g. ``fer-train``; also when called from Python)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name.startswith("fer_core."):
        return f"python -m {spec.name}"
    arg0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    if arg0.suffix == ".py" and arg0.parent.name == "train_scripts":
        return f"train_scripts/{arg0.name}"
    return command
