"""The shipped weights' table in README.md and weights/README.md, written from the weights' config.json files: the
command ``fer_core.commands.weights_table`` by path (its docstring and ``--help`` say more)."""
from fer_core.commands.weights_table import main

if __name__ == "__main__":
    raise SystemExit(main())
