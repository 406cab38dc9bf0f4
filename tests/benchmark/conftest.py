"""Quick benchmark scenes, built once per test session (few particles, 4 frames, 64x48 px)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def quick_scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from physinteract.benchmark.scenes import SCENES, BuildConfig, build_scene

    root = tmp_path_factory.mktemp("benchmark_scenes")
    return {name: build_scene(name, root / name, BuildConfig.quick()).folder for name in SCENES}
