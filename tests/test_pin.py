"""``train_scripts/pin.py``: the shipped folders against their pins, and the registry rewritten where they changed."""
import json
from dataclasses import asdict

import pytest

from conftest import ROOT

from fer_core.commands import pin

from fer_core.pretrained import PRETRAINED  # noqa: E402
from fer_core.weights import sha256_file  # noqa: E402


def test_pin_finds_what_changed_and_rewrites_only_that(tmp_path, capsys):
    assert pin.main(["--check"]) == []  # the shipped weights match their pins
    weights = tmp_path / "weights"
    for key in ("ddamfn", "resnet_dda", "fusion"):
        (weights / key).mkdir(parents=True)
        (weights / key / "model.safetensors").symlink_to(ROOT / "weights" / key / "model.safetensors")
        (weights / key / "config.json").write_bytes((ROOT / "weights" / key / "config.json").read_bytes())
    config = json.loads((weights / "ddamfn" / "config.json").read_text())
    config["balanced"] = {**config.get("balanced", {}), "tau": 0.123}  # as fit_balance.py would change it
    (weights / "ddamfn" / "config.json").write_text(json.dumps(config, indent=2))
    with pytest.raises(SystemExit) as e:
        pin.main(["--check", "--weights-dir", str(weights)])
    assert e.value.code == 1 and "not as pinned: ddamfn: config_sha256 changed" in capsys.readouterr().out

    registry = tmp_path / "pretrained.py"
    registry.write_text((ROOT / "fer_core" / "pretrained.py").read_text())
    before = registry.read_text()
    found = pin.main(["--weights-dir", str(weights), "--registry", str(registry)])
    assert [c.name for c in found] == ["ddamfn"]
    old, new = PRETRAINED["ddamfn"], pin.read_registry(registry)
    assert new["ddamfn"].config_sha256 == sha256_file(weights / "ddamfn" / "config.json") != old.config_sha256
    assert new["ddamfn"].sha256 == old.sha256 and new["ddamfn"].revision == pin.next_revision(old.revision)
    assert new["ddamfn.ferplus"] == new["ddamfn"]  # aliases follow
    for key in ("resnet_dda", "fusion"):
        assert asdict(new[key]) == asdict(PRETRAINED[key])
    # nothing else in the file moved
    changed = [(a, b) for a, b in zip(before.splitlines(), registry.read_text().splitlines()) if a != b]
    assert len(changed) == 2 and all("ddamfn" in a or old.config_sha256 in a for a, _ in changed), changed
    # an explicit revision (the commit publish.py printed)
    assert pin.main(["--weights-dir", str(weights), "--registry", str(registry)]) == []  # now as pinned
    pin.main(["--weights-dir", str(weights), "--registry", str(registry), "--revision", "fusion=" + "a" * 40])
    again = pin.read_registry(registry)
    assert again["fusion"].revision == "a" * 40 and again["fusion"].sha256 == PRETRAINED["fusion"].sha256
    assert again["ddamfn"].revision == new["ddamfn"].revision
    with pytest.raises(SystemExit, match="no registered weight"):
        pin.main(["--registry", str(registry), "--revision", "vgg=v1"])
