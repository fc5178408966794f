"""Every registered model: shapes, gradients, attention maps, reference sizes."""
import pytest
import torch

from fer_core import create_model, list_models
from fer_core.models import attention_loss
from fer_core.models.ddamfn import MixBlock
from fer_core.models.layers import count_params
from fer_core.hardware import cpu_has_native_bf16

# Small but real configurations of each registered model, and the input size each is run at here.
TINY = {
    "ddamfn": (dict(num_classes=8), 112),
    "resnet18_dda": (dict(num_classes=8), 64),
    "resnet34_dda": (dict(num_classes=8, dda_stages=(1, 4)), 64),
    "resnet50_dda": (dict(num_classes=8, dda_stages=(2, 4), dda_width=64, c_mid=64), 64),
    "fusion": (dict(num_classes=8, branch_b="resnet18_dda", branch_b_args=dict(dda_stages=(3, 4)),
                    branch_input_sizes=[(112, 112), (64, 64)]), 112),
}


def test_registry_lists_the_five_models():
    assert list_models() == ["ddamfn", "fusion", "resnet18_dda", "resnet34_dda", "resnet50_dda"]
    assert set(TINY) == set(list_models())


def test_unknown_model_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown model 'resnet99_dda'.*registered models"):
        create_model("resnet99_dda")


@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_backward_and_maps(name):
    torch.manual_seed(0)
    kwargs, size = TINY[name]
    model = create_model(name, **kwargs).train()
    if name == "fusion":
        model.set_branches_trainable(True)
    x = torch.randn(2, 3, size, size)
    logits = model(x)
    assert logits.shape == (2, 8) and torch.isfinite(logits).all()
    details = model.forward_details(x)
    loss = details["logits"].logsumexp(1).sum() - details["logits"][:, 0].sum()
    if "head_maps" in details:
        loss = loss + 0.1 * attention_loss(details["head_maps"])
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    assert details["pooled"].shape == (2, model.num_features)
    for key, m in details["attention"].items():
        assert m.dim() == 3 and m.shape[0] == 2, key
        assert float(m.detach().min()) >= 0.0 and float(m.detach().max()) <= 1.0, key
    assert all(isinstance(layer, torch.nn.Module) for layer in model.gradcam_layers())


