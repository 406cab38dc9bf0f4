"""The two halves stay apart: backend never imports bpy, the add-on never imports torch or taichi,
and importing the backend's light modules pulls in nothing heavy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_backend_never_imports_bpy():
    offenders = [str(p) for p in (ROOT / "backend").rglob("*.py") if {"bpy", "bmesh", "mathutils"} & _imported_modules(p)]
    assert offenders == []


def test_addon_never_imports_torch_or_taichi():
    heavy = {"torch", "taichi", "sam2", "transformers"}
    offenders = [str(p) for p in (ROOT / "physinteract_addon").rglob("*.py") if heavy & _imported_modules(p)]
    assert offenders == []


def test_contract_imports_only_numpy_and_stdlib():
    allowed = set(sys.stdlib_module_names) | {"numpy", "physinteract", "__future__"}
    for p in (ROOT / "backend" / "physinteract" / "contract").rglob("*.py"):
        assert _imported_modules(p) <= allowed, p


def test_importing_cli_and_contract_loads_no_heavy_module():
    code = (
        "import sys, physinteract, physinteract.contract, physinteract.cli\n"
        "physinteract.cli.build_parser()\n"
        "heavy = [m for m in ('torch', 'taichi', 'bpy', 'sam2', 'transformers') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_unsafe_loading_or_shell_strings():
    """Never unpickle, never run a shell string (the project's rules), checked over all our Python."""
    bad = []
    for p in list((ROOT / "backend").rglob("*.py")) + list((ROOT / "physinteract_addon").rglob("*.py")) + list(
        (ROOT / "scripts").rglob("*.py")
    ):
        src = p.read_text(encoding="utf-8")
        for needle in ("allow_pickle=True", "shell=True", "os.system(", "pickle.load", "os.popen("):
            if needle in src:
                bad.append(f"{p}: {needle}")
        tree = ast.parse(src)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "load" and \
                    getattr(getattr(node.func, "value", None), "id", "") == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                if not (isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True):
                    bad.append(f"{p}:{node.lineno}: torch.load without weights_only=True")
    assert bad == []
