"""Benchmark runner: Material Accuracy is 1 for the true field and 0 for a 2x-off one; reports are written."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from physinteract import contract
from physinteract.benchmark import run as R
from physinteract.benchmark import scenes as S
from physinteract.imageio import read_png


@dataclass
class FakeResult:
    E: np.ndarray
    nu: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=lambda: [{"loss": 1.0 / (i + 1)} for i in range(5)])
    seconds: float = 2.0
    seconds_per_iteration: float = 0.4
    iterations: int = 5
    psnr: float = 30.0
    ssim: float = 0.95


def test_material_accuracy_counts_particles_within_20_percent():
    gt = np.array([1.0, 2.0, 4.0, 8.0])
    assert R.material_accuracy(gt * np.array([1.19, 0.81, 1.3, 0.5]), gt) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="particles"):
        R.material_accuracy(gt[:3], gt)


def test_runner_scores_true_field_1_and_2x_field_0_and_writes_reports(quick_scenes: dict[str, Path], tmp_path: Path):
    out = tmp_path / "bench"
    shutil.copytree(quick_scenes["hemp_rope"], out / "scenes" / "hemp_rope")  # the cache is reused, not rebuilt
    calls: list[str] = []

    def fake(job: contract.Job, cache: Path, mode: str, iterations: int | None, folder: Path) -> FakeResult:
        calls.append(mode)
        gt = S.load_gt(folder)
        k = 1.0 if mode == "joint" else 2.0
        return FakeResult(E=gt["E"] * k, nu=gt["nu"], history=[{"loss": k / (i + 1)} for i in range(5)])

    lines: list[str] = []
    cfg = R.RunConfig(out=out, scenes=["hemp_rope"], modes=["joint", "material_only"], iterations=5, build=S.BuildConfig.quick())
    report = R.run_benchmark(cfg, estimate=fake, log=lines.append)
    assert calls == ["joint", "material_only"]
    assert any("cached scene" in s for s in lines)
    scores = report["scenes"]["hemp_rope"]
    assert scores["joint"]["material_accuracy"] == 1.0
    assert scores["material_only"]["material_accuracy"] == 0.0
    # re-simulating the novel interaction with the true field beats a 2x stiffer one
    assert scores["joint"]["novel_error"] < scores["material_only"]["novel_error"]
    assert scores["joint"]["novel_error"] == pytest.approx(scores["novel_error_gt_field"])
    on_disk = json.loads((out / "report.json").read_text())
    for mode in ("joint", "material_only"):
        assert set(R.METRICS) <= set(on_disk["average"][mode])
    md = (out / "report.md").read_text()
    assert "| hemp_rope |" in md and "**average**" in md
    loss = read_png(out / "plots" / "hemp_rope_loss.png")
    assert np.any(np.all(np.abs(loss - np.array(R.MODE_COLORS["joint"])) < 0.02, axis=2))  # the joint curve is drawn

    def red(path: Path) -> float:
        img = read_png(path)
        return float(np.mean((img[..., 0] > 0.6) & (img[..., 1] < 0.4) & (img[..., 2] < 0.4)))

    assert red(out / "plots" / "hemp_rope_material_only_E_error.png") > 0.005  # 100% error shows red
    assert red(out / "plots" / "hemp_rope_joint_E_error.png") == 0.0  # no error, no red


def test_benchmark_command_is_registered_and_refuses_unknown_scenes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from physinteract.cli import main

    assert main(["benchmark", "--out", str(tmp_path), "--scenes", "teapot"]) == 2
    assert "teapot" in capsys.readouterr().err
