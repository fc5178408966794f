"""Fit the balanced reading of a weight (post-hoc logit adjustment, fer_core/balance.py) on FER+'s selection: the
command ``fer_core.train.commands.fit_balance`` by path (its docstring and ``--help`` say more)."""
from fer_core.train.commands.fit_balance import cli

if __name__ == "__main__":
    raise SystemExit(cli())
