"""Model whereabouts: SAM 2 checkpoint lookup and the ``physinteract models`` report, on folders made here."""

from __future__ import annotations

import json

import pytest

from physinteract.cli import main
from physinteract.perception import models


@pytest.fixture
def env(monkeypatch, tmp_path):
    """No model anywhere: an empty hub cache, no env vars."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for var in ("PHYSINTERACT_VLM", "PHYSINTERACT_SAM2", "PHYSINTERACT_MODELS"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_sam2_checkpoint_in_hub_cache_snapshot_implies_its_config(env, tmp_path):
    """The hub snapshot of facebook/sam2.1-hiera-tiny with sam2.1_hiera_tiny.pt -> that file, config sam2.1_hiera_t."""
    assert models.sam2_checkpoint() is None
    snap = tmp_path / "hub" / "models--facebook--sam2.1-hiera-tiny" / "snapshots" / "rev1"
    snap.mkdir(parents=True)
    (snap / "README.md").write_text("weights not here")
    assert models.sam2_checkpoint() is None  # a folder without a .pt is no checkpoint
    (snap / "sam2.1_hiera_tiny.pt").write_bytes(b"")
    found = models.sam2_checkpoint()
    assert found == models.Sam2Checkpoint(snap / "sam2.1_hiera_tiny.pt", "configs/sam2.1/sam2.1_hiera_t.yaml")


def test_sam2_folder_prefers_published_names_and_a_yaml_beside_them(env, tmp_path):
    """Env folder with two .pt files picks the published one; a single yaml beside it is its config; a .pt path works too."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "aaa_finetune.pt").write_bytes(b"")
    (folder / "sam2.1_hiera_small.pt").write_bytes(b"")
    env.setenv("PHYSINTERACT_SAM2", str(folder))
    assert models.sam2_checkpoint() == models.Sam2Checkpoint(folder / "sam2.1_hiera_small.pt", "configs/sam2.1/sam2.1_hiera_s.yaml")
    (folder / "custom.yaml").write_text("model: {}")
    assert models.sam2_checkpoint().config == str(folder / "custom.yaml")
    own = models.sam2_checkpoint(str(folder / "aaa_finetune.pt"))
    assert own.checkpoint == folder / "aaa_finetune.pt" and own.config == str(folder / "custom.yaml")


def test_models_command_json_says_found_and_missing(env, tmp_path, capsys):
    """VLM placed under $PHYSINTERACT_MODELS/vlm, SAM 2 absent: JSON gives the VLM's path and SAM 2's placement message."""
    (tmp_path / "m" / "vlm").mkdir(parents=True)
    (tmp_path / "m" / "vlm" / "config.json").write_text("{}")
    env.setenv("PHYSINTERACT_MODELS", str(tmp_path / "m"))
    assert main(["models", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["vlm"]["path"] == str(tmp_path / "m" / "vlm") and report["vlm"]["message"] is None
    assert report["sam2"]["path"] is None and report["sam2"]["message"] == models.missing_message("sam2")
    assert report["sam2"]["repo_id"] == "facebook/sam2.1-hiera-tiny" and report["sam2"]["env"] == "PHYSINTERACT_SAM2"


def test_models_command_text_lists_checkpoint_file_and_flags_a_folder_without_one(env, tmp_path, capsys):
    """Text report: SAM 2 found shows its .pt file; a SAM 2 folder without a .pt is reported missing, naming the folder."""
    folder = tmp_path / "sam"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    env.setenv("PHYSINTERACT_SAM2", str(folder))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "vlm: missing" in out and "PHYSINTERACT_VLM" in out
    assert "sam2: missing" in out and f"{folder} holds no SAM 2 checkpoint" in out
    (folder / "sam2.1_hiera_tiny.pt").write_bytes(b"")
    assert main(["models"]) == 0
    assert f"sam2: found at {folder / 'sam2.1_hiera_tiny.pt'}" in capsys.readouterr().out
