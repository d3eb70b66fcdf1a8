"""Data-parallel training: two CPU processes under torchrun train the same weights as one process with
the same global batch; only rank 0 writes; a run resumes in both processes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import subband
from subband.cli import main
from subband.data import SRPairs
from subband.train import TrainConfig, fit
from subband.train.distributed import ShardedBatches

ATOL = 1e-5  # float32 sums in another order; Adam amplifies them where a gradient is near its eps, ~0.004 lr here


def _images(root: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    for i in range(count):
        smooth = np.kron(rng.random((8, 8, 3)), np.ones((6, 6, 1)))  # blocky 48x48 images an SR net can learn
        Image.fromarray((smooth * 255).astype(np.uint8)).save(root / f"{i}.png")
    return root


def _torchrun(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _assert_same_weights(a: Path, b: Path, atol: float = ATOL) -> None:
    x, y = subband.load_model(a), subband.load_model(b)  # strict: a `module.` prefix would not load
    for (name, p), q in zip(x.state_dict().items(), y.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=atol, msg=name)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("n, world", [(25, 2), (24, 2), (21, 4)])
def test_shards_together_are_the_single_process_batches(n, world):
    for epoch in (0, 1):
        one = list(ShardedBatches(n, 8, seed=3, epoch=epoch))
        shards = [ShardedBatches(n, 8, seed=3, epoch=epoch, rank=r, world_size=world) for r in range(world)]
        steps = [list(s) for s in shards]
        assert all(len(s) == len(one) == len(shards[0]) for s in steps)
        for i, batch in enumerate(one):
            assert len({len(s[i]) for s in steps}) == 1  # every process runs equally many samples
            rebuilt = [None] * len(batch)
            for r, (shard, s) in enumerate(zip(shards, steps)):
                size, real = shard.sizes(i)
                assert size == len(batch)
                rebuilt[r::world] = s[i][:real]
            assert rebuilt == batch  # disjoint shards that make up exactly the one-process batch
        assert sorted(sum(one, [])) == list(range(n))
    assert list(ShardedBatches(n, 8, seed=3, epoch=0)) != list(ShardedBatches(n, 8, seed=3, epoch=1))
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        ShardedBatches(n, 7, rank=0, world_size=2)


_SCRIPT = """
import json, os, sys
import torch
from subband.data import SRPairs
from subband.train import TrainConfig, distributed, fit


class Interrupt(torch.utils.data.Dataset):
    # a Ctrl-C part-way through epoch 2, at the same step in every process (equal shard sizes)
    def __init__(self, base):
        self.base, self.epoch, self.calls = base, 0, 0
    def set_epoch(self, epoch):
        self.base.set_epoch(epoch)
        self.epoch, self.calls = epoch, 0
    def __len__(self):
        return len(self.base)
    def __getitem__(self, i):
        self.calls += 1
        if self.epoch == 1 and self.calls > 6:
            raise KeyboardInterrupt
        return self.base[i]


root, out = sys.argv[1], sys.argv[2]
cfg = dict(model="espcn_x2", epochs=2, batch_size=8, lr=1e-3, warmup_epochs=0.5)
train35 = SRPairs(root, 2, patch=16, samples_per_image=7)
train25 = SRPairs(root, 2, patch=16, samples_per_image=5)
val = SRPairs(root, 2)
with distributed.launched():
    record = fit(TrainConfig(**cfg, out_dir=out + "/full"), train35, val, progress=False)
    try:
        fit(TrainConfig(**cfg, out_dir=out + "/part"), Interrupt(train25), val, progress=False)
    except KeyboardInterrupt:
        pass
    fit(TrainConfig(**cfg, out_dir=out + "/part"), train25, val, resume=True, progress=False)
    try:
        fit(TrainConfig(**{**cfg, "batch_size": 7}, out_dir=out + "/odd"), train25, progress=False)
    except ValueError as e:
        record["error"] = str(e)
    record.update(rank=distributed.rank(), world=distributed.world_size())
