"""bench/levers.py reads a training run's folder as the trainer writes it and holds it against the shipped weight it
would replace: the best epoch on the selection slice, how far the run got, and a verdict that only a finished run
with at least 0.3 point more can earn."""
import csv
import json
import os

import pytest

from conftest import ROOT

from bench import levers

FIELDS = ["epoch", "step", "train_loss", "train_acc", "val_acc", "val_bacc", "lr", "img_per_s", "elapsed_s"]


def _run(folder, accs, epochs, **cfg):
    folder.mkdir()
    (folder / "train_config.json").write_text(json.dumps({"model": "resnet18_dda", "input_size": 80,
                                                          "epochs": epochs, "threads": 1, **cfg}))
    with open(folder / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        for i, a in enumerate(accs, start=1):
            w.writerow([i, i * 10, 1.0, 0.8, a, a - 0.2, 0.01, 40.0, 720.0 * i])
    return folder


def test_a_run_is_read_at_its_best_epoch_against_the_shipped_slice(tmp_path):
    shipped = levers.shipped_slice(ROOT / "weights", "resnet_dda")["accuracy"]
    done = _run(tmp_path / "done", [0.5, shipped + 0.004, shipped + 0.001], epochs=3)
    going = _run(tmp_path / "going", [0.5, shipped - 0.01], epochs=30)
    out = tmp_path / "levers.json"
    assert levers.main(["--run", f"a=resnet_dda:{done}", "--run", f"b=resnet_dda:{going}", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    a, b = res["rows"]
    assert a[2] == "3 of 3" and "(epoch 2;" in a[4] and a[6] == "**+0.40**" and a[7].startswith("a candidate")
    assert b[2] == "2 of 30" and b[6] == "**-1.00**" and b[7] == "running, behind so far"
    assert res["runs"]["a"]["train_hours"] == 0.6
    assert res["runs"]["b"]["by_epoch"] == [50.0, round(shipped * 100 - 1, 1)]


def test_a_finished_run_below_the_bar_is_not_shipped(tmp_path):
    shipped = levers.shipped_slice(ROOT / "weights", "resnet_dda")["accuracy"]
    run = _run(tmp_path / "r", [shipped + 0.002], epochs=1)
    r = levers.read_run(run)
    assert levers.row("x", "resnet_dda", r, {"accuracy": shipped}, 0.9)[7] == "not shipped"


def _valid(folder, accuracy, split="valid"):  # the fields of fer-evaluate's --json report that the bench reads
    (folder / "ferplus_valid.json").write_text(json.dumps({"accuracy": accuracy, "split": split,
                                                           "model": str(folder / "export")}))


def test_a_refit_ends_at_the_refitted_runs_epoch_and_is_judged_on_ferplus_valid_alone(tmp_path):
    """A refit trains on the slice: its slice figures judge nothing; it ends at the epoch the shipped run chose (35
    of DDAMFN's 40) and ships only with 0.3 point more on FER+ valid, read once into ferplus_valid.json."""
    cfg = levers.shipped_config(ROOT / "weights", "ddamfn")
    end, valid = cfg["provenance"]["best_epoch"], cfg["metrics"]["ferplus_valid"]["accuracy"]
    base = {"accuracy": cfg["metrics"]["training"]["validation"]["accuracy"]}
    going = levers.read_run(_run(tmp_path / "going", [0.9] * 3, epochs=40, refit="weights/ddamfn"))
    assert going["epochs"] == end
    cells = levers.row("refit", "ddamfn", going, base, valid)
    assert cells[2] == f"3 of {end}" and cells[4].startswith("trained on") and cells[6] == "-"
    assert cells[7].startswith("running")
    done = _run(tmp_path / "done", [0.9] * end, epochs=40, refit="weights/ddamfn")
    assert levers.row("refit", "ddamfn", levers.read_run(done), base, valid)[7].startswith("ended: read FER+ valid")
    _valid(done, valid + 0.001)
    cells = levers.row("refit", "ddamfn", levers.read_run(done), base, valid)
    assert cells[6] == "**+0.10** on FER+ valid" and cells[7].endswith(": not shipped")
    _valid(done, valid + 0.004)
    assert levers.row("refit", "ddamfn", levers.read_run(done), base, valid)[7].endswith(": ships")


def test_a_finished_run_ships_only_with_its_gain_on_the_slice_and_then_on_ferplus_valid(tmp_path):
    shipped = levers.shipped_slice(ROOT / "weights", "resnet_dda")["accuracy"]
    ahead = _run(tmp_path / "ahead", [shipped + 0.005], epochs=1)
    behind = _run(tmp_path / "behind", [shipped], epochs=1)
    for run in (ahead, behind):
        _valid(run, 0.99)
    cells = levers.row("x", "resnet_dda", levers.read_run(ahead), {"accuracy": shipped}, 0.9)
    assert cells[6] == "**+0.50** / **+9.00** on FER+ valid" and cells[7].endswith(": ships")
    assert levers.row("x", "resnet_dda", levers.read_run(behind), {"accuracy": shipped}, 0.9)[7] == "not shipped"
    _valid(ahead, 0.902)  # ahead on the slice, then 0.2 point on FER+ valid
    cells = levers.row("x", "resnet_dda", levers.read_run(ahead), {"accuracy": shipped}, 0.9)
    assert cells[7].endswith(": not shipped")


def test_a_reading_of_another_split_or_an_earlier_export_is_refused(tmp_path):
    run = _run(tmp_path / "r", [0.8], epochs=1)
    _valid(run, 0.9, split="test")
    with pytest.raises(SystemExit, match="on split 'test'"):
        levers.read_run(run)
    _valid(run, 0.9)
    (run / "export").mkdir()
    (run / "export" / "config.json").write_text("{}")
    os.utime(run / "ferplus_valid.json", (1, 1))  # read before this export was written
    with pytest.raises(SystemExit, match="older than"):
        levers.read_run(run)


def test_a_refit_reads_its_end_from_its_export_and_says_when_its_weights_cannot_be_found(tmp_path):
    run = _run(tmp_path / "r", [0.9] * 3, epochs=40, refit="nowhere/ddamfn")
    with pytest.raises(SystemExit, match="nowhere/ddamfn"):
        levers.read_run(run)
    (run / "export").mkdir()
    (run / "export" / "config.json").write_text(json.dumps({"provenance": {"refit_of": {"epoch": 3}}}))
    assert levers.read_run(run)["epochs"] == 3
