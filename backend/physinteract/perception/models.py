"""Where the optional perception models live, and how to tell a user where to put them.

Weights are never downloaded by this program. A model is found, in order, at
1. the path in its environment variable (e.g. ``PHYSINTERACT_VLM``), a folder
   holding the model's files (``config.json`` ...);
2. ``$PHYSINTERACT_MODELS/<name>/``;
3. the Hugging Face hub cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or
   ``~/.cache/huggingface/hub``), as ``models--<org>--<repo>/snapshots/<rev>/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    key: str  # short name used on the command line and in reports
    repo_id: str  # the default hub id
    env: str  # environment variable naming a local folder
    purpose: str
    marker: str = "config.json"  # a file whose presence marks a usable folder


MODELS: dict[str, ModelSpec] = {
    "vlm": ModelSpec("vlm", "Qwen/Qwen2.5-VL-3B-Instruct", "PHYSINTERACT_VLM", "interaction type by multiple choice"),
    "sam2": ModelSpec("sam2", "facebook/sam2.1-hiera-tiny", "PHYSINTERACT_SAM2", "silhouettes and contact regions",
                      marker=""),
}


def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def _usable(folder: Path, spec: ModelSpec) -> bool:
    if not folder.is_dir():
        return False
    return (folder / spec.marker).is_file() if spec.marker else any(folder.iterdir())


def locate(key: str, override: str | None = None) -> Path | None:
    """The folder of model ``key`` (or of the hub id / path ``override``), or None."""
    spec = MODELS[key]
    candidates: list[Path] = []
    repo_id = spec.repo_id
    if override:
        if Path(override).expanduser().is_dir():
            candidates.append(Path(override).expanduser())
        else:
            repo_id = override
    if os.environ.get(spec.env):
        candidates.append(Path(os.environ[spec.env]).expanduser())
    if os.environ.get("PHYSINTERACT_MODELS"):
        candidates.append(Path(os.environ["PHYSINTERACT_MODELS"]).expanduser() / key)
    snaps = hub_cache_dir() / ("models--" + repo_id.replace("/", "--")) / "snapshots"
    if snaps.is_dir():
        candidates += sorted(snaps.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for c in candidates:
        if _usable(c, spec):
            return c
    return None


def missing_message(key: str) -> str:
    """How to install model ``key`` by hand: said whenever it is needed and absent."""
    spec = MODELS[key]
    return (
        f"model '{key}' ({spec.repo_id}, for {spec.purpose}) was not found. PhysInteract never downloads weights. "
        f"Put the model's folder at $PHYSINTERACT_MODELS/{key}/, or point {spec.env} at it, or place it in the "
        f"Hugging Face cache ({hub_cache_dir()}/models--{spec.repo_id.replace('/', '--')}/snapshots/<revision>/), "
        f"e.g. on a machine with internet: `huggingface-cli download {spec.repo_id}` and copy the cache."
    )


def report() -> dict[str, str]:
    """key -> the found weights (SAM 2's .pt file, else the model folder), or 'missing' (see :func:`describe`)."""
    return {str(e["key"]): str(e["file"] or e["path"] or "missing") for e in describe()}


# SAM 2 checkpoint file names (as published on the hub) -> the sam2 package's config for them.
SAM2_CONFIGS: dict[str, str] = {
    "sam2.1_hiera_tiny.pt": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small.pt": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus.pt": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large.pt": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "sam2_hiera_tiny.pt": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_small.pt": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_base_plus.pt": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_large.pt": "configs/sam2/sam2_hiera_l.yaml",
}


@dataclass(frozen=True)
class Sam2Checkpoint:
    checkpoint: Path  # the .pt file (a dict with the state dict under "model", or the state dict)
    config: str | None  # a yaml beside it, or the sam2 package config its file name implies; None: unknown


def sam2_checkpoint(override: str | None = None) -> Sam2Checkpoint | None:
    """The SAM 2 checkpoint: ``override`` as a .pt file, or the one .pt in the folder ``locate("sam2", override)``.

    A folder with several .pt files prefers the published names in SAM2_CONFIGS (SAM 2.1 first, smallest first).
    None when no folder or no .pt file is found.
    """
    if override and Path(override).expanduser().is_file():
        pt = Path(override).expanduser()
    else:
        folder = locate("sam2", override)
        if folder is None:
            return None
        pts = sorted(folder.glob("*.pt"))
        if not pts:
            return None
        pt = next((folder / name for name in SAM2_CONFIGS if (folder / name) in pts), pts[0])
    yamls = sorted(pt.parent.glob("*.yaml"))
    config = str(yamls[0]) if len(yamls) == 1 else SAM2_CONFIGS.get(pt.name)
    return Sam2Checkpoint(pt, config)


def describe() -> list[dict[str, str | None]]:
    """One entry per model for ``physinteract models``: key, repo_id, env, purpose, path (None when
    missing), file (the weights file for SAM 2), message (placement instructions when missing)."""
    out: list[dict[str, str | None]] = []
    for key, spec in MODELS.items():
        folder = locate(key)
        entry: dict[str, str | None] = {"key": key, "repo_id": spec.repo_id, "env": spec.env, "purpose": spec.purpose,
                                        "path": str(folder) if folder else None, "file": None, "message": None}
        if key == "sam2" and folder is not None:
            found = sam2_checkpoint()
            if found is None:
                entry["path"] = None
                entry["message"] = f"{folder} holds no SAM 2 checkpoint (*.pt). " + missing_message(key)
            else:
                entry["file"] = str(found.checkpoint)
        elif folder is None:
            entry["message"] = missing_message(key)
        out.append(entry)
    return out
