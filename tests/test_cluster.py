"""fer-predict --cluster on a real local Ray cluster (two CPUs, as in CI): the same records as one process (images,
an unreadable file, a video with an undecodable frame; --every, --maps, --balanced, --csv), a worker killed in the
middle of a video losing nothing and repeating nothing, GPUs asked for as Ray wants them, and without Ray an error
that names the extra."""
import ast
import csv
import json
import os
import shutil
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
import ray

from conftest import ROOT, SHARED
from test_video import damage_frame
from fer_core.images import load_image
from fer_core.predict import cli
from fer_core.predict.cluster import ClusterError, Spec, gpus_needed, map_kwargs, once, pool_size, stream
from fer_core.predict.cluster import worker_config
from fer_core.predict.worker import Output, Worker

HOPPER, ASTRONAUT = SHARED / "photos" / "grace_hopper.jpg", SHARED / "photos" / "astronaut.png"
YUNET = SHARED / "models" / "face_detection_yunet.onnx"
MODELS = ("ddamfn", "resnet_dda", "fusion")
ENV = {"HF_HUB_OFFLINE": "1", "FER_YUNET_PATH": str(YUNET), "RAY_USAGE_STATS_ENABLED": "0"}


def _clip(path, frames, people=2, damaged=None, fps=10):
    """One or two people drifting across a still background (MJPG); frame ``damaged`` undecodable."""
    faces = [cv2.resize(load_image(p), (120, 142)) for p in (HOPPER, ASTRONAUT)[:people]]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (400, 240))
    for i in range(frames):
        canvas = np.full((240, 400, 3), 90, np.uint8)
        for j, face in enumerate(faces):
            x = 20 + 3 * i if j == 0 else 260 - 2 * i
            canvas[40 + 20 * j:182 + 20 * j, x:x + 120] = face
        wr.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    wr.release()
    if damaged is not None:
        damage_frame(path, damaged)
    return path


@pytest.fixture(scope="module")
def weights(test_weights, module_tmp):
    """The untrained test weights with a balanced reading recorded (so that --balanced changes the numbers)."""
    root = module_tmp / "weights"
    prior = [0.35, 0.27, 0.12, 0.12, 0.09, 0.007, 0.024, 0.006]
    for key in MODELS:
        shutil.copytree(test_weights / key, root / key)
        cfg = json.loads((root / key / "config.json").read_text())
        cfg["balanced"] = {"tau": 1.0, "prior": prior}
        (root / key / "config.json").write_text(json.dumps(cfg))
    return root


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster of two CPUs for the module, its workers started with the tests' environment."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in ENV.items():
            mp.setenv(k, v)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 object_store_memory=256 << 20)
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def batch(module_tmp):
    """Two photos, a file that is not an image, a clip of two people with an undecodable frame."""
    root = module_tmp / "batch"
    root.mkdir()
    shutil.copy(HOPPER, root / "a_hopper.jpg")
    shutil.copy(ASTRONAUT, root / "b_astronaut.png")
    (root / "c_broken.jpg").write_bytes(b"\xff\xd8 not really")
    _clip(root / "d_two.avi", frames=9, damaged=4)
    return root


def _args(weights, batch, out, *more):
    """The batch's flags; one torch thread in one process, as in a worker of one CPU: the untrained weights' attention
    maps are near-constant before they are scaled to [0, 1], so sums ordered for 1 or 2 threads move their pixels."""
    return [str(batch), "--every", "2", "--maps", "--balanced", "--detector", "yunet", "--json", str(out / "r.json"),
            "--csv", str(out / "r.csv"), "--threads", "1", *[f"--weights={k}={weights / k}" for k in MODELS], *more]


@pytest.fixture(scope="module")
def one_process(weights, batch, module_tmp):
    """The batch read in one process (this one): exit status, records, CSV rows, the folder of the maps."""
    out = module_tmp / "one"
    out.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in ENV.items():
            mp.setenv(k, v)
        rc = cli.main(_args(weights, batch, out))
    return rc, json.loads((out / "r.json").read_text()), _rows(out / "r.csv"), out / "r"


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def same_records(a, b, tol=1e-3):
    """The same records: files, frames, errors, faces (boxes, tracks), each model's top label, probabilities
    within ``tol`` (the timings aside)."""
    assert [(r["file"], r.get("frame"), "error" in r) for r in a] == [(r["file"], r.get("frame"), "error" in r)
                                                                         for r in b]
    for ra, rb in zip(a, b):
        assert ra.get("error") == rb.get("error") and len(ra.get("faces", [])) == len(rb.get("faces", []))
        for fa, fb in zip(ra.get("faces", []), rb.get("faces", [])):
            assert np.allclose(fa["box"], fb["box"], atol=tol) and fa.get("track") == fb.get("track")
            assert list(fa["models"]) == list(fb["models"]) == list(MODELS)
            for key, ma in fa["models"].items():
                mb = fb["models"][key]
                assert ma["top"] == mb["top"] and set(ma["probs"]) == set(mb["probs"])
                assert max(abs(ma["probs"][c] - mb["probs"][c]) for c in ma["probs"]) <= tol


