"""The trainer's optional parts, in process and checked against their formulas: SAM's two steps, the EMA the
trainer keeps and exports, class-balanced sampling."""
import json

import pytest
import torch

from fer_core.train import TrainConfig
from fer_core.train.loop import _step, prepare_training, setup
from fer_core.train.sam import SAM
from fer_core.train.schedule import epoch_order
from fixtures import write_ferplus


def test_sam_steps_from_the_worst_case_in_the_ball():
    a = torch.tensor([1.0, 4.0, 0.5])
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    sam = SAM(torch.optim.SGD([w], lr=0.1), rho=0.05)
    w0 = w.detach().clone()

    def grad_at(v):  # f(w) = sum(a * w^2)  ->  grad = 2 a w
        return 2 * a * v

    (a * w ** 2).sum().backward()
    sam.first_step()
    g0 = grad_at(w0)
    e = 0.05 * g0 / g0.norm()
    assert torch.allclose(w.detach(), w0 + e, atol=1e-6)
    w.grad = None
    (a * w ** 2).sum().backward()
    sam.second_step()
    # the base step starts from w0 with the gradient taken at w0 + e
    assert torch.allclose(w.detach(), w0 - 0.1 * grad_at(w0 + e), atol=1e-6)
    with pytest.raises(ValueError, match="rho must be > 0"):
        SAM(torch.optim.SGD([w], lr=0.1), rho=0)


def test_balanced_sampling_draws_classes_evenly_and_repeatably():
    labels = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    cfg = TrainConfig(balanced_sampling=True, seed=3)
    order = epoch_order(len(labels), 0, cfg, labels)
    share = torch.bincount(labels[order], minlength=3).float() / len(order)
    assert torch.all((share - 1 / 3).abs() < 0.05), share
    assert torch.equal(order, epoch_order(len(labels), 0, cfg, labels))
    assert not torch.equal(order, epoch_order(len(labels), 1, cfg, labels))
    plain = epoch_order(len(labels), 0, TrainConfig(seed=3), labels)
    assert torch.equal(plain.sort().values, torch.arange(len(labels)))  # without: a permutation


def test_ema_follows_its_formula_and_the_better_of_ema_and_live_weights_is_kept(tmp_path):
    root = write_ferplus(tmp_path / "ferplus", n_train=16, n_valid=8)
    cfg = TrainConfig(model="ddamfn", data=f"ferplus:{root}", input_size=48, batch_size=8, lr=0.05, ema_decay=0.5,
                      amp="off", channels_last=False, out_dir=str(tmp_path / "run"), warmup_epochs=0)
    run = setup(cfg)
    prepare_training(run)
    x = torch.randn(8, 3, 48, 48)
    t = torch.eye(len(run.train_ds.label_set))[torch.arange(8) % 4]
    snapshots = []
    for _ in range(3):
        _step(run, x, t)
        snapshots.append({k: v.detach().clone() for k, v in run.model.named_parameters()})
    ema = dict(run.ema.module.named_parameters())
    for k, p1 in snapshots[0].items():
        p2, p3 = snapshots[1][k], snapshots[2][k]
        expected = 0.5 * (0.5 * p1 + 0.5 * p2) + 0.5 * p3  # the first update copies, then ema = d*ema + (1-d)*p
        assert torch.allclose(ema[k], expected, atol=1e-6), k
    assert any(not torch.equal(snapshots[0][k], snapshots[2][k]) for k in snapshots[0])
    # evaluation scores both the average and the live weights, and best.pt holds the better one
    from fer_core.train.checkpoint import load_checkpoint
    from fer_core.train.evaluation import predict_logits
    from fer_core.train.loop import evaluate

    run.epoch_summary = {"train_loss": 1.0, "train_acc": 0.5, "img_per_s": 1.0}
    evaluate(run, 0)
    accs = {name: float((predict_logits(m, run.val_images, run.data).argmax(1).numpy() == run.val_ds.labels).mean())
            for name, m in (("ema", run.ema.module), ("live", run.model))}
    assert run.best["weights"] in accs and run.best["accuracy"] == max(accs.values())
    best = load_checkpoint(run.out / "best.pt", "cpu")["model"]
    chosen = run.ema.module if run.best["weights"] == "ema" else run.model
    assert all(torch.equal(best[k], v) for k, v in chosen.state_dict().items())


