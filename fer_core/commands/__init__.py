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

import os
import sys


def program() -> str:
    """How the running command was called, for the provenance a run records: a script's path as given
    (``train_scripts/train.py``), a console command's name (``fer-train``), a module's ``python -m`` name."""
    arg0 = sys.argv[0] if sys.argv and sys.argv[0] else "fer"
    if arg0.endswith(".py"):
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name.startswith("fer_core."):
            return f"python -m {spec.name}"
        return os.path.relpath(arg0) if os.path.isabs(arg0) else arg0
    return os.path.basename(arg0)
