"""bench/levers.py reads a training run's folder as the trainer writes it and holds it against the shipped weight it
would replace: the best epoch on the selection slice, how far the run got, and a verdict that only a finished run
with at least 0.3 point more can earn."""
import csv
import json

from conftest import ROOT

from bench import levers

FIELDS = ["epoch", "step", "train_loss", "train_acc", "val_acc", "val_bacc", "lr", "img_per_s", "elapsed_s"]


def _run(folder, accs, epochs):
    folder.mkdir()
    (folder / "train_config.json").write_text(json.dumps({"model": "resnet18_dda", "input_size": 80,
                                                          "epochs": epochs, "threads": 1}))
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
    assert res["runs"]["a"]["train_hours"] == 0.6 and res["runs"]["b"]["by_epoch"] == [50.0, round(shipped * 100 - 1, 1)]


def test_a_finished_run_below_the_bar_is_not_shipped(tmp_path):
    shipped = levers.shipped_slice(ROOT / "weights", "resnet_dda")["accuracy"]
    run = _run(tmp_path / "r", [shipped + 0.002], epochs=1)
    r = levers.read_run(run)
    assert levers.row("x", "resnet_dda", r, {"accuracy": shipped})[7] == "not shipped"
