"""Build the installable PhysInteract extension zip.

    python scripts/build_extension.py --out DIR

The zip holds, at its root, ``blender_manifest.toml`` and the add-on's files
(``__init__.py``, ``operators/`` ...), plus ``wheels/physinteract-<v>-py3-none-any.whl``:
the bundled simulation backend built from ``backend/``. The manifest's ``wheels``
list names that wheel, so Blender installs it into the extension's site-packages
and the add-on can ``from physinteract import contract`` (numpy only).

The backend is built from a temporary copy of ``backend/`` so the build never
writes into the source tree. Prints the zip's path on the last line of stdout.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDON_DIR = ROOT / "physinteract_addon"
BACKEND_DIR = ROOT / "backend"
MANIFEST = ROOT / "blender_manifest.toml"

_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "build", "dist"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".blend1")
# A fixed timestamp makes the zip reproducible (the zip format starts in 1980).
_ZIP_DATE = (2024, 1, 1, 0, 0, 0)


def _source_files(folder: Path) -> list[Path]:
    """Files under ``folder`` worth shipping, sorted, skipping caches and build output."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part in _SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if p.is_file() and not p.name.endswith(_SKIP_SUFFIXES):
            out.append(p)
    return out


def build_wheel(work: Path) -> Path:
    """Build the backend's pure-Python wheel from a copy of backend/ into ``work``/wheel."""
    src = work / "backend"
    for p in _source_files(BACKEND_DIR):
        dst = src / p.relative_to(BACKEND_DIR)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dst)
    out = work / "wheel"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"build_extension: building the backend wheel failed ({' '.join(cmd)}):\n{proc.stdout}{proc.stderr}")
    wheels = sorted(out.glob("physinteract-*-py3-none-any.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"build_extension: expected one pure-Python physinteract wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def manifest_text(wheel_name: str) -> str:
    """The repository manifest with its ``wheels`` list naming ``wheel_name``."""
    text = MANIFEST.read_text(encoding="utf-8")
    pattern = re.compile(r"^wheels\s*=\s*\[[^\]]*\]", re.MULTILINE)
    entry = f'wheels = [\n  "./wheels/{wheel_name}",\n]'
    text, n = pattern.subn(entry, text)
    if n != 1:
        raise SystemExit(f"build_extension: {MANIFEST}: expected one 'wheels = [...]' list, found {n}")
    tomllib.loads(text)  # still valid TOML
    return text


def build(out_dir: Path) -> Path:
    """Build the extension zip into ``out_dir`` and return its path."""
    manifest = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    with tempfile.TemporaryDirectory(prefix="physinteract_build_") as tmp:
        wheel = build_wheel(Path(tmp))
        entries: list[tuple[str, bytes]] = [("blender_manifest.toml", manifest_text(wheel.name).encode("utf-8"))]
        for p in _source_files(ADDON_DIR):
            entries.append((p.relative_to(ADDON_DIR).as_posix(), p.read_bytes()))
        entries.append((f"wheels/{wheel.name}", wheel.read_bytes()))
        tmp_zip = zip_path.with_name(f".{zip_path.name}.tmp")
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
        tmp_zip.replace(zip_path)
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    args = parser.parse_args(argv)
    print(build(args.out.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
