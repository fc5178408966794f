"""Ship a trained weight: store it compactly, measure the stored form, plot it, and write its model card: the command
``fer_core.train.commands.export`` by path (its docstring and ``--help`` say more)."""
from fer_core.train.commands.export import cli

if __name__ == "__main__":
    raise SystemExit(cli())
