"""The command line: listing and benchmarking models, errors as messages."""

import json

import torch

import subband
from subband.cli import main
from subband.models import save_model


def test_models_lists_counted_and_reported_params(capsys):
    assert main(["models", "espcn_*", "--no-flops"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["model", "params", "paper"]
    assert [line.split()[0] for line in out[1:]] == subband.list_models("espcn_*")
    assert "22,729" in out[2]


def test_bench_json_rows(capsys):
    assert main(["bench", "espcn_x2", "--compare", "espcn_x3", "--batch", "2", "--min-time", "0.05", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["model"] for r in rows] == ["espcn_x2", "espcn_x3"]
    assert rows[1]["params"] == 22_729 and rows[1]["latency_ms"] > 0 and rows[1]["images_per_s"] > 0
    assert rows[1]["peak_mb_batch1"] > 0


def test_unknown_model_is_a_message(capsys):
    assert main(["bench", "no_such_model"]) == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    assert main(["models", "zzz*"]) == 1


def test_train_then_eval(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "wavemix_lite_144_7", "--data", "digits", "--set", "in_chans=1", "--set", "num_classes=10",
            "--set", "dim=16", "--set", "depth=1", "--epochs", "2", "--lr", "3e-3", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert record["epoch"] == 2 and "val_top1" in record and record["checkpoint"].endswith("last.safetensors")
    assert main(["eval", str(out / "last.safetensors"), "--data", "digits:test"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["top1"] == record["val_top1"]
    assert main(args + ["--resume"]) == 0  # already finished: resumes at epoch 2 and stops
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["val_top1"] == record["val_top1"]
    assert main(["train", "wavemix_lite_144_7", "--data", "nowhere:x", "--out", str(out)]) == 2


def test_interpret_methods(tmp_path, capsys):
    import json

    assert main(["interpret", "linear", "wavemix_lite_144_7", "--samples", "1", "--compact"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["identity_error"] < 1e-4 and 0 <= out["bias_share_mean"] <= 1
    assert main(["interpret", "erf", "convnext_atto", "--samples", "1", "--out", str(tmp_path), "--compact"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["side@0.5"] >= 1 and (tmp_path / "erf.png").is_file()
    assert main(["interpret", "filters", "wavemix_lite_144_7", "--compact"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["layers"] and set(out["degenerate"]) == {"sparse", "random", "low_diversity"}
    assert main(["interpret", "orthogonality", "wavemix_lite_144_7", "--size", "16", "--compact"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"]
    assert main(["interpret", "robustness", "wavemix_lite_144_7", "--samples", "4"]) == 2  # needs --data
    assert "needs labelled images" in capsys.readouterr().err


def test_interpret_features_and_spectrum(tmp_path, capsys):
    import json

    torch.manual_seed(0)
    model = subband.create_model("wavemix_lite_144_7", in_chans=1, num_classes=10, dim=16, depth=1)
    ckpt = save_model(model, tmp_path / "w.safetensors")
    assert main(["interpret", "features", str(ckpt), "--data", "digits", "--samples", "300", "--compact"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["train"] == out["test"] == 300 and out["dim"] > 0
    assert out["probe_top1"] > 0.5  # random features of 8x8 digits still carry the label, far above 0.1
    assert main(["interpret", "features", str(ckpt), "--samples", "4"]) == 2
    assert "needs labelled images" in capsys.readouterr().err
    assert main(["interpret", "spectrum", "espcn_x2", "--data", "sr", "--samples", "2", "--compact"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"input", "output", "target"}
    assert out["target"]["decay_beta"] > 0 and len(out["output"]) == 4
    assert main(["interpret", "spectrum", str(ckpt), "--samples", "1"]) == 2  # logits are not an image
    assert "output is an image" in capsys.readouterr().err


def _tiny(name: str, path, **kw):
    torch.manual_seed(0)
    model = subband.create_model(name, img_size=8, in_chans=1, num_classes=10, **kw)
    return save_model(model, path)


def test_compress_lpvit_then_eval(tmp_path, capsys):
    ckpt = _tiny("vit_tiny_patch16_224", tmp_path / "vit.safetensors", patch_size=2, depth=2)
    out = tmp_path / "pruned.safetensors"
    args = ["compress", "lpvit", str(ckpt), "--data", "digits", "--flops", "0.6", "--calib", "2", "--rounds", "0"]
    assert main(args + ["--out", str(out), "--compact"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["pruned"]["sparse_gmacs"] <= 0.6 * rec["dense"]["sparse_gmacs"] + 1e-9  # the budget holds
    assert rec["deployed"]["params"] < rec["dense"]["params"]  # finalize removed heads or units
    assert rec["deployed"]["gmacs"] < rec["dense"]["gmacs"] and rec["max_abs_diff"] < 1e-5
    # the checkpoint is the pruned model as zeros in the original architecture: it scores the same
    assert main(["eval", str(out), "--data", "digits:test"]) == 0
    assert json.loads(capsys.readouterr().out)["top1"] == rec["deployed"]["top1"]
    assert main(["compress", "lpvit", str(ckpt), "--rounds", "0"]) == 2  # calibration images needed
    assert "calibration images" in capsys.readouterr().err


def test_compress_dimap_and_fuse(tmp_path, capsys):
    swin = dict(patch_size=2, depths=(2, 2), num_heads=(2, 4), embed_dim=32, window_size=2)
    ckpt = _tiny("swin_tiny_patch4_window7_224", tmp_path / "swin.safetensors", **swin)
    assert main(["compress", "dimap", str(ckpt), "--flops", "0.5", "--rounds", "0", "--compact"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["pruned"]["sparse_gmacs"] <= 0.5 * rec["dense"]["sparse_gmacs"] + 1e-9
    assert main(["compress", "fuse", "lsnet_t", "--rounds", "1", "--min-time", "0.05", "--compact"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["deployed"]["params"] < rec["dense"]["params"] and rec["latency_ratio"] > 0
    assert main(["compress", "fuse", "lsnet_t", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "--onnx" in capsys.readouterr().err