def test_the_recorded_command_rebuilds_the_run():
    """What a shipped weight records as its command (a run exported with --export-only or resumed records the
    flags that train it from the start) parses back to the same configuration."""
    import argparse

    from fer_core.options import add_arguments, build, command_line

    ap = argparse.ArgumentParser()
    add_arguments(ap, TrainConfig)
    argv = ["--model", "resnet18_dda", "--model-args", '{"dda_stages": [3, 4]}', "--input-size", "64",
            "--no-tta-flip", "--erase-p", "0.5", "--scale", "0.8,1.2", "--lr", "0.05", "--resume"]
    cfg = build(TrainConfig, ap.parse_args(argv))
    assert build(TrainConfig, ap.parse_args(command_line(cfg))) == cfg
    flags = command_line(cfg, skip=("resume",))
    assert "--resume" not in flags and flags[flags.index("--scale") + 1] == "0.8,1.2" and "--no-tta-flip" in flags


def test_score_by_name_matches_any_spelling_and_counts_a_missing_class_wrong():
    """A peer's labels ('angry', 'happy', 'sad': fer's spelling) match FER+'s by meaning; FER+'s contempt, which
    the peer lacks, counts as errors."""
    import numpy as np

    from fer_core.data.datasets import ImageDataset
    from fer_core.labels import FERPLUS
    from fer_core.train.evaluation import score_by_name

    names = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    truth = ["anger", "happiness", "sadness", "neutral", "contempt"]
    ds = ImageDataset(np.zeros((5, 48, 48), np.uint8), np.array([FERPLUS.names.index(t) for t in truth]), FERPLUS,
                      [f"{i}.png" for i in range(5)], name="toy")
    logits = torch.full((5, 7), -5.0)
    for i, t in enumerate(["angry", "happy", "sad", "neutral", "happy"]):
        logits[i, names.index(t)] = 5.0
    rep = score_by_name(names, logits, ds, missing="count_wrong")
    assert rep["n"] == 5 and rep["accuracy"] == pytest.approx(4 / 5)
    assert rep["per_class"]["contempt"]["recall"] == 0 and rep["classes_only_in_dataset"] == ["contempt"]
    left_out = score_by_name(names, logits, ds)
    assert left_out["n"] == 4 and left_out["accuracy"] == 1.0


def test_select_holds_its_images_out_of_training_and_selects_on_them(tmp_path):
    """``--select LIST``: the listed training images leave the training split and are the selection split (read
    with the selection protocol); the validation split is not read at all."""
    import os

    import numpy as np

    from fer_core.data.holdout import read_list, stratified_holdout
    from fer_core.train.setup import load_splits

    root = write_ferplus(tmp_path / "ferplus", n_train=40, n_valid=8)
    import shutil
    shutil.rmtree(root / "FER2013Valid")  # a run that selects on the slice never needs the validation split
    names = sorted(os.listdir(root / "FER2013Train"))
    listed = [n for n in names if n.endswith(("01.png", "02.png", "13.png"))]
    (tmp_path / "select.txt").write_text("# three of them\n" + "\n".join(listed) + "\n")
    cfg = TrainConfig(data=f"ferplus:{root}", protocol="probability", select=str(tmp_path / "select.txt"))
    train_ds, val_ds = load_splits(cfg)
    held = {os.path.basename(p) for p in val_ds.paths}
    assert held == set(listed) and val_ds.soft is None  # majority labels for selection
    assert not held & {os.path.basename(p) for p in train_ds.paths}
    assert len(train_ds) == 40 + 1 - 3 and train_ds.soft is not None  # the probability protocol keeps the tie
    # the shipped FER+ slice: a tenth of each class of FER+ train by top vote, names only
    path, shipped = read_list("ferplus")
    assert len(shipped) == 2840 and all(n.startswith("fer") and n.endswith(".png") for n in shipped)
    with pytest.raises(FileNotFoundError, match="no such list"):
        read_list(str(tmp_path / "missing.txt"))
    # stratified: each class in proportion, at least one of a class with two images, repeatable by seed
    labels = np.array([0] * 100 + [1] * 30 + [2] * 2 + [3])
    picked = stratified_holdout([f"{i}.png" for i in range(len(labels))], labels, 0.1, seed=1)
    counts = np.bincount(labels[[int(n[:-4]) for n in picked]], minlength=4)
    assert counts.tolist() == [10, 3, 1, 0]
    assert picked == stratified_holdout([f"{i}.png" for i in range(len(labels))], labels, 0.1, seed=1)


