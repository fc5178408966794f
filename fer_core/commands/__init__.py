"""The commands people run, each a module with ``main(argv=None)`` and a console command (pyproject.toml):

=================  ===========================  =========================================================
console command    module                       what it does
=================  ===========================  =========================================================
fer-predict        fer_core.predict.cli         read the faces of images, folders and videos
fer-data           fer_core.commands.prepare_data  decode FER+ / FER2013 into a training cache
fer-teach          fer_core.commands.teach      distillation targets from trained weights
fer-train          fer_core.commands.train      train a model (torchrun -m fer_core.commands.train on GPUs)
fer-evaluate       fer_core.commands.evaluate   evaluate weights on a dataset split
fer-export         fer_core.commands.export     store, measure and card a trained weight
fer-publish        fer_core.commands.publish    the model repos and the Space on the Hugging Face Hub
=================  ===========================  =========================================================

``python -m fer_core.commands.NAME`` runs any of them, and ``fit_balance``, ``fit_crop``, ``pin`` and
``weights_table`` (the maintainers' tools); ``train_scripts/*.py`` are the same commands by path.
"""
from __future__ import annotations

import sys
from pathlib import Path


def program(command: str) -> str:
    """How the running command was called, for the provenance a run records: ``train_scripts/NAME.py`` when run by
    that path, ``python -m fer_core.commands.NAME`` when run as a module, else its console command (``command``,
    e.g. ``fer-train``; also when called from Python)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name.startswith("fer_core."):
        return f"python -m {spec.name}"
    arg0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    if arg0.suffix == ".py" and arg0.parent.name == "train_scripts":
        return f"train_scripts/{arg0.name}"
    return command
