"""The command line: listing and benchmarking models, errors as messages."""

import json

import subband
from subband.cli import main


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
