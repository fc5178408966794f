"""Publish the shipped models and the demo Space to the Hugging Face Hub, with huggingface_hub's upload API (large: the
command ``fer_core.commands.publish`` by path (its docstring and ``--help`` say more)."""
from fer_core.commands.publish import main

if __name__ == "__main__":
    raise SystemExit(main())
