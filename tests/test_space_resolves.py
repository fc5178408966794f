"""The Space that ``publish.py --out`` writes builds on the Hub: its requirements resolve to wheels for its own
Python on x86_64 Linux (pip's resolver, as the Space's pip will run it: PyPI only, no local configuration), its
torch is one ZeroGPU supports, grad-cam (published as a source archive only) resolves on its own with its
dependencies as wheels, and its front matter uses only what the Hub's configuration reference documents, each
preload entry pinned to a commit.

These tests ask PyPI (``pip install --dry-run``); without the network they fail, as the Space's build would.
"""
import json
import os
import subprocess
import sys
import urllib.request

import pytest

from conftest import ROOT
from hub_rules import COMMIT, front_matter, space_errors

# ZeroGPU's torch versions (hub-docs spaces-zerogpu.md, "Supported versions")
ZERO_GPU_TORCH = ("2.8.0", "2.9.1", "2.10.0", "2.11.0")
# manylinux wheels a Space's x86_64 Linux takes (glibc 2.28 or newer: torch and onnxruntime ask for 2.28)
PLATFORMS = [f"manylinux_2_{v}_x86_64" for v in range(28, 16, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
SOURCE_ONLY = "grad-cam"  # published as an sdist only: pip builds it on the Space


def pip_dry_run(tmp_path, python: str, args: list[str], binary_only: bool = True) -> dict:
    """``pip install --dry-run`` for ``python`` on x86_64 Linux wheels, with this machine's pip configuration set
    aside (PIP_CONFIG_FILE=/dev/null: no local wheel folders, indexes or constraints); the report, or a failure
    with pip's output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_NO_CACHE_DIR"] = "1"  # what it downloads to read goes with it, not into pip's cache
    report = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report),
           "--target", str(tmp_path / "target"), "--python-version", python,
           *[f"--platform={p}" for p in PLATFORMS], *(["--only-binary=:all:"] if binary_only else ["--no-deps"]),
           *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        pytest.fail(f"pip could not resolve for Python {python}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return {i["metadata"]["name"].lower(): i for i in json.loads(report.read_text())["install"]}


@pytest.fixture(scope="module")
def space(module_tmp):
    from fer_core.commands import publish

    folder = module_tmp / "zero"
    assert publish.main(["--org", "me", "--out", str(folder)]) == 0
    return folder


def _source_only_requirements(tmp_path, python: str, pin: str) -> list[str]:
    """grad-cam alone (no dependencies): its source archive, and the requirements it declares."""
    got = pip_dry_run(tmp_path, python, [pin], binary_only=False)[SOURCE_ONLY]
    assert got["download_info"]["url"].endswith(".tar.gz"), got["download_info"]["url"]  # still source-only
    return [r for r in got["metadata"].get("requires_dist", []) if "extra ==" not in r]


def test_the_space_requirements_resolve_for_its_python(space, tmp_path):
    meta = front_matter((space / "README.md").read_text())
    python = meta["python_version"]
    lines = [ln.strip() for ln in (space / "requirements.txt").read_text().splitlines()]
    reqs = [ln for ln in lines if ln and not ln.startswith("#")]
    pin = next(r for r in reqs if r.startswith(SOURCE_ONLY + "=="))
    extra = _source_only_requirements(tmp_path, python, pin)
    # the Space installs its Gradio from sdk_version, then requirements.txt
    got = pip_dry_run(tmp_path, python, [r for r in reqs if r != pin] + extra + [f"gradio=={meta['sdk_version']}"])
    torch_version = got["torch"]["metadata"]["version"]
    assert torch_version in ZERO_GPU_TORCH, torch_version
    tag = "cp" + python.replace(".", "")[:3]
    for name in ("torch", "onnxruntime"):
        assert f"-{tag}-" in got[name]["download_info"]["url"], got[name]["download_info"]["url"]
    print(f"the Space resolves {len(got)} wheels for Python {python}: torch {torch_version}, onnxruntime "
          f"{got['onnxruntime']['metadata']['version']}, gradio {got['gradio']['metadata']['version']}")


def test_python_3_10_would_not_build(tmp_path):
    """The check can fail: for ZeroGPU's other Python (3.10) onnxruntime 1.32 has no wheel, which is why the Space
    runs 3.12."""
    pin = next(ln for ln in (ROOT / "requirements.txt").read_text().splitlines() if ln.startswith("onnxruntime=="))
    with pytest.raises(pytest.fail.Exception, match="could not resolve for Python 3.10"):
        pip_dry_run(tmp_path, "3.10", [pin])


def test_the_space_front_matter_is_documented_and_its_preloads_pinned(space, tmp_path):
    from fer_core.commands import publish

    assert space_errors(front_matter((space / "README.md").read_text())) == []
    hub = tmp_path / "hub"
    shas = [f"--revision={k}={'%x' % (i + 10) * 40}" for i, k in enumerate(("ddamfn", "resnet_dda", "fusion"))]
    assert publish.main(["--org", "me", "--out", str(hub), "--space-weights", "hub", *shas]) == 0
    meta = front_matter((hub / "README.md").read_text())
    assert space_errors(meta) == [] and len(meta["preload_from_hub"]) == 3
    assert all(COMMIT.match(entry.split()[2]) for entry in meta["preload_from_hub"])


def test_a_cpu_space_installs_the_cpu_builds_of_the_same_torch(tmp_path):
    """pre-requirements.txt (installed first on a Space) pins the CPU builds of the versions requirements.txt pins,
    from PyTorch's CPU index; pip then keeps them (``torch==2.11.0`` is met by ``2.11.0+cpu``). That index cannot
    be reached from this machine (download.pytorch.org is not among the hosts it reaches): where it cannot, the
    wheels themselves are not checked, and the test says so by skipping after checking the pins."""
    from packaging.requirements import Requirement

    from fer_core.commands import publish

    assert publish.main(["--org", "me", "--out", str(tmp_path / "cpu"), "--hardware", "cpu-basic"]) == 0
    pre = (tmp_path / "cpu" / "pre-requirements.txt").read_text().splitlines()
    assert f"--extra-index-url {CPU_INDEX}" in pre
    pins = {Requirement(ln).name: Requirement(ln) for ln in pre if ln and not ln.startswith(("#", "-"))}
    main = {Requirement(ln).name: Requirement(ln) for ln in (tmp_path / "cpu" / "requirements.txt").read_text()
            .splitlines() if ln and not ln.startswith("#")}
    assert set(pins) == {"torch", "torchvision"}
    for name, req in pins.items():
        version = next(iter(req.specifier)).version
        assert version.endswith("+cpu") and main[name].specifier.contains(version), (name, version)
    try:
        urllib.request.urlopen(CPU_INDEX + "/torch/", timeout=10)
    except OSError as e:
        pytest.skip(f"{CPU_INDEX} cannot be reached from this machine ({e}): the +cpu wheels for Python 3.12 are "
                    "not checked here")
    pip_dry_run(tmp_path, "3.12", ["--index-url", CPU_INDEX, *[str(r) for r in pins.values()]])

