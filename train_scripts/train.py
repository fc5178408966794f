"""Train a model on FER+ (or any dataset fer_core reads) and export its best weights.

    python train_scripts/train.py --model ddamfn --data ferplus:../shared/datasets/ferplus --protocol majority
    python train_scripts/train.py --model resnet18_dda --input-size 112 --lr 0.05 --batch-size 128
    python train_scripts/train.py --model fusion --branch-a weights/ddamfn --branch-b weights/resnet_dda --epochs 5
    python train_scripts/train.py --data cache:.data/ferplus.npz.xz ...        # a prepared cache (prepare_data.py)
    torchrun --standalone --nproc_per_node=4 train_scripts/train.py --model ddamfn ...   # several GPUs (DDP)
    python train_scripts/train.py ... --resume                                  # continue from OUT/last.pt

Defaults reproduce the recipe that works for DDAMFN from scratch on FER+ (SGD nesterov lr 0.1, wd 5e-4, batch
256, 2-epoch warm-up then cosine, label smoothing 0.1, attention loss x0.1, GPU affine + flip + random erasing,
test-time flip). Writes to --out: metrics.csv, tb/ (TensorBoard), last.pt / best.pt, curves.png,
confusion.png, val_report.json and export/ (model.safetensors + config.json with provenance).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_core.data.augment import AugmentConfig  # noqa: E402
from fer_core.train import TrainConfig, train  # noqa: E402


def parse(argv=None) -> TrainConfig:
    d, a = TrainConfig(), AugmentConfig()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default=d.model, help="a registered model: ddamfn, resnet18_dda, ..., fusion")
    ap.add_argument("--model-args", default="{}", help='JSON, e.g. \'{"dda_stages": [3, 4], "drop_rate": 0.4}\'')
    ap.add_argument("--data", default=d.data, help="KIND:PATH (ferplus, fer2013, rafdb, affectnet, folder) or cache:FILE")
    ap.add_argument("--protocol", default=d.protocol, choices=("majority", "probability"))
    ap.add_argument("--train-split", default=d.train_split)
    ap.add_argument("--val-split", default=d.val_split)
    ap.add_argument("--input-size", type=int, default=None, help="default: the model's registered size")
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--batch-size", type=int, default=d.batch_size, help="global batch (split across DDP ranks)")
    ap.add_argument("--optimizer", default=d.optimizer, choices=("sgd", "adamw"))
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--momentum", type=float, default=d.momentum)
    ap.add_argument("--weight-decay", type=float, default=d.weight_decay)
    ap.add_argument("--sam-rho", type=float, default=d.sam_rho, help="> 0 enables SAM")
    ap.add_argument("--schedule", default=d.schedule, choices=("cosine", "step"))
    ap.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    ap.add_argument("--step-epochs", type=int, default=d.step_epochs)
    ap.add_argument("--step-gamma", type=float, default=d.step_gamma)
    ap.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    ap.add_argument("--attention-loss-weight", type=float, default=d.attention_loss_weight)
    ap.add_argument("--grad-clip", type=float, default=d.grad_clip)
    ap.add_argument("--ema-decay", type=float, default=d.ema_decay, help="> 0 keeps an EMA of the weights")
    ap.add_argument("--balanced-sampling", action="store_true")
    ap.add_argument("--flip", type=float, default=a.flip)
    ap.add_argument("--rotate", type=float, default=a.rotate)
    ap.add_argument("--translate", type=float, default=a.translate)
    ap.add_argument("--erase-p", type=float, default=a.erase_p)
    ap.add_argument("--mixup", type=float, default=a.mixup)
    ap.add_argument("--cutmix", type=float, default=a.cutmix)
    ap.add_argument("--amp", default=d.amp, choices=("auto", "bf16", "fp16", "off"))
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--no-tta-flip", action="store_true")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--out", default=None, help="default: runs/MODEL")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--save-every", type=int, default=d.save_every, help="also checkpoint every N steps")
    ap.add_argument("--limit-train", type=int, default=d.limit_train)
    ap.add_argument("--export-storage", default=d.export_storage, choices=("float32", "float16", "int8"))
    ap.add_argument("--branch-a", default=d.branch_a)
    ap.add_argument("--branch-b", default=d.branch_b)
    ap.add_argument("--fusion-mode", default=d.fusion_mode, choices=("attention", "late", "early", "joint"))
    ap.add_argument("--joint", action="store_true", help="fusion: fine-tune the branches too")
    ap.add_argument("--log-every", type=int, default=d.log_every)
    x = ap.parse_args(argv)
    aug = AugmentConfig(flip=x.flip, rotate=x.rotate, translate=x.translate, erase_p=x.erase_p, mixup=x.mixup,
                        cutmix=x.cutmix)
    return TrainConfig(
        model=x.model, model_args=json.loads(x.model_args), data=x.data, protocol=x.protocol,
        train_split=x.train_split, val_split=x.val_split, input_size=x.input_size, epochs=x.epochs,
        batch_size=x.batch_size, optimizer=x.optimizer, lr=x.lr, momentum=x.momentum, weight_decay=x.weight_decay,
        sam_rho=x.sam_rho, schedule=x.schedule, warmup_epochs=x.warmup_epochs, step_epochs=x.step_epochs,
        step_gamma=x.step_gamma, label_smoothing=x.label_smoothing, attention_loss_weight=x.attention_loss_weight,
        grad_clip=x.grad_clip, ema_decay=x.ema_decay, balanced_sampling=x.balanced_sampling, aug=aug, amp=x.amp,
        channels_last=not x.no_channels_last, compile=x.compile, tta_flip=not x.no_tta_flip, seed=x.seed,
        out_dir=x.out or f"runs/{x.model}", resume=x.resume, save_every=x.save_every, limit_train=x.limit_train,
        export_storage=x.export_storage, branch_a=x.branch_a, branch_b=x.branch_b, fusion_mode=x.fusion_mode,
        joint=x.joint, log_every=x.log_every)


def main(argv=None):
    cfg = parse(argv)
    train(cfg, argv=["train_scripts/train.py"] + list(argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