def test_ddamfn_maps_and_loss():
    model = create_model("ddamfn", num_heads=3).eval()
    out = model.forward_details(torch.randn(2, 3, 112, 112))
    assert len(out["head_maps"]) == 3 and out["head_maps"][0].shape == (2, 512, 7, 7)
    assert set(out["attention"]) == {"max", "head0", "head1", "head2"}
    assert out["attention"]["max"].shape == (2, 7, 7)
    # the max map is at least each head's map, channel for channel
    assert torch.all(torch.stack(out["head_maps"]).amax(0).mean(1) >= out["attention"]["head0"] - 1e-6)
    loss = attention_loss(out["head_maps"])
    pair_mse = [torch.nn.functional.mse_loss(out["head_maps"][i], out["head_maps"][j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    assert torch.allclose(loss, 3 / sum(pair_mse))
    assert float(attention_loss(out["head_maps"][:1])) == 0.0
    assert torch.allclose(model(torch.zeros(1, 3, 112, 112)), model.forward_details(torch.zeros(1, 3, 112, 112))["logits"])


def test_ddamfn_size_matches_reference():
    model = create_model("ddamfn", num_classes=7)
    ours = count_params(model)
    # tensors the reference declares but never uses: per mix block the mixed conv's BN (2g) and PReLU (g),
    # per head the 7x7 depthwise ConvBN (512*49 + 2*512), and a BatchNorm1d over the 7 classes
    unused = sum(3 * sum(m.conv_dw.splits) for m in model.modules() if isinstance(m, MixBlock))
    unused += 2 * (512 * 49 + 2 * 512) + 2 * 7
    assert abs((ours + unused) / 1e6 - 4.19) < 0.005, ours + unused
    assert ours == 4_105_999


def test_resnet_dda_sizes_and_stage_masks():
    r34 = create_model("resnet34_dda", num_classes=7).eval()
    # reference: 103.3 M of which ~5.7 M (unused ResNet18 stem/stages/fc inside each context path) are dropped here
    assert abs(count_params(r34) / 1e6 - (103.3 - 5.7)) < 0.1, count_params(r34)
    with torch.no_grad():
        out = r34.forward_details(torch.randn(1, 3, 224, 224))
    assert {k: tuple(v.shape[1:]) for k, v in out["attention"].items()} == {
        "stage1": (56, 56), "stage2": (28, 28), "stage3": (14, 14), "stage4": (7, 7)}
    assert count_params(create_model("resnet18_dda", num_classes=7)) == 87_487_815
    assert count_params(create_model("resnet50_dda", num_classes=7)) == 196_422_751


def test_dda_stage_selection_and_dropout():
    m = create_model("resnet18_dda", dda_stages=(4,), drop_rate=0.4)
    assert list(m.dda.keys()) == ["4"] and m.drop.p == 0.4
    with pytest.raises(ValueError, match="subset"):
        create_model("resnet18_dda", dda_stages=(5,))


def test_dda_gate_is_x_times_one_plus_mask():
    m = create_model("resnet18_dda", dda_stages=(4,)).eval()
    x = torch.randn(1, 512, 2, 2)
    block = m.dda["4"]
    with torch.no_grad():
        mask = block.mask(x)
        assert torch.allclose(block(x), x * (1 + mask))
        assert torch.allclose(mask.sum(1), torch.ones(1, 2, 2), atol=1e-5)  # softmax over channels


@pytest.mark.parametrize("mode", ["attention", "late", "early", "joint"])
def test_fusion_modes_and_branch_weights(mode):
    torch.manual_seed(0)
    a = create_model("ddamfn").eval()
    b = create_model("resnet18_dda", dda_stages=(4,)).eval()
    fusion = create_model("fusion", branch_a=a, branch_b=b, mode=mode, branch_input_sizes=[(112, 112), (64, 64)])
    fusion.train()
    assert fusion.train_branches == (mode == "joint")
    if not fusion.train_branches:
        assert not a.training and not b.training  # frozen branches keep eval-mode BatchNorm
        assert all(not p.requires_grad for p in a.parameters())
    x = torch.randn(3, 3, 112, 112)
    out = fusion.forward_details(x)
    w = out["branch_weights"]
    assert w.shape == (3, 2) and torch.allclose(w.sum(1), torch.ones(3)) and (w >= 0).all()
    # reusing the branches' own outputs gives the same logits as running the fusion end to end
    fusion.eval()
    with torch.no_grad():
        da, db = fusion.branch_details(x)
        assert torch.allclose(fusion.fuse(da, db)["logits"], fusion(x), atol=1e-5)
    if mode == "late":
        assert torch.allclose(fusion(x).softmax(1), (da["logits"].softmax(1) + db["logits"].softmax(1)) / 2, atol=1e-5)
    if mode == "attention":
        # the residual head starts at zero: the fusion starts as a per-sample weighted late fusion of logits
        expected = w[:, :1] * da["logits"] + w[:, 1:] * db["logits"]
        assert torch.allclose(fusion(x), expected, atol=1e-5)
        trainable = {id(p) for p in fusion.parameters() if p.requires_grad}
        assert trainable == {id(p) for p in fusion.fusion_parameters()}


def test_fusion_rejects_mismatched_classes():
    with pytest.raises(ValueError, match="classes"):
        create_model("fusion", branch_a=create_model("ddamfn", num_classes=7), branch_b="resnet18_dda", num_classes=8)


@pytest.mark.parametrize("size,side", [(112, 7), (64, 4), (48, 3), (80, 5)])
def test_ddamfn_heads_and_pooling_follow_the_input_size(size, side):
    torch.manual_seed(0)
    model = create_model("ddamfn", input_size=size).eval()
    assert model.map_size == side and model.input_size == (3, size, size)
    assert model.Linear.conv.kernel_size == (side, side)
    assert model.cat_head0.CoordAtt.Linear_h.conv.kernel_size == (1, side)
    with torch.no_grad():
        out = model.forward_details(torch.randn(2, 3, size, size))
    assert out["logits"].shape == (2, 8) and out["pooled"].shape == (2, 512)
    assert all(m.shape == (2, side, side) for m in out["attention"].values())


def test_ddamfn_at_112_keeps_the_reference_shapes():
    """The official checkpoints (112 px) still map tensor for tensor: the default is the reference's 7x7."""
    default = create_model("ddamfn").state_dict()
    explicit = create_model("ddamfn", input_size=112).state_dict()
    assert {k: v.shape for k, v in default.items()} == {k: v.shape for k, v in explicit.items()}
    assert default["Linear.conv.weight"].shape == (512, 1, 7, 7)
    with pytest.raises(ValueError, match="at least 32 px"):
        create_model("ddamfn", input_size=16)


def test_ddamfn_zero_init_residual_starts_each_residual_block_as_the_identity():
    from fer_core.models.ddamfn import MixBlock

    torch.manual_seed(0)
    model = create_model("ddamfn", input_size=64, zero_init_residual=True).eval()
    blocks = [m for m in model.modules() if isinstance(m, MixBlock) and m.residual]
    assert len(blocks) == 31
    x = torch.randn(2, 64, 16, 16)
    with torch.no_grad():
        assert torch.equal(blocks[0](x), x)
    plain = create_model("ddamfn", input_size=64).eval()
    assert not torch.equal(plain.features[3].model[0](x), x)


@pytest.mark.parametrize("size,stage", [(224, 4), (112, 4), (64, 3), (32, 2)])
def test_resnet_dda_gradcam_layer_is_the_deepest_map_at_least_4_wide(size, stage):
    from fer_core.models.resnet_dda import stage_side

    model = create_model("resnet18_dda", dda_stages=(3, 4), dda_width=64, c_mid=64)
    assert model.gradcam_layers(size)[0] is getattr(model, f"layer{stage}")[-1]
    assert model.gradcam_layers()[0] is model.layer4[-1]  # no size given: torchvision's convention
    sides = {}
    hooks = [getattr(model, f"layer{i}").register_forward_hook(
        lambda m, a, o, i=i: sides.__setitem__(i, o.shape[-1])) for i in range(1, 5)]
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, size, size))
    for h in hooks:
        h.remove()
    assert sides == {i: stage_side(size, i) for i in range(1, 5)}


@pytest.mark.skipif(not cpu_has_native_bf16(),
                    reason="the bug lives in oneDNN's native bf16 path")
def test_dda_context_upsampling_gets_finite_gradients_in_bf16_channels_last():
    """At 64 px the DDA blocks' context maps are 1x1: PyTorch's bf16 channels_last transposed convolution left
    the weight gradient of the eight taps that meet no input uninitialised (NaN in about 6 steps of 10 on such a
    map), which filled the shipped ResNet+DDA with NaN that only larger inputs reach. The block runs that layer
    in float32."""
    from fer_core.models.resnet_dda import DDABlock

    torch.manual_seed(0)
    block = DDABlock(4, 512).train().to(memory_format=torch.channels_last)
    for _ in range(6):
        block.zero_grad()
        c4 = torch.randn(16, 512, 1, 1).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = block._up4(c4)
        (y.float() * torch.randn_like(y.float())).sum().backward()
        g = block.up4[0].weight.grad
        assert torch.isfinite(g).all()
        outer = torch.ones(3, 3, dtype=torch.bool)
        outer[1, 1] = False
        assert g[:, :, 1, 1].abs().sum() > 0 and torch.count_nonzero(g[:, :, outer]) == 0  # only the centre meets input


def test_mixconv_runs_as_one_merged_kernel_out_of_training_with_the_same_outputs():
    from fer_core.models.ddamfn import MixedDepthwiseConv

    torch.manual_seed(0)
    for stride in (1, 2):
        mix = MixedDepthwiseConv(12, (3, 5, 7), (4, 4, 4), stride)
        x = torch.randn(2, 12, 9, 9)
        split = mix.train()(x)
        merged = mix.eval()(x)
        assert merged.shape == split.shape and torch.allclose(merged, split, atol=1e-6)
        assert mix.merged_weight().shape == (12, 1, 7, 7)
        # gradients still reach every group's kernel in eval mode (a fusion training its branches)
        merged.square().sum().backward()
        assert all(c.weight.grad is not None and c.weight.grad.abs().sum() > 0 for c in mix.mixed_depthwise_conv)
        # a changed kernel rebuilds the cached merged one
        with torch.no_grad():
            mix.mixed_depthwise_conv[0].weight.add_(1.0)
            assert torch.allclose(mix(x), mix.train()(x), atol=1e-5)


@pytest.mark.parametrize("name,args,size", [("ddamfn", dict(), 64), ("resnet18_dda", dict(dda_stages=(3, 4)), 80),
                                            ("resnet18_dda", dict(dda_stages=(1, 2, 3, 4)), 112),
                                            ("resnet34_dda", dict(dda_stages=(1, 4)), 64)])
def test_the_split_at_the_gradcam_target_is_the_whole_forward(name, args, size):
    """forward_prefix ends where Grad-CAM's target layer's output is (the activations the maps are made of), and
    forward_suffix from there gives forward_details, own attention included: the maps' path runs the two parts."""
    torch.manual_seed(0)
    model = create_model(name, **args, **({"input_size": size} if name == "ddamfn" else {})).eval()
    x = torch.randn(2, 3, size, size)
    seen = []
    hook = model.gradcam_layers(size)[0].register_forward_hook(lambda m, a, o: seen.append(o))
    with torch.no_grad():
        pre = model.forward_prefix(x)
        hook.remove()
        split, whole = model.forward_suffix(pre), model.forward_details(x)
    assert len(seen) == 1 and torch.equal(pre["act"], seen[0])
    assert torch.equal(split["logits"], whole["logits"]) and torch.equal(split["pooled"], whole["pooled"])
    assert split["attention"].keys() == whole["attention"].keys() and len(whole["attention"]) > 0
    for k in whole["attention"]:
        assert torch.equal(split["attention"][k], whole["attention"][k]), k
