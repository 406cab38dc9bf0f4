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
    """key -> found path, or 'missing'."""
    out = {}
    for key in MODELS:
        p = locate(key)
        out[key] = str(p) if p else "missing"
    return out
