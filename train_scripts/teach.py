"""Compute distillation targets once: the mean of the teachers' calibrated, flip-averaged probabilities on every: the
command ``fer_core.train.commands.teach`` by path (its docstring and ``--help`` say more)."""
from fer_core.train.commands.teach import main

if __name__ == "__main__":
    raise SystemExit(main())
