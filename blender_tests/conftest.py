"""Fixtures for tests that run inside Blender through the bpy module.

Blender's user folders are redirected to a temporary folder BEFORE bpy is
imported, so the tests never read or write ~/.config/blender. Blender 5.0 honours
BLENDER_USER_RESOURCES (the parent of config/, scripts/, extensions/, datafiles/)
and the per-folder overrides; we set all of them, pointing inside one temp root.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_USER_ROOT = Path(tempfile.mkdtemp(prefix="physinteract_blender_user_"))
USER_ENV = {
    "BLENDER_USER_RESOURCES": str(_USER_ROOT),
    "BLENDER_USER_CONFIG": str(_USER_ROOT / "config"),
    "BLENDER_USER_SCRIPTS": str(_USER_ROOT / "scripts"),
    "BLENDER_USER_EXTENSIONS": str(_USER_ROOT / "extensions"),
    "BLENDER_USER_DATAFILES": str(_USER_ROOT / "datafiles"),
}
os.environ.update(USER_ENV)

import bpy  # noqa: E402  (must come after the environment is set)
from helpers import set_prefs_python, write_fake_python  # noqa: E402  (imports bpy)

ADDON_ID = "physinteract"
REPO_MODULE = "user_default"
ADDON_MODULE = f"bl_ext.{REPO_MODULE}.{ADDON_ID}"


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_USER_ROOT, ignore_errors=True)


def user_root() -> Path:
    return _USER_ROOT


def build_zip(out_dir: Path) -> Path:
    """Run scripts/build_extension.py in a subprocess; returns the zip it printed."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_extension.py"), "--out", str(out_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.is_file(), proc.stdout
    return path


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zip(tmp_path_factory.mktemp("dist"))


def install_extension(zip_path: Path) -> str:
    """Install and enable the extension zip into the user_default repository."""
    result = bpy.ops.extensions.package_install_files(
        filepath=str(zip_path), repo=REPO_MODULE, enable_on_install=True, overwrite=True
    )
    assert result == {"FINISHED"}, result
    assert ADDON_MODULE in bpy.context.preferences.addons, list(bpy.context.preferences.addons.keys())
    return ADDON_MODULE


@pytest.fixture(scope="session")
def addon(extension_zip: Path) -> str:
    """The installed, enabled add-on's module name (bl_ext.user_default.physinteract)."""
    if ADDON_MODULE not in bpy.context.preferences.addons:
        install_extension(extension_zip)
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.python_path = sys.executable  # this interpreter has the backend installed
    return ADDON_MODULE


def _has_real_simulate() -> bool:
    try:
        return importlib.util.find_spec("physinteract.commands.simulate") is not None
    except ImportError:
        return False


@pytest.fixture(params=["fake", "real"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The backend Python to run: a wrapper around the fake backend (blender_tests/fake_backend.py), or this interpreter."""
    if request.param == "real":
        if not _has_real_simulate():
            pytest.skip("physinteract.commands.simulate is not importable yet (the MPM engineer's simulate command)")
        return sys.executable
    return write_fake_python(tmp_path_factory.mktemp("fake"))


@pytest.fixture
def fake_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An executable wrapper around the fake backend (blender_tests/fake_backend.py), passed explicitly (e.g. --python)."""
    return write_fake_python(tmp_path_factory.mktemp("fake"))


@pytest.fixture
def fake(fake_python: str, addon: str) -> str:
    """The fake backend's wrapper, set as the add-on's backend Python (what the operators run)."""
    set_prefs_python(addon, fake_python)
    return fake_python


@pytest.fixture
def empty_scene(addon: str) -> Iterator[bpy.types.Scene]:
    """A fresh empty file with the add-on enabled."""
    bpy.ops.wm.read_homefile(use_empty=True)
    if addon not in bpy.context.preferences.addons:  # loading must not disable add-ons
        raise AssertionError("reading the home file disabled the add-on")
    yield bpy.context.scene