def test_distillation_mixes_the_teachers_probabilities_into_the_targets(tmp_path):
    import os

    import numpy as np

    from fer_core.train.distill import save_teacher
    from fer_core.train.setup import load_splits, train_targets

    root = write_ferplus(tmp_path / "ferplus", n_train=16, n_valid=8)
    cfg = TrainConfig(data=f"ferplus:{root}", protocol="probability")
    train_ds, _ = load_splits(cfg)
    names = [os.path.basename(p) for p in train_ds.paths]
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(8), len(names)).astype(np.float32)
    order = rng.permutation(len(names))  # the file's order need not be the split's: rows match by name
    teacher = save_teacher(tmp_path / "t.npz", [names[i] for i in order], list(train_ds.label_set.names),
                           probs[order], ["a@sha256:0"])
    cfg.distill, cfg.distill_weight = str(teacher), 0.25
    t = train_targets(cfg, train_ds, 8)
    assert torch.allclose(t, 0.75 * torch.from_numpy(train_ds.soft) + 0.25 * torch.from_numpy(probs), atol=1e-6)
    assert torch.allclose(t.sum(1), torch.ones(len(names)))
    cfg.limit_train = 5  # a quick run's first images keep their own teachers' rows
    few, _ = load_splits(cfg)
    assert [os.path.basename(p) for p in few.paths] == names[:5]
    assert torch.allclose(train_targets(cfg, few, 8), t[:5], atol=1e-6)
    cfg.limit_train = 0
    save_teacher(tmp_path / "short.npz", names[1:], list(train_ds.label_set.names), probs[1:], ["a"])
    cfg.distill = str(tmp_path / "short.npz")
    with pytest.raises(ValueError, match=f"no teacher probabilities for 1 training images, e.g. {names[0]}"):
        train_targets(cfg, train_ds, 8)


def test_class_balanced_loss_weights_rare_classes_by_their_effective_number(tmp_path):
    """``--class-balance beta``: class c's term of the loss is scaled by (1 - beta) / (1 - beta^n_c), n_c counted
    on the split's own votes (not the teachers'), normalised to an average weight of 1 over the samples."""
    from fer_core.train.loop import setup
    from fer_core.train.schedule import class_balanced_weights, soft_cross_entropy

    counts = torch.tensor([900.0, 90.0, 10.0])
    w = class_balanced_weights(counts, 0.999)
    raw = (1 - 0.999) / (1 - 0.999 ** counts.double())
    assert torch.allclose(w.double() / w[0].double(), raw / raw[0], rtol=1e-6)  # the formula, up to scale
    assert w[0] < 1 < w[1] < w[2] and abs(float((w * counts).sum() / counts.sum()) - 1) < 1e-6
    assert torch.allclose(class_balanced_weights(counts, 1e-9), torch.ones(3), atol=1e-6)  # beta -> 0: plain CE
    with pytest.raises(ValueError, match=r"beta must be in \(0, 1\)"):
        class_balanced_weights(counts, 1.0)
    # the loss: a sample of a class counts its class's weight times its plain term
    logits = torch.randn(4, 3)
    t = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 2]), 3).float()
    per = -(t * logits.log_softmax(1)).sum(1)
    assert torch.allclose(soft_cross_entropy(logits, t, 0.0, w), (per * w[[0, 1, 2, 2]]).mean(), atol=1e-6)
    assert torch.allclose(soft_cross_entropy(logits, t, 0.0), per.mean(), atol=1e-6)

    root = write_ferplus(tmp_path / "ferplus", n_train=24, n_valid=8)
    cfg = TrainConfig(data=f"ferplus:{root}", protocol="probability", input_size=48, batch_size=8,
                      class_balance=0.99, out_dir=str(tmp_path / "run"))
    run = setup(cfg)
    votes = torch.from_numpy(run.train_ds.soft).sum(0)
    assert torch.allclose(run.class_weights, class_balanced_weights(votes, 0.99))
    assert setup(TrainConfig(data=f"ferplus:{root}", input_size=48, batch_size=8,
                             out_dir=str(tmp_path / "plain"))).class_weights is None


