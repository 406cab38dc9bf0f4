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


def _interval(cache: Path) -> tuple[float, float]:
    """(start, done) wall-clock times of the estimate whose events.jsonl is in ``cache``."""
    events = [json.loads(line) for line in (cache / contract.cache.EVENTS_FILE).read_text().splitlines()]
    start = next(e["time"] for e in events if e["event"] == "start")
    done = next(e["time"] for e in events if e["event"] == "done")
    return start, done


def test_two_jobs_run_two_estimate_processes_at_once_and_score_what_each_wrote(quick_scenes: dict[str, Path], tmp_path: Path):
    """With jobs=2 the joint and the material-only estimate overlap in time (each its own
    `physinteract estimate` process), and the report scores the material each wrote to its cache."""
    out = tmp_path / "bench"
    shutil.copytree(quick_scenes["hemp_rope"], out / "scenes" / "hemp_rope")
    lines: list[str] = []
    cfg = R.RunConfig(out=out, scenes=["hemp_rope"], modes=["joint", "material_only"], iterations=1,
                      build=S.BuildConfig.quick(), jobs=2)
    report = R.run_benchmark(cfg, log=lines.append)
    assert report["jobs"] == 2 and "2 estimates at a time" in (out / "report.md").read_text()
    pids = {line.split(" in process ")[1].split(",")[0] for line in lines if " in process " in line}
    assert len(pids) == 2, lines
    (a0, a1), (b0, b1) = (_interval(out / "runs" / "hemp_rope" / m) for m in ("joint", "material_only"))
    assert a0 < b1 and b0 < a1  # the two estimates ran at the same time
    gt = S.load_gt(out / "scenes" / "hemp_rope")
    for mode in ("joint", "material_only"):
        cache = out / "runs" / "hemp_rope" / mode
        E, _ = contract.read_material(cache, len(gt["E"]))
        summary = json.loads((cache / "estimate.json").read_text())
        scores = report["scenes"]["hemp_rope"][mode]
        assert summary["mode"] == mode and scores["iterations"] == summary["iterations"] == 1
        assert scores["material_accuracy"] == R.material_accuracy(E, gt["E"])
        assert scores["psnr"] == summary["psnr"] and scores["seconds"] == summary["seconds"]
    assert set(R.METRICS) <= set(json.loads((out / "report.json").read_text())["average"]["material_only"])


def test_a_failed_estimate_process_names_its_scene_mode_and_log_and_writes_no_report(quick_scenes: dict[str, Path], tmp_path: Path):
    out = tmp_path / "bench"
    shutil.copytree(quick_scenes["hemp_rope"], out / "scenes" / "hemp_rope")
    frame = sorted((out / "scenes" / "hemp_rope").rglob("*.png"))[0]
    frame.write_bytes(b"not a png")
    cfg = R.RunConfig(out=out, scenes=["hemp_rope"], modes=["material_only"], iterations=1, build=S.BuildConfig.quick(), jobs=2)
    with pytest.raises(RuntimeError) as err:
        R.run_benchmark(cfg, log=lambda s: None)
    text = str(err.value)
    assert "hemp_rope (material_only)" in text and R.WORKER_LOG in text and frame.name in text
    assert not (out / "report.json").exists()


def test_estimate_summary_missing_a_field_names_the_file_and_field(tmp_path: Path):
    contract.atomic_save_npy(tmp_path / "material_E.npy", np.full(3, 1e4))
    contract.atomic_save_npy(tmp_path / "material_nu.npy", np.full(3, 0.3))
    (tmp_path / "estimate.json").write_text(json.dumps({"seconds": 1.0, "seconds_per_iteration": 0.5, "iterations": 2, "psnr": 30.0}))
    with pytest.raises(contract.ContractError) as err:
        R.read_estimate(tmp_path, 3)
    assert err.value.field == "ssim" and err.value.file.endswith("estimate.json")
    (tmp_path / "estimate.json").write_text(json.dumps({"seconds": 1.0, "seconds_per_iteration": 0.5, "iterations": 2,
                                                        "psnr": 30.0, "ssim": 0.9, "history": [{"loss": 0.1}]}))
    res = R.read_estimate(tmp_path, 3)
    assert res.iterations == 2 and res.history == [{"loss": 0.1}] and np.all(res.E == 1e4)


def test_default_jobs_is_bounded_by_cores_memory_and_work(monkeypatch: pytest.MonkeyPatch):
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    assert R.default_jobs(1) == 1
    assert 1 <= R.default_jobs(1000) <= cores
    page = 4096
    monkeypatch.setattr(os, "sysconf", lambda name: page if name == "SC_PAGE_SIZE" else (R.ESTIMATE_MEMORY // page) * 3 // 2)
    assert R.default_jobs(1000) == 1  # 1.5 estimates' worth of memory: one at a time
    with pytest.raises(ValueError, match="jobs"):
        R.RunConfig(out=Path("x"), jobs=0)