tasks = "/proc/self/task"  # Linux: the names of this process's threads
if os.path.isdir(tasks):
    record["gloo_threads"] = sum("gloo" in open(f"{tasks}/{t}/comm").read() for t in os.listdir(tasks))
with open(f"{out}/rank{record['rank']}.json", "w") as f:  # the ranks' stdout lines can interleave
    json.dump(record, f)
"""


def test_two_processes_train_the_weights_of_one(tmp_path):
    """35 crops in global batches of 8: the last batch of 3 splits 2/1; 5 validation images split
    3/2. Then 25 crops, so rank 1's share of the last batch is padding only, in a run interrupted in
    epoch 2 and resumed by both processes."""
    root = _images(tmp_path / "hr", 5)
    (tmp_path / "run.py").write_text(_SCRIPT)
    _torchrun(tmp_path, "run.py", str(root), str(tmp_path))
    returned = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [(r["rank"], r["world"]) for r in returned] == [(0, 2), (1, 2)]
    assert "divisible by the number of processes (2)" in returned[0]["error"]
    # the group is gone when the processes leave it (a group kept alive can abort a rank at exit)
    assert all(r.get("gloo_threads", 0) == 0 for r in returned)

    cfg = TrainConfig(
        model="espcn_x2", epochs=2, batch_size=8, lr=1e-3, warmup_epochs=0.5, out_dir=str(tmp_path / "one")
    )
    one = fit(cfg, SRPairs(root, 2, patch=16, samples_per_image=7), SRPairs(root, 2), progress=False)
    _assert_same_weights(tmp_path / "full" / "last.safetensors", tmp_path / "one" / "last.safetensors")
    cfg25 = TrainConfig(**{**cfg.to_dict(), "out_dir": str(tmp_path / "one25")})
    fit(cfg25, SRPairs(root, 2, patch=16, samples_per_image=5), progress=False)
    _assert_same_weights(tmp_path / "part" / "last.safetensors", tmp_path / "one25" / "last.safetensors")

    torch.manual_seed(cfg.seed)
    init = subband.create_model("espcn_x2").state_dict()
    trained = subband.load_model(tmp_path / "one" / "last.safetensors").state_dict()
    assert max((trained[k] - v).abs().max().item() for k, v in init.items()) > 100 * ATOL  # the test can fail

    full, single = _records(tmp_path / "full"), _records(tmp_path / "one")
    assert len(full) == 2 and len(_records(tmp_path / "part")) == 2  # written once, by rank 0
    for a, b in zip(full, single):
        for key in ("train_loss", "val_psnr", "val_ssim"):
            assert a[key] == pytest.approx(b[key], rel=1e-5), key
    for r in returned:  # every process returns the metrics of the whole run
        for key in ("train_loss", "val_psnr", "val_ssim"):
            assert r[key] == pytest.approx(one[key], rel=1e-5), key


def test_torchrun_command_line(tmp_path, capsys):
    root = _images(tmp_path / "hr", 2)  # 16 crops in global batches of 6: 6, 6, 4
    args = ["train", "espcn_x2", "--data", f"sr:{root}", "--val-data", f"sr:{root}", "--patch", "16",
            "--epochs", "2", "--batch-size", "6", "--lr", "1e-3", "--quiet"]  # fmt: skip
    proc = _torchrun(tmp_path, "-m", "subband", *args, "--out", str(tmp_path / "two"))
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1 and printed[0]["epoch"] == 2  # rank 0 prints
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [
        "best.safetensors",
        "config.json",
        "last.safetensors",
        "metrics.jsonl",
    ]
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    single = json.loads(capsys.readouterr().out.splitlines()[-1])
    _assert_same_weights(tmp_path / "two" / "last.safetensors", tmp_path / "one" / "last.safetensors")
    assert printed[0]["val_psnr"] == pytest.approx(single["val_psnr"], rel=1e-5)
