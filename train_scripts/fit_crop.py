"""Fit the crop spec (box scale, vertical offset, eye alignment) and measure the detection rate through YuNet, on: the
command ``fer_core.train.commands.fit_crop`` by path (its docstring and ``--help`` say more)."""
from fer_core.train.commands.fit_crop import main

if __name__ == "__main__":
    raise SystemExit(main())
