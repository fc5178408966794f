"""Pin the weights in ``weights/``: write the sha256 of each folder's ``model.safetensors`` and ``config.json`` into:
the command ``fer_core.commands.pin`` by path (its docstring and ``--help`` say more)."""
from fer_core.commands.pin import main

if __name__ == "__main__":
    raise SystemExit(main())