def same_rows(a, b, tol=1e-3):
    assert len(a) == len(b) and a[0] == b[0]
    for ra, rb in zip(a[1:], b[1:]):
        assert ra[:6] == rb[:6]  # file, frame, time, face, model, top
        assert np.allclose([float(v) for v in ra[6:7] + ra[8:]], [float(v) for v in rb[6:7] + rb[8:]], atol=tol)


def test_the_cluster_writes_the_records_of_one_process(cluster, weights, batch, one_process, tmp_path, capfd):
    rc1, recs1, rows1, maps1 = one_process
    assert rc1 == 1 and len(recs1) == 2 + 1 + 5  # two photos, the broken file, five analysed frames
    rc = cli.main(_args(weights, batch, tmp_path, "--cluster", cluster, "--workers", "2"))
    err = capfd.readouterr().err
    assert rc == 1 and "c_broken.jpg" in err and "d_two.avi frame 4" in err  # named; the rest written
    assert "read 3 of 4 files: 2 images, 1 video (5 frames analysed, 1 undecodable)" in err and "2 Ray workers" in err
    recs = json.loads((tmp_path / "r.json").read_text())
    same_records(recs1, recs)
    same_rows(rows1, _rows(tmp_path / "r.csv"))
    assert {f["track"] for r in recs if "faces" in r and r["frame"] is not None for f in r["faces"]} == {1, 2}
    # --maps: the workers send the PNGs back; the driver writes them beside its JSON, their paths in the records
    photos = [r for r in recs if r.get("frame", 0) is None]
    assert [sorted(r["maps"]) for r in photos] == [sorted(r["maps"]) for r in recs1 if r.get("frame", 0) is None]
    for r in photos:
        assert r["maps"] and all(p.startswith(str(tmp_path / "r")) for p in r["maps"].values())
        for name, path in r["maps"].items():
            here = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            there = cv2.imread(str(maps1 / os.path.basename(path)), cv2.IMREAD_UNCHANGED)
            assert here.shape == there.shape == (224, 224) and np.abs(here.astype(int) - there).max() <= 1


def test_fer_predict_cluster_local_starts_a_cluster_and_gives_the_same_records(weights, batch, one_process,
                                                                               tmp_path):
    """The command as a user types it: its own local cluster of two workers, started and stopped."""
    env = {**os.environ, **ENV}
    r = subprocess.run([sys.executable, "-m", "fer_core.predict", *_args(weights, batch, tmp_path),
                        "--cluster", "local", "--workers", "2"], cwd=ROOT, capture_output=True, text=True, env=env,
                       timeout=400)
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""  # Ray's own messages stay off stdout
    assert "c_broken.jpg" in r.stderr and "on 2 Ray workers" in r.stderr
    same_records(one_process[1], json.loads((tmp_path / "r.json").read_text()))
    same_rows(one_process[2], _rows(tmp_path / "r.csv"))


def test_a_worker_killed_in_the_middle_of_a_video_loses_nothing_and_repeats_nothing(cluster, weights, tmp_path):
    clip = _clip(tmp_path / "long.avi", frames=40, people=1)
    files = [HOPPER, clip, ASTRONAUT]
    a = cli.parser().parse_args([*map(str, files), "--every", "1", "--detector", "yunet",
                                 *[f"--weights={k}={weights / k}" for k in MODELS]])
    spec = Spec(cluster, 2)
    killed, outputs = None, []
    for o in stream(files, spec, 2, worker_config(a, spec)):
        outputs.append(o)
        if o.index == 1 and killed is None:  # the clip's first record: its worker is still reading the clip
            killed = int(o.worker.rsplit(":", 1)[1])
            os.kill(killed, signal.SIGKILL)
    assert [(o.index, o.seq) for o in outputs] == [(0, 0), *[(1, k) for k in range(40)], (2, 0)]
    video = [o for o in outputs if o.index == 1]
    assert [o.record["frame"] for o in video] == list(range(40))
    workers = [o.worker for o in video]
    assert workers[0].endswith(f":{killed}") and len(set(workers)) == 2  # the rest came from the restarted worker
    # and the clip's records are those one process makes of it
    from fer_core.predict import Analyzer
    from fer_core.predict.batch import ReadOptions, read_input

    analyzer = Analyzer.from_pretrained({k: weights / k for k in MODELS}, detector="yunet", device="cpu")
    here = [rec for rec, _ in read_input(analyzer, clip, ReadOptions(every=1))]
    same_records(here, [o.record for o in video])
    assert {f["track"] for rec in here for f in rec["faces"]} == {1}


