"""The Gradio demo (layout, event wiring, drawing); app.py builds and launches it."""
from .ui import CSS, build_demo  # noqa: F401
