"""The data: lay FER+ and FER2013 out from their official files, or decode a dataset once into a compact cache (uint8
arrays + labels, lzma) to train from or carry to a GPU: the command ``fer-data`` (``fer_core.commands.prepare_data``)
by path (its docstring and ``--help`` say more)."""
from fer_core.commands.prepare_data import main

if __name__ == "__main__":
    raise SystemExit(main())
