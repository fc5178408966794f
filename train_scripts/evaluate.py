"""Evaluate weights on a dataset split: accuracy, balanced accuracy, per-class P/R/F1, confusion matrix, ECE: the
command ``fer_core.train.commands.evaluate`` by path (its docstring and ``--help`` say more)."""
from fer_core.train.commands.evaluate import cli

if __name__ == "__main__":
    raise SystemExit(cli())
