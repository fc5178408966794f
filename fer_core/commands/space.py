"""What the demo Space holds, as ``publish.py --out DIR`` writes it and publishing uploads it: the app's code, its
requirements (with the CPU builds of torch first on CPU hardware), a README whose front matter configures the
Space with the keys the Hub's Spaces configuration reference documents, and the weights (copied in, or fetched
at build time by ``preload_from_hub``, each entry pinned to a model repo's commit).

The choices follow the Hub's documentation (hub-docs, docs/hub): ``spaces-zerogpu.md`` (ZeroGPU runs Python 3.12.12
or 3.10.13 and torch 2.8.0, 2.9.1, 2.10.0 or 2.11.0), ``spaces-config-reference.md`` (the front matter's keys and
``suggested_hardware`` values; ZeroGPU is not one of those: it is the Space's hardware, set through the API) and
``spaces-dependencies.md`` (``pre-requirements.txt`` is installed before ``requirements.txt``).
"""
from __future__ import annotations

import re
import shutil
from importlib.metadata import version
from pathlib import Path

import yaml

from fer_core.files import project_root
from fer_core.pretrained import PRETRAINED

ROOT = project_root()
CODE = ("app.py", "demo", "fer_core")  # what the app imports, and nothing else (no tests, no training data)
# nor the layers above inference that the app never imports (tests/test_structure.py keeps it so): training and the
# commands
SKIP = ("__pycache__", ".pyc", "fer_core/train/", "fer_core/commands/")
SPACES_PIN = "spaces==0.51.3"  # ZeroGPU's helper: demo/runner.py uses it on ZeroGPU, app.py imports it if present
ZERO_GPU = "zero-a10g"  # the API's name for ZeroGPU hardware (huggingface_hub's SpaceHardware)
CPU_HARDWARE = ("cpu-basic", "cpu-upgrade")
GPU_HARDWARE = ("t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4", "l40sx8", "a10g-small", "a10g-large",
                "a10g-largex2", "a10g-largex4", "a100-large", "a100x4", "a100x8")
HARDWARE = (ZERO_GPU,) + CPU_HARDWARE + GPU_HARDWARE
# ZeroGPU's Pythons (spaces-zerogpu.md); onnxruntime 1.32 publishes no wheel for 3.10, so the Space runs 3.12
ZERO_GPU_PYTHONS = ("3.12", "3.12.12")
DEFAULT_PYTHON = "3.12"
SHA = re.compile(r"^[0-9a-f]{40}$")
TITLE = "# Facial expressions, read by three attention models"


def check_python(python: str, hardware: str) -> None:
    """The Space's Python: ``3.x`` or ``3.x.x`` (the config reference), and on ZeroGPU one it runs that this
    project's requirements install on. A ValueError says why not."""
    if not re.fullmatch(r"3\.\d+(\.\d+)?", python):
        raise ValueError(f"python {python!r}: the Hub takes 3.x or 3.x.x")
    if hardware == ZERO_GPU and python not in ZERO_GPU_PYTHONS:
        raise ValueError(f"python {python}: ZeroGPU runs 3.12.12 and 3.10.13, and onnxruntime 1.32 has no wheel "
                         f"for 3.10: use one of {ZERO_GPU_PYTHONS}")


def requirements() -> bytes:
    """The project's requirements and the ZeroGPU helper."""
    text = (ROOT / "requirements.txt").read_text().rstrip()
    return (text + f"\n# ZeroGPU's helper (demo/runner.py; app.py imports it where installed)\n{SPACES_PIN}\n").encode()


def front_matter(org: str, models: list[str], hardware: str, python: str, preload: dict[str, str] | None) -> dict:
    """The Space's configuration (spaces-config-reference.md); ``preload``: model key -> the commit of its repo
    whose weights the Space fetches when it is built (None: the weights are copied into the Space)."""
    front = {"title": "FER Attention", "emoji": "🙂", "colorFrom": "indigo", "colorTo": "blue", "sdk": "gradio",
             "sdk_version": version("gradio"), "python_version": python, "app_file": "app.py",
             "short_description": "Facial expressions read by three attention models", "license": "mit",
             "pinned": False, "tags": ["facial-expression-recognition", "grad-cam", "attention"],
             "models": [f"{org}/{PRETRAINED[k].repo_name}" for k in models]}
    if hardware != ZERO_GPU:  # ZeroGPU is no suggested_hardware value: it is set on the Space itself
        front["suggested_hardware"] = hardware
    if preload is not None:
        for key, sha in preload.items():
            if not SHA.match(sha):
                raise ValueError(f"{key}: preload_from_hub takes a commit sha (40 hex digits), not {sha!r}")
        front["preload_from_hub"] = [f"{org}/{PRETRAINED[k].repo_name} config.json,model.safetensors {preload[k]}"
                                     for k in models]
    return front


def readme(org: str, models: list[str], hardware: str, python: str, preload: dict[str, str] | None) -> bytes:
    """The Space's README: its front matter and a short page."""
    front = yaml.safe_dump(front_matter(org, models, hardware, python, preload), sort_keys=False,
                           allow_unicode=True)
    body = [TITLE, "",
            "DDAMFN, ResNet18+DDA and their attention fusion read every face of a photo or a webcam, each with its "
            "Grad-CAM and its own attention map. Trained from scratch on FER+ on a 2-core CPU; the model cards:", ""]
    body += [f"- [{PRETRAINED[k].title or k}](https://huggingface.co/{org}/{PRETRAINED[k].repo_name})" for k in models]
    if hardware == ZERO_GPU:
        body += ["", "On ZeroGPU a photo is read on a GPU lent for the call; the live webcam is read on the Space's "
                     "CPU, so that your daily GPU quota is not spent on video frames."]
    return ("---\n" + front + "---\n\n" + "\n".join(body) + "\n").encode()


def space_files(org: str, models: list[str], weights_dir: Path, hardware: str, python: str,
                preload: dict[str, str] | None) -> dict[str, Path | bytes]:
    """Every file of the Space: path in the repo -> a local file or generated bytes. ``preload`` as in
    :func:`front_matter` (None: the weights are copied in)."""
    check_python(python, hardware)
    files: dict[str, Path | bytes] = {}
    for item in CODE:
        path = ROOT / item
        for p in [path] if path.is_file() else sorted(q for q in path.rglob("*") if q.is_file()):
            if not any(s in p.relative_to(ROOT).as_posix() for s in SKIP):
                files[p.relative_to(ROOT).as_posix()] = p
    files["requirements.txt"] = requirements()
    if hardware in CPU_HARDWARE:  # the CPU builds of torch, installed first (pip keeps them: the pins match)
        files["pre-requirements.txt"] = ROOT / "pre-requirements.txt"
    files["README.md"] = readme(org, models, hardware, python, preload)
    for name in ["yunet"] + ([PRETRAINED[k].local_dir for k in models] if preload is None else []):
        for p in sorted((weights_dir / name).iterdir()):
            if p.is_file():
                files[f"weights/{name}/{p.name}"] = p
    return files


def write_folder(files: dict[str, Path | bytes], dest: Path) -> Path:
    """Write ``files`` (as :func:`space_files` gives them) into ``dest``, which must be empty or absent."""
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty: the folder must hold this repo's files and nothing else")
    for rel, src in files.items():
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(src, bytes):
            out.write_bytes(src)
        else:
            shutil.copyfile(src, out)
    return dest


def size(src: Path | bytes) -> int:
    return len(src) if isinstance(src, bytes) else Path(src).stat().st_size
