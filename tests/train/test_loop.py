"""The training loop: learns, logs, checkpoints atomically, resumes exactly (also after kill -9),
stops on a non-finite loss."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import subband
from subband.data import TensorImages, digits
from subband.train import TrainConfig, evaluate, fit

TINY = dict(in_chans=1, num_classes=10, dim=16, depth=1, dropout=0.1)  # dropout: the RNG state matters


def _cfg(out, **kw):
    base = dict(model="wavemix_lite_144_7", model_overrides=TINY, epochs=3, batch_size=32, lr=3e-3, out_dir=str(out))
    return TrainConfig(**{**base, **kw})


def _losses(out):
    return [json.loads(line)["train_loss"] for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def test_learns_logs_and_checkpoints(tmp_path):
    record = fit(_cfg(tmp_path, epochs=4), digits("train"), digits("test"), progress=False)
    assert record["epoch"] == 4 and record["val_top1"] > 60  # chance is 10%
    losses = _losses(tmp_path)
    assert len(losses) == 4 and losses[-1] < losses[0]
    best = subband.load_model(tmp_path / "best.safetensors")
    assert evaluate(best, digits("test"))["top1"] >= record["val_top1"] - 1e-9
    assert json.loads((tmp_path / "config.json").read_text())["epochs"] == 4


class _Interrupt(torch.utils.data.Dataset):
    """Raises KeyboardInterrupt part-way through epoch ``at`` (0-based), like a user's Ctrl-C."""

    def __init__(self, base, at):
        self.base, self.at, self.epoch, self.calls = base, at, 0, 0

    def set_epoch(self, epoch):
        self.epoch, self.calls = epoch, 0

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        self.calls += 1
        if self.epoch == self.at and self.calls > len(self) // 2:
            raise KeyboardInterrupt
        return self.base[i]


def test_resume_after_an_interruption_reproduces_an_uninterrupted_run(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    fit(_cfg(full), digits("train"), progress=False)
    with pytest.raises(KeyboardInterrupt):
        fit(_cfg(part), _Interrupt(digits("train"), at=1), progress=False)
    assert len(_losses(part)) == 1  # epoch 1 finished and was saved; epoch 2 was cut short
    fit(_cfg(part), digits("train"), resume=True, progress=False)
    assert _losses(part) == pytest.approx(_losses(full), rel=1e-6)
    a, b = subband.load_model(full / "last.safetensors"), subband.load_model(part / "last.safetensors")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p, q, msg=name)


_SCRIPT = """
import sys
from subband.data import digits
from subband.train import TrainConfig, fit
cfg = TrainConfig(model="wavemix_lite_144_7", model_overrides=dict(in_chans=1, num_classes=10, dim=16, depth=1, dropout=0.1),
                  epochs=3, batch_size=8, lr=3e-3, out_dir=sys.argv[1])
fit(cfg, digits("train"), progress=False)
"""


def test_resume_after_kill_9(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(part)])
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # kill once epoch 1 is on disk
        if (part / "metrics.jsonl").is_file() and (part / "metrics.jsonl").read_text().count("\n") >= 1:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert (part / "last.safetensors").is_file()
    cfg = TrainConfig(
        model="wavemix_lite_144_7", model_overrides=TINY, epochs=3, batch_size=8, lr=3e-3, out_dir=str(part)
    )
    fit(cfg, digits("train"), resume=True, progress=False)
    fit(TrainConfig(**{**cfg.to_dict(), "out_dir": str(full)}), digits("train"), progress=False)
    assert _losses(part) == pytest.approx(_losses(full), rel=1e-6)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    good = digits("train")
    fit(_cfg(tmp_path, epochs=1), good, progress=False)
    before = (tmp_path / "last.safetensors").read_bytes()
    bad = TensorImages(good.images.clone(), good.labels, good.classes)
    bad.images[:] = float("nan")
    with pytest.raises(FloatingPointError, match="loss is nan at epoch 1.*last.safetensors"):
        fit(_cfg(tmp_path, epochs=1), bad, progress=False)
    assert (tmp_path / "last.safetensors").read_bytes() == before


def test_resume_refuses_another_configuration(tmp_path):
    fit(_cfg(tmp_path, epochs=1), digits("train"), progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        fit(_cfg(tmp_path, epochs=1, lr=1.0), digits("train"), resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        fit(_cfg(tmp_path / "new"), digits("train"), resume=True, progress=False)


def test_config_validation():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(model="espcn_x3", epochs=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainConfig(model="espcn_x3", label_smoothing=1.0)


def test_super_resolution_training_and_evaluation(tmp_path):
    import numpy as np
    from PIL import Image

    from subband.data import SRPairs
    from subband.train import psnr, ssim

    rng = np.random.default_rng(0)
    (tmp_path / "hr").mkdir()
    for i in range(3):
        smooth = np.kron(rng.random((8, 8, 3)), np.ones((6, 6, 1)))  # blocky images an SR net can learn
        Image.fromarray((smooth * 255).astype(np.uint8)).save(tmp_path / "hr" / f"{i}.png")
    train = SRPairs(tmp_path / "hr", scale=2, patch=16, samples_per_image=8)
    test = SRPairs(tmp_path / "hr", scale=2)
    cfg = TrainConfig(model="espcn_x2", epochs=2, batch_size=8, lr=3e-3, out_dir=str(tmp_path / "run"))
    record = fit(cfg, train, test, progress=False)
    assert {"val_psnr", "val_ssim"} <= set(record)
    model = subband.load_model(tmp_path / "run" / "last.safetensors").eval()
    lr, hr = test[1]
    sr = model(lr[None]).clamp(0, 1)
    metrics = evaluate(model, torch.utils.data.Subset(test, [1]))
    assert metrics["psnr"] == pytest.approx(psnr(sr, hr[None], border=2).item())
    assert metrics["ssim"] == pytest.approx(ssim(sr, hr[None], border=2).item())
