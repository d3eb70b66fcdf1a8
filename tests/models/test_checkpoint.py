"""Checkpoints: safetensors + JSON config, rebuilt exactly, never unpickled, clear errors."""

import json

import pytest
import torch
from safetensors.torch import save_file

import subband


def test_round_trip_rebuilds_the_same_model(tmp_path):
    torch.manual_seed(0)
    model = subband.create_model("espcn_x3", in_channels=3, widths=[32, 16])
    path = subband.save_model(model, tmp_path / "m.safetensors", extra={"epoch": 3})
    loaded = subband.load_model(path)
    assert loaded.config == {"name": "espcn_x3", "overrides": {"in_channels": 3, "widths": [32, 16]}}
    x = torch.rand(1, 3, 10, 10)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file of the atomic write is left behind"


def test_truncated_file_gives_a_clear_error(tmp_path):
    path = subband.save_model(subband.create_model("espcn_x2"), tmp_path / "m.safetensors")
    data = path.read_bytes()
    for cut in (len(data) // 2, 12, 3):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"cut{cut}.safetensors"):
            subband.load_model(bad)


def test_foreign_and_missing_files(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ValueError, match="without subband's config"):
        subband.load_model(foreign)
    pickle = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, pickle)
    with pytest.raises(ValueError, match="not a readable safetensors checkpoint"):
        subband.load_model(pickle)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        subband.load_model(tmp_path / "nothing.safetensors")


def test_weights_that_do_not_fit(tmp_path):
    path = tmp_path / "wrong.safetensors"
    meta = {"subband": json.dumps({"name": "espcn_x3", "overrides": {}, "version": "0"})}
    save_file({"convs.0.weight": torch.zeros(64, 1, 5, 5)}, str(path), metadata=meta)
    with pytest.raises(ValueError, match="missing"):
        subband.load_model(path)


def test_only_registry_models_are_saved(tmp_path):
    with pytest.raises(ValueError, match="create_model"):
        subband.save_model(torch.nn.Linear(2, 2), tmp_path / "x.safetensors")