def test_each_record_is_kept_once_when_a_retry_repeats_outputs():
    def out(i, s):
        return Output(i, s, {"file": f"{i}", "frame": s}, None, ("neutral",))

    replayed = [out(0, 0), out(1, 0), out(1, 1), out(1, 0), out(1, 1), out(1, 2), out(2, 0), out(2, 0)]
    assert [(o.index, o.seq) for o in once(replayed)] == [(0, 0), (1, 0), (1, 1), (1, 2), (2, 0)]


def test_gpus_are_asked_of_ray_as_it_wants_them(cluster, weights, batch, tmp_path, capfd):
    a = cli.parser().parse_args(["x.jpg", *[f"--weights={k}={weights / k}" for k in MODELS]])
    gpu, cpu = Spec("auto", 3, 2, 0.5), Spec("auto", 2)
    kw = map_kwargs(gpu, 3, worker_config(a, gpu))
    assert kw["num_gpus"] == 0.5 and kw["num_cpus"] == 2 and type(kw["batch_size"]) is int
    assert isinstance(kw["compute"], ray.data.ActorPoolStrategy) and kw["compute"].max_size == 3
    assert kw["fn_constructor_args"][0]["device"] == "cuda" and kw["fn_constructor_args"][0]["threads"] == 2
    kw = map_kwargs(cpu, 2, worker_config(a, cpu))
    assert "num_gpus" not in kw and kw["fn_constructor_args"][0]["device"] == "cpu"  # the CPU path: no GPU asked
    assert (gpus_needed(3, 0.5), gpus_needed(2, 0.4), gpus_needed(2, 2), gpus_needed(4, 0)) == (2, 1, 4, 0)
    assert pool_size(Spec("local", None, 1, 0.5), {"CPU": 16, "GPU": 2}) == 4
    with pytest.raises(ClusterError, match="need 3 CPUs"):
        pool_size(Spec("local", 3), {"CPU": 2})
    with pytest.raises(ClusterError, match="whole number"):
        Spec("auto", 1, 1, 1.5)
    # this cluster has no GPU: a clear error before anything runs, nothing written
    rc = cli.main([str(batch / "a_hopper.jpg"), "--json", str(tmp_path / "r.json"), "--cluster", cluster,
                   "--gpus-per-worker", "0.5"])
    assert rc == 2 and "--gpus-per-worker 0.5: the cluster has no GPU" in capfd.readouterr().err
    assert not (tmp_path / "r.json").exists()
    # and a worker given a GPU puts its models on cuda: here, with no CUDA, it says so
    with pytest.raises(ValueError, match="no CUDA device"):
        Worker(worker_config(a, gpu))


def test_without_ray_the_error_names_the_extra(monkeypatch, tmp_path, capfd):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: `import ray` fails
    rc = cli.main([str(HOPPER), "--json", str(tmp_path / "r.json"), "--cluster", "local"])
    err = capfd.readouterr().err
    assert rc == 2 and "the 'cluster' extra: pip install -e '.[cluster]'" in err and "requirements-cluster.txt" in err


def test_nothing_outside_the_cluster_path_imports_ray():
    """Ray is imported only by the cluster driver, when --cluster is asked for: no other module of the package, the
    page or the app imports it, at the top or in a function (the page and the Space never install it)."""
    driver = ROOT / "fer_core" / "predict" / "cluster.py"
    paths = [*(ROOT / "fer_core").rglob("*.py"), *(ROOT / "demo").rglob("*.py"), ROOT / "app.py"]
    found = [f"{p.relative_to(ROOT)}: {ast.unparse(n)}" for p in paths if p != driver
             for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom)) and any(
                 (a.name if isinstance(n, ast.Import) else n.module or "").split(".")[0] == "ray" for a in n.names)]
    assert found == []
    assert "import ray" in driver.read_text()  # the check looks where Ray is imported
    assert "ray" not in (ROOT / "requirements.txt").read_text().lower()
