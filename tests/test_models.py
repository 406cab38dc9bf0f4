"""Model lookup: env var, models folder, hub cache; a missing model says where to put it."""

from __future__ import annotations

import subprocess
import sys

from physinteract.perception import models


def test_missing_model_message_names_the_places_to_put_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("PHYSINTERACT_VLM", raising=False)
    monkeypatch.delenv("PHYSINTERACT_MODELS", raising=False)
    assert models.locate("vlm") is None
    msg = models.missing_message("vlm")
    assert "PHYSINTERACT_VLM" in msg and str(tmp_path / "hub") in msg and "Qwen/Qwen2.5-VL-3B-Instruct" in msg


def test_model_found_in_hub_cache_snapshot(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("PHYSINTERACT_VLM", raising=False)
    snap = tmp_path / "models--Qwen--Qwen2.5-VL-3B-Instruct" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    assert models.locate("vlm") is None  # an empty snapshot is not a model
    (snap / "config.json").write_text("{}")
    assert models.locate("vlm") == snap


def test_env_var_and_models_folder_take_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "nothing"))
    (tmp_path / "m" / "vlm").mkdir(parents=True)
    (tmp_path / "m" / "vlm" / "config.json").write_text("{}")
    monkeypatch.setenv("PHYSINTERACT_MODELS", str(tmp_path / "m"))
    assert models.locate("vlm") == tmp_path / "m" / "vlm"
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "config.json").write_text("{}")
    monkeypatch.setenv("PHYSINTERACT_VLM", str(tmp_path / "own"))
    assert models.locate("vlm") == tmp_path / "own"


def test_cli_doctor_and_models_run(tmp_path):
    env_run = [sys.executable, "-m", "physinteract"]
    out = subprocess.run(env_run + ["models", "--json"], capture_output=True, text=True, check=True)
    assert '"vlm"' in out.stdout
    out = subprocess.run(env_run + ["doctor", "--json", "--no-taichi-init"], capture_output=True, text=True, check=True)
    assert '"python": "3.11' in out.stdout
    out = subprocess.run(env_run + ["validate", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and "cache.json" in out.stderr
