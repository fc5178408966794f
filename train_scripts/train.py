"""Train a model on FER+ (or any dataset fer_core reads) and export its best weights: the command
``fer_core.train.commands.train`` by path (its docstring and ``--help`` say more)."""
from fer_core.train.commands.train import main

if __name__ == "__main__":
    raise SystemExit(main())
