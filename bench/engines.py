"""Inference engines against each other, in one run: eager torch (the baseline), ONNX Runtime, and torch.compile,
per shipped model (one face with its mirror image: a batch of two, as the page reads it); the whole page path
for a one-face photo without maps; where the time of an eager forward goes (torch.profiler, per operator, at
batch 1 and 2); and, with --accuracy, each engine's FER+ valid accuracy.

    python -m bench.engines --json out.json [--accuracy] [--threads 2]

Every figure is a p50 over --runs; the ratios are against eager torch measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from bench.timing import add_page_options, p50
from fer_core.data import dataset_root
from fer_core.predict import MODEL_KEYS, Analyzer
from fer_core.runtime import onnx_reader

ROOT = Path(__file__).resolve().parent.parent


def flops(model, x) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops()


def profile(model, x, top: int = 8) -> list[dict]:
    """The operators that take most of an eager forward (self CPU time), as shares of the total."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch.inference_mode():
        for _ in range(3):
            model(x)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(10):
                model(x)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: -e.self_cpu_time_total)
    return [{"op": e.key, "share": round(e.self_cpu_time_total / total, 3), "calls_per_forward": e.count // 10}
            for e in events[:top]]


def backward_precisions(model, size: int, runs: int) -> dict:
    """What the maps pay beyond reading: a forward and a backward to the input (the face and its mirror image, the
    gradient of the face's first logit), in float32 and under bfloat16 autocast (this CPU has AVX-512 BF16)."""
    x = torch.randn(2, 3, size, size, requires_grad=True)
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)

    def step():
        model(x)[:1, 0].sum().backward()

    out = {}
    try:
        for name, ctx in (("fp32", torch.autocast("cpu", enabled=False)),
                          ("bf16", torch.autocast("cpu", dtype=torch.bfloat16))):
            with ctx:
                out[f"forward_backward_{name}_b2_ms"] = p50(step, runs)
    finally:
        for p, g in zip(model.parameters(), frozen):
            p.requires_grad_(g)
    return out


class _SplitMixConv(torch.nn.Module):
    """A MixConv as it trains, in any mode: a split, one depthwise conv per group, a concatenation."""

    def __init__(self, mix):
        super().__init__()
        self.splits, self.convs = mix.splits, mix.mixed_depthwise_conv

    def forward(self, x):
        return torch.cat([conv(p) for conv, p in zip(self.convs, torch.split(x, self.splits, dim=1))], dim=1)


