"""Who can reach the page: the address it listens on, and an optional login.

The address is Gradio's own setting, ``GRADIO_SERVER_NAME``: unset, the page listens on 127.0.0.1, this machine
only, so that uploads and webcam frames of faces stay on it; a container or a LAN demo sets ``0.0.0.0``, and a
Hugging Face Space sets it itself. The port is ``GRADIO_SERVER_PORT`` (default 7860).

A self-hosted page can ask for a login (Gradio's ``auth``): ``FER_AUTH=user:password`` for one account, or
``FER_AUTH_FILE`` naming a file of ``user:password`` lines (blank lines and ``#`` comments skipped), which keeps the
password out of the environment. A Space is better made private on the Hub than given a login here.
"""
from __future__ import annotations

import os
from pathlib import Path

AUTH_MESSAGE = "This page asks for the login its host gave you."


def parse_logins(text: str, source: str) -> list[tuple[str, str]]:
    """``user:password`` lines -> ``[(user, password)]``; a ValueError naming ``source`` for a bad line."""
    logins = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password:
            raise ValueError(f"{source}, line {n}: expected user:password")
        logins.append((user.strip(), password))
    return logins


def logins_from_env() -> list[tuple[str, str]]:
    """The logins ``FER_AUTH`` and ``FER_AUTH_FILE`` name (none: the page is open to whoever reaches it)."""
    logins = []
    if os.environ.get("FER_AUTH"):
        logins += parse_logins(os.environ["FER_AUTH"], "FER_AUTH")
    if os.environ.get("FER_AUTH_FILE"):
        path = Path(os.environ["FER_AUTH_FILE"])
        logins += parse_logins(path.read_text(), str(path))
        if not logins:
            raise ValueError(f"{path}: no user:password line")
    return logins


def launch_settings() -> dict:
    """The ``demo.launch`` arguments that decide who reaches the page: a login when one is set. The address and
    port are left to Gradio, which reads ``GRADIO_SERVER_NAME`` and ``GRADIO_SERVER_PORT``."""
    logins = logins_from_env()
    return {"auth": logins, "auth_message": AUTH_MESSAGE} if logins else {}