def test_teach_reads_as_the_page_does_and_as_torch_does(tmp_path, test_weights):
    """``teach.py``: the teachers' probabilities read the page's way (ONNX Runtime, a fusion on the branches loaded
    before it) equal torch's eager reading, saved by image name with the teachers' sha256."""
    import numpy as np

    from fer_core.train.commands import teach

    root = write_ferplus(tmp_path / "ferplus", n_train=24, n_valid=4)
    teachers = [str(test_weights / k) for k in ("ddamfn", "resnet_dda", "fusion")]
    for engine in ("onnx", "torch"):
        teach.main(["--teachers", *teachers, "--data", f"ferplus:{root}", "--engine", engine,
                    "--out", str(tmp_path / f"{engine}.npz")])
    a, b = np.load(tmp_path / "onnx.npz"), np.load(tmp_path / "torch.npz")
    assert list(a["names"]) == list(b["names"]) and len(a["names"]) == 24 + 1  # the probability protocol keeps ties
    assert np.abs(a["probs"] - b["probs"]).max() < 1e-4 and np.allclose(a["probs"].sum(1), 1, atol=1e-5)
    assert a["probs"].std(0).max() > 1e-3  # the faces are told apart: not one row repeated
    assert [t.split("@sha256:")[0] for t in a["teachers"]] == teachers
    # called from Python, the command is recorded as its console command
    assert str(a["command"]).startswith("fer-teach --teachers ") and "--engine onnx" in str(a["command"])
    # a teacher that a registered weight pins is named by its Hub revision too (tiny models: by sha256 alone)
    from types import SimpleNamespace

    from fer_core.card import render_model_card
    from fer_core.pretrained import PRETRAINED
    from fer_core.train.export import _teachers

    shipped = SimpleNamespace(pretrained_cfg={"files": {"model.safetensors": {"sha256": PRETRAINED["ddamfn"].sha256}}})
    assert teach.teacher_id("weights/ddamfn", shipped) == (f"weights/ddamfn@sha256:{PRETRAINED['ddamfn'].sha256[:16]} "
                                                           f"({PRETRAINED['ddamfn'].hf_hub_id}@{PRETRAINED['ddamfn'].revision})")
    assert "(" not in a["teachers"][0]
    # the students' cards say what made the file
    d = _teachers(str(tmp_path / "onnx.npz"))
    assert d["made_by"] == str(a["command"]) and d["teachers"] == list(a["teachers"])
    config = json.loads((test_weights / "ddamfn" / "config.json").read_text())
    config["provenance"] = {**config.get("provenance", {}), "distillation": {**d, "weight": 0.5}}
    card = render_model_card(config)
    assert f"the file made by `{a['command']}`" in card


def test_resume_refuses_another_recipe_or_other_data(tmp_path):
    """``--resume`` continues a run only with its own recipe and data: threads or a moved file may change, the
    schedule or the teachers' probabilities may not (they would change what the run learns half-way)."""
    import os
    from dataclasses import replace

    import numpy as np

    from fer_core.train.distill import save_teacher
    from fer_core.train.loop import checkpoint, prepare_training, resume, setup
    from fer_core.train.setup import load_splits

    root = write_ferplus(tmp_path / "ferplus", n_train=16, n_valid=8)
    base = TrainConfig(data=f"ferplus:{root}", protocol="probability", input_size=48, batch_size=8, epochs=3,
                       out_dir=str(tmp_path / "run"))
    ds, _ = load_splits(base)
    names = [os.path.basename(p) for p in ds.paths]
    probs = np.random.default_rng(0).dirichlet(np.ones(8), len(names)).astype(np.float32)
    save_teacher(tmp_path / "t.npz", names, list(ds.label_set.names), probs, ["a"])
    cfg = replace(base, distill=str(tmp_path / "t.npz"))

    def resumed(**changes):
        run = setup(replace(cfg, resume=True, **changes))
        prepare_training(run)
        resume(run)
        return run

    first = setup(cfg)
    prepare_training(first)
    checkpoint(first, 1, 2)
    # how it runs and where its files are may change (the teachers' file moved, the same probabilities)
    (tmp_path / "moved").mkdir()
    os.replace(tmp_path / "t.npz", tmp_path / "moved" / "t.npz")
    run = resumed(threads=1, save_every=3, distill=str(tmp_path / "moved" / "t.npz"))
    assert (run.epoch, run.step) == (1, 2)
    # what it learns may not
    with pytest.raises(ValueError, match=r"--epochs: 3 then, 5 now; --lr: 0\.1 then, 0\.01 now\. Resume with"):
        resumed(epochs=5, lr=0.01, distill=str(tmp_path / "moved" / "t.npz"))
    save_teacher(tmp_path / "other.npz", names, list(ds.label_set.names), probs[::-1].copy(), ["b"])
    with pytest.raises(ValueError, match="the teachers' probabilities with --distill"):
        resumed(distill=str(tmp_path / "other.npz"))
    # a checkpoint from before the recipe and the data were recorded resumes as it is
    last = tmp_path / "run" / "last.pt"
    ck = torch.load(last, weights_only=False)
    del ck["config"], ck["data_digest"]
    torch.save(ck, last)
    assert resumed(distill=str(tmp_path / "other.npz")).epoch == 1
