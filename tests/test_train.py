"""The trainer for real, in subprocesses: a run killed with SIGKILL and resumed ends where an uninterrupted run
ends; DDP on CPU with two gloo processes; evaluation JSON."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT
from fixtures import write_class_folders, write_ferplus

TRAIN = [sys.executable, str(ROOT / "train_scripts/train.py")]
COMMON = ["--model", "ddamfn", "--input-size", "48", "--epochs", "2", "--batch-size", "8", "--lr", "0.02",
          "--warmup-epochs", "0.5", "--no-tta-flip", "--save-every", "2", "--log-every", "1", "--erase-p", "0.5"]


def _env(threads="2"):
    return dict(os.environ, OMP_NUM_THREADS=threads, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")


@pytest.fixture(scope="module")
def ferplus(tmp_path_factory):
    return write_ferplus(tmp_path_factory.mktemp("ferplus"), n_train=48, n_valid=16)


def _run(args, threads="2", **kw):
    r = subprocess.run(TRAIN + args, capture_output=True, text=True, env=_env(threads), timeout=600, **kw)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_resume_after_sigkill_matches_uninterrupted_run(ferplus, tmp_path):
    # the uninterrupted run and the one to kill side by side, one thread each (so every run of the test does the
    # same arithmetic), then the resume
    data = ["--data", f"ferplus:{ferplus}"]
    straight = subprocess.Popen(TRAIN + COMMON + data + ["--out", str(tmp_path / "straight")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env("1"))

    out = tmp_path / "killed"
    p = subprocess.Popen(TRAIN + COMMON + data + ["--out", str(out)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=_env("1"))
    marker = out / "last.json"
    while p.poll() is None:  # (pytest-timeout guards a hang)
        where = json.loads(marker.read_text()) if marker.exists() else {}
        if where.get("epoch") == 1 and where.get("step", 0) > 0:
            break  # a checkpoint from the middle of the second epoch (after step 2 or 4 of 6): two chances
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be killed"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (out / "export").exists()
    resumed_from = json.loads(marker.read_text())
    assert resumed_from["epoch"] == 1 and 0 < resumed_from["step"] < 6  # 48 images / 8 = 6 steps an epoch
    assert straight.wait(timeout=600) == 0, straight.stderr.read()[-3000:]
    r = _run(COMMON + data + ["--out", str(out), "--resume"], threads="1")
    assert f"resumed from {out / 'last.pt'}: epoch 1, step {resumed_from['step']}" in r.stdout

    a = load_file(str(tmp_path / "straight" / "export" / "model.safetensors"))
    b = load_file(str(out / "export" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    rows = lambda d: [(r["epoch"], r["train_loss"], r["val_acc"]) for r in  # noqa: E731
                      __import__("csv").DictReader(open(d / "metrics.csv"))]
    assert rows(tmp_path / "straight") == rows(out) and len(rows(out)) == 2
    for f in ("curves.png", "confusion.png", "val_report.json", "best.pt", "tb"):
        assert (out / f).exists(), f
    cfg = json.loads((out / "export" / "config.json").read_text())
    prov = cfg["provenance"]
    assert prov["seed"] == 0 and prov["epochs"] == 2 and prov["init"].startswith("from scratch")
    # the command that trains the run from the start; the resuming invocation beside it
    assert "--resume" not in prov["command"] and "--epochs 2" in prov["command"] and "--resume" in prov["exported_by"]
    assert prov["commit"] and cfg["temperature"] > 0
    elapsed = [float(r["elapsed_s"]) for r in __import__("csv").DictReader(open(out / "metrics.csv"))]
    assert elapsed[0] < elapsed[1], "wall time restarted at the resume"  # it counts across the stop
    assert prov["epochs_completed"] == 2 and 0 < prov["wall_time_s"] <= prov["run_wall_time_s"] == elapsed[-1]

    # --export-only exports the run as it stands (here finished) without training
    (out / "export" / "config.json").unlink()
    r = _run(COMMON + data + ["--out", str(out), "--export-only"])
    assert "epoch 1/2" not in r.stderr and (out / "export" / "config.json").exists()
    again = load_file(str(out / "export" / "model.safetensors"))
    assert all(torch.equal(a[k], again[k]) for k in a)
    val = cfg["metrics"]["validation"]
    assert set(val) >= {"accuracy", "balanced_accuracy", "ece", "recall", "confusion_matrix"}
    assert val["n"] == 16 and sum(map(sum, val["confusion_matrix"])) == 16


def test_ddp_on_cpu_with_two_gloo_processes(ferplus, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "train_scripts/train.py"), *COMMON, "--epochs", "1", "--data", f"ferplus:{ferplus}",
           "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env("1"), timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("epoch 1: loss") == 1  # only rank 0 reports
    assert (out / "export" / "model.safetensors").exists()
    rows = list(__import__("csv").DictReader(open(out / "metrics.csv")))
    # global batch 8 = 4 per rank x 2 ranks: 48 images make 6 steps, each rank taking its own 4 images
    assert len(rows) == 1 and rows[0]["step"] == "6"
    assert "world size 2" in r.stdout


def test_evaluate_json_on_folder_and_ferplus(ferplus, test_weights, tmp_path):
    model = test_weights / "ddamfn"  # FER+'s eight classes
    folder = write_class_folders(tmp_path / "faces", ["happy", "Angry", "sad"], n_per_class=3)
    report = tmp_path / "eval" / "folder.json"
    r = subprocess.run([sys.executable, str(ROOT / "train_scripts/evaluate.py"), "--model", str(model),
                        "--dataset", "folder", "--data-root", str(folder), "--json", str(report)],
                       capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads(report.read_text())
    assert rep["n"] == 9 and rep["labels"] == ["happiness", "sadness", "anger"]
    assert rep["classes_only_in_model"] == ["neutral", "surprise", "disgust", "fear", "contempt"]
    cm = rep["confusion_matrix"]  # over the 3 shared classes: the model's other classes are never predicted
    assert len(cm) == 3 and [sum(row) for row in cm] == [3, 3, 3]
    hits = [cm[i][i] for i in range(3)]
    assert rep["accuracy"] == pytest.approx(sum(hits) / 9)
    assert rep["balanced_accuracy"] == pytest.approx(sum(h / 3 for h in hits) / 3)
    for i, name in enumerate(rep["labels"]):
        assert rep["per_class"][name]["recall"] == pytest.approx(hits[i] / 3) and rep["per_class"][name]["support"] == 3
    assert 0 <= rep["ece"] <= 1
    assert report.with_suffix(".confusion.png").exists()
    r = subprocess.run([sys.executable, str(ROOT / "train_scripts/evaluate.py"), "--model", str(model),
                        "--dataset", "ferplus", "--data-root", str(ferplus), "--split", "valid", "--json",
                        str(tmp_path / "fp.json")], capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((tmp_path / "fp.json").read_text())
    assert rep["n"] == 16 and rep["classes_only_in_model"] == [] and rep["classes_only_in_dataset"] == []


@pytest.mark.parametrize("mode", ["attention", "late"])
def test_fusion_trains_only_its_own_part(ferplus, test_weights, tmp_path, mode):
    out = tmp_path / f"fusion_{mode}"
    _run(["--model", "fusion", "--fusion-mode", mode, "--branch-a", str(test_weights / "ddamfn"), "--branch-b",
          str(test_weights / "resnet_dda"), "--data", f"ferplus:{ferplus}", "--epochs", "1", "--batch-size", "8",
          "--lr", "0.05", "--no-tta-flip", "--out", str(out)])
    fused = load_file(str(out / "export" / "model.safetensors"))
    for prefix, name in (("branch_a.", "ddamfn"), ("branch_b.", "resnet_dda")):
        branch = load_file(str(test_weights / name / "model.safetensors"))
        assert all(torch.equal(fused[prefix + k], v) for k, v in branch.items()), f"{name} changed"
    cfg = json.loads((out / "export" / "config.json").read_text())
    assert cfg["model_args"]["mode"] == mode and "frozen" in cfg["provenance"]["init"]
    if mode == "attention":
        assert not torch.equal(fused["head.weight"], torch.zeros_like(fused["head.weight"]))  # it learned


def test_warm_start_records_what_it_started_from(ferplus, tmp_path):
    from fer_core.card import render_model_card

    slim = ["--model", "resnet18_dda", "--model-args", '{"dda_stages": [3, 4], "dda_width": 32, "c_mid": 32}',
            "--input-size", "48", "--epochs", "1", "--batch-size", "8", "--lr", "0.02", "--warmup-epochs", "0",
            "--no-tta-flip", "--data", f"ferplus:{ferplus}"]
    _run(slim + ["--out", str(tmp_path / "first")])
    first = json.loads((tmp_path / "first" / "export" / "config.json").read_text())
    _run(slim + ["--init-from", str(tmp_path / "first" / "export"), "--lr", "0.002", "--out", str(tmp_path / "then")])
    then = json.loads((tmp_path / "then" / "export" / "config.json").read_text())
    init = then["provenance"]["init_provenance"]
    assert "warm start from" in then["provenance"]["init"]
    assert init["files"] == first["files"] and init["provenance"] == first["provenance"]
    assert init["selection_accuracy"] == first["metrics"]["validation"]["accuracy"]
    card = render_model_card(then)
    total = first["provenance"]["wall_time_s"] + then["provenance"]["wall_time_s"]
    assert f"model.safetensors sha256 `{first['files']['model.safetensors']['sha256'][:12]}" in card
    assert first["provenance"]["command"] in card and "in all" in card and total > 0
    # weights of another shape are refused before any training
    r = subprocess.run(TRAIN + slim[:2] + ["--model-args", '{"dda_stages": [4]}'] + slim[4:]
                       + ["--init-from", str(tmp_path / "first" / "export"), "--out", str(tmp_path / "bad")],
                       capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode != 0 and "pass the same --model, --model-args and --input-size" in r.stderr


def test_selection_breaks_accuracy_ties_on_balanced_accuracy():
    from fer_core.train.loop import better

    best = {"accuracy": 0.8358, "balanced_accuracy": 0.6051, "epoch": 9}
    assert better({"accuracy": 0.8358, "balanced_accuracy": 0.6212}, best)
    assert not better({"accuracy": 0.8358, "balanced_accuracy": 0.6000}, best)
    assert not better({"accuracy": 0.8355, "balanced_accuracy": 0.9000}, best)
    assert better({"accuracy": 0.8361, "balanced_accuracy": 0.1000}, best)
    # a checkpoint written before balanced accuracy was kept, and the starting value
    assert better({"accuracy": 0.5, "balanced_accuracy": 0.2}, {"accuracy": 0.5, "epoch": 3})
    assert better({"accuracy": 0.0, "balanced_accuracy": 0.0}, {"accuracy": -1.0, "epoch": -1})


def test_a_diverging_run_stops_with_a_clear_error_and_saves_nothing_non_finite(ferplus, tmp_path):
    out = tmp_path / "diverged"
    r = subprocess.run(TRAIN + COMMON + ["--lr", "1e30", "--data", f"ferplus:{ferplus}", "--out", str(out)],
                       capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode != 0 and "TrainingDiverged" in r.stderr and "last finite state" in r.stderr, r.stderr[-2000:]
    assert not (out / "export").exists()
    from fer_core.weights import nonfinite_tensors
    for name in ("last.pt", "best.pt"):
        if (out / name).exists():
            assert not nonfinite_tensors(torch.load(out / name, map_location="cpu", weights_only=False)["model"])


def test_refit_trains_on_the_slice_too_and_keeps_the_chosen_epoch_and_temperature(ferplus, tmp_path):
    """``--refit WEIGHTS``: the chosen run's flags again, its selection slice folded into training; the run stops
    at the epoch that run chose and keeps its temperature and balanced setting, recording what it refits."""
    names = sorted(p.name for p in (ferplus / "FER2013Train").glob("*.png"))
    (tmp_path / "slice.txt").write_text("\n".join(names[:6]) + "\n")
    slim = ["--model", "resnet18_dda", "--model-args", '{"dda_stages": [3, 4], "dda_width": 32, "c_mid": 32}',
            "--input-size", "48", "--epochs", "3", "--batch-size", "8", "--lr", "0.02", "--warmup-epochs", "0",
            "--no-tta-flip", "--data", f"ferplus:{ferplus}", "--select", str(tmp_path / "slice.txt"),
            "--ema-decay", "0.9"]
    first = _run(slim + ["--out", str(tmp_path / "chosen")])
    chosen_dir = tmp_path / "chosen" / "export"
    chosen = json.loads((chosen_dir / "config.json").read_text())
    chosen["balanced"] = {"tau": 0.5, "prior": [0.125] * 8, "chosen_on": "a test"}
    (chosen_dir / "config.json").write_text(json.dumps(chosen))
    r = _run(slim + ["--refit", str(chosen_dir), "--out", str(tmp_path / "refit")])
    counts = [[int(n) for n in re.findall(r"(\d+) images", out.stdout + out.stderr)[:2]] for out in (first, r)]
    assert counts[1] == [counts[0][0] + counts[0][1], counts[0][1]]  # train, slice: the slice trains too
    refit = json.loads((tmp_path / "refit" / "export" / "config.json").read_text())
    prov = refit["provenance"]
    assert prov["best_epoch"] == chosen["provenance"]["best_epoch"] == prov["epochs_completed"]
    assert refit["temperature"] == chosen["temperature"] and refit["balanced"] == chosen["balanced"]
    assert prov["refit_of"]["epoch"] == prov["best_epoch"] and "included" in prov["train_split"]
    assert "validation" not in refit["metrics"]  # the slice was training data
    # another schedule than the chosen run's is refused before any training
    bad = subprocess.run(TRAIN + slim[:7] + ["4"] + slim[8:] + ["--refit", str(chosen_dir), "--out",
                                                                 str(tmp_path / "x")],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert bad.returncode != 0 and "--epochs 3" in bad.stderr