def mixconv_ablation(model, size: int, runs: int) -> dict:
    """DDAMFN's MixConv as it trains (a split, one depthwise conv per group, a concatenation) against as it reads
    (one depthwise conv of the groups' kernels zero-padded to the largest), eager and ONNX Runtime on one thread,
    batch 2, in the same run."""
    import copy
    import io

    import onnx
    import onnxruntime as ort

    from fer_core.models.ddamfn import MixedDepthwiseConv
    from fer_core.runtime import OPSET, _Reader

    split = copy.deepcopy(model).eval()
    for parent in list(split.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, MixedDepthwiseConv):
                setattr(parent, name, _SplitMixConv(child))
    x = torch.randn(2, 3, size, size)
    out = {}
    for name, m in (("split", split), ("merged", model)):
        with torch.inference_mode():
            out[f"mixconv_{name}_eager_b2_ms"] = p50(lambda: m(x), runs)
        with torch.no_grad():
            m(x)  # the merged kernels, built before the trace
        buf = io.BytesIO()
        torch.onnx.export(_Reader(m).eval(), (x,), buf, input_names=["x"], output_names=["logits", "pooled"],
                          dynamic_axes={"x": {0: "batch"}}, opset_version=OPSET, dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        out[f"mixconv_{name}_onnx_1thread_b2_ms"] = p50(lambda: session.run(None, feed), runs)
        out[f"mixconv_{name}_onnx_nodes"] = len(onnx.load_from_string(buf.getvalue()).graph.node)
    return out


def compiled_analyzer(names) -> Analyzer:
    """The page's torch path with each model's forward compiled (``torch.compile``, default mode)."""
    analyzer = Analyzer.from_pretrained(names, detector="yunet", device="cpu", engine="torch")
    for key in analyzer._singles():
        model = analyzer.slots[key].model
        model.forward_details = torch.compile(model.forward_details, dynamic=True)
    return analyzer


def ferplus_accuracy(analyzer: Analyzer, ds) -> dict:
    """Each shown model's FER+ valid accuracy on the page's path from the crops (test-time flip as configured)."""
    results = analyzer.read(list(ds.images))
    return {k: float(np.mean([s.labels[int(np.argmax(r[k].logits))] == ds.label_set.names[t]
                              for r, t in zip(results, ds.labels)])) for k, s in analyzer.shown.items()}


def model_row(a, key, slot, fast) -> dict:
    """One model's figures: eager torch against ONNX Runtime (every thread, spinning threads, one thread) at batch
    1 and 2, the backward's precisions, DDAMFN's MixConv ablation, and with ``--compile`` torch.compile."""
    model, size = slot.model, slot.size
    row = {"input": size, "gflop_per_view": flops(model, torch.zeros(1, 3, size, size)) / 1e9}
    for batch in (1, 2):
        x = torch.randn(batch, 3, size, size)
        with torch.inference_mode():
            row[f"eager_b{batch}_ms"] = p50(lambda: model(x), a.runs)
        page = fast.slots[key].onnx or onnx_reader(model, size)[0]  # the page's: prefix, then suffix
        reader = page.with_threads(a.threads)  # every thread on this one model
        row[f"onnx_b{batch}_ms"] = p50(lambda: reader(x), a.runs)
        spinning = page.with_threads(a.threads, spin=True)  # threads that spin between operators
        row[f"onnx_spin_b{batch}_ms"] = p50(lambda: spinning(x), a.runs)
        single = page.with_threads(1)  # one thread: its share when the models read side by side
        row[f"onnx_1thread_b{batch}_ms"] = p50(lambda: single(x), a.runs)
        row[f"profile_b{batch}"] = profile(model, x)
    row.update(backward_precisions(model, size, a.runs))
    if key == "ddamfn":
        row.update(mixconv_ablation(model, size, a.runs))
    row["onnx_ratio_b2"] = row["eager_b2_ms"] / row["onnx_b2_ms"]
    row["eager_gflops_per_s_b2"] = 2 * row["gflop_per_view"] / (row["eager_b2_ms"] / 1000)
    row["onnx_gflops_per_s_b2"] = 2 * row["gflop_per_view"] / (row["onnx_b2_ms"] / 1000)
    if a.compile:
        compiled = torch.compile(model)
        x = torch.randn(2, 3, size, size)
        t1 = time.perf_counter()
        with torch.inference_mode():
            compiled(x)
        row["compile_s"] = time.perf_counter() - t1
        with torch.inference_mode():
            row["compiled_b2_ms"] = p50(lambda: compiled(x), a.runs)
    return row


def branches(a, fast) -> dict:
    """The two branches one after the other on every thread, against side by side on one thread each (the page)."""
    from concurrent.futures import ThreadPoolExecutor

    pairs = [(fast.slots[k].onnx.with_threads(t), torch.randn(2, 3, fast.slots[k].size, fast.slots[k].size))
             for k in ("ddamfn", "resnet_dda") for t in (a.threads, 1)]
    (d_all, xd), (d_one, _), (r_all, xr), (r_one, _) = pairs
    res = {"branches_one_after_the_other_ms": p50(lambda: (d_all(xd), r_all(xr)), a.runs)}
    with ThreadPoolExecutor(1) as pool:
        def side_by_side():
            f = pool.submit(d_one, xd)
            r_one(xr)
            f.result()

        res["branches_side_by_side_ms"] = p50(side_by_side, a.runs)
    print(f"the two branches: one after the other {res['branches_one_after_the_other_ms']:.1f} ms, side by side "
          f"{res['branches_side_by_side_ms']:.1f} ms", flush=True)
    return res


def photo(a, eager, fast, startup_s) -> dict:
    """A photo on the page's path: eager against ONNX Runtime, per stage, with maps, and the three models' time."""
    from fer_core.images import load_image

    rgb = load_image(a.photo)
    res = {}
    for name, analyzer in (("eager", eager), ("onnx", fast)):
        res[f"photo_no_maps_{name}_ms"] = p50(lambda: analyzer.analyze(rgb), a.runs)
        res[f"per_stage_{name}_ms"] = analyzer.analyze(rgb).timings_ms
    res["photo_with_maps_ms"] = p50(lambda: fast.analyze(rgb, maps=True), max(5, a.runs // 3))
    res["photo_ratio"] = res["photo_no_maps_eager_ms"] / res["photo_no_maps_onnx_ms"]
    # the three models' wall time on the page's path (side by side, their own stages overlap), p50
    three = float(np.median([fast.analyze(rgb).timings_ms["models"] for _ in range(a.runs)]))
    res["three_models_onnx_ms"] = three
    print(f"photo without maps: eager {res['photo_no_maps_eager_ms']:.1f} ms, ONNX {res['photo_no_maps_onnx_ms']:.1f} "
          f"ms ({res['photo_ratio']:.2f}x); the three models {three:.1f} ms; with both maps "
          f"{res['photo_with_maps_ms']:.1f} ms; analyzer start {startup_s:.1f} s", flush=True)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_page_options(ap)
    ap.add_argument("--compile", action="store_true", help="also torch.compile each model (minutes)")
    ap.add_argument("--accuracy", action="store_true", help="FER+ valid accuracy of each engine")
    ap.add_argument("--ferplus", default=None, help="FER+ root (default: $FER_DATA/ferplus)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    names = {k: Path(a.weights_dir) / k for k in MODEL_KEYS}
    t0 = time.perf_counter()
    fast = Analyzer.from_pretrained(names, detector="yunet", device="cpu")
    startup_s = time.perf_counter() - t0
    eager = Analyzer.from_pretrained(names, detector="yunet", device="cpu", engine="torch")
    res = {"date": time.strftime("%Y-%m-%d"), "threads": a.threads, "cpu": os.cpu_count(),
           "torch": torch.__version__, "analyzer_start_s": round(startup_s, 2), "models": {}}
    for key, slot in eager.shown.items():
        if key == "fusion":
            continue
        res["models"][key] = row = model_row(a, key, slot, fast)
        print(key, {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()
                    if not k.startswith("profile")}, flush=True)
    res.update(branches(a, fast))
    res.update(photo(a, eager, fast, startup_s))
    if a.accuracy:
        from fer_core.data import read_dataset

        ds = read_dataset("ferplus", a.ferplus or dataset_root("ferplus"), "valid")
        engines = [("eager", eager), ("onnx", fast)] + ([("compiled", compiled_analyzer(names))] if a.compile else [])
        res["ferplus_valid"] = {name: ferplus_accuracy(analyzer, ds) for name, analyzer in engines}
        print("FER+ valid", res["ferplus_valid"], flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
