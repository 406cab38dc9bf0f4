"""The job/cache contract between the Blender add-on and the backend.

numpy and the standard library only: this package is imported inside Blender,
which must never need torch or taichi. Documented in CONTRACT.md beside it.
"""

from physinteract.contract.atomic import (
    atomic_save_npy,
    atomic_save_npz,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from physinteract.contract.cache import (
    CACHE_MANIFEST,
    CACHE_SCHEMA,
    CACHE_VERSION,
    CONTACT_FILE,
    CONTACT_WEIGHTS_FILE,
    ESTIMATE_SUMMARY_FILE,
    EVENTS_FILE,
    FRAMES_DIR,
    LOG_FILE,
    WARNING_EVENTS,
    CacheManifest,
    CacheWriter,
    EventLog,
    PointSetInfo,
    assemble_pc2,
    clear_cache,
    completed_frames,
    follow_events,
    frame_stem,
    iter_frames,
    read_cache_manifest,
    read_contact,
    read_contact_weights,
    read_frame,
    read_material,
)
from physinteract.contract.camera import (
    blender_matrix_from_world_to_camera,
    intrinsics_from_blender,
    project,
    scale_intrinsics,
    unproject,
    world_to_camera_from_blender,
)
from physinteract.contract.errors import ContractError
from physinteract.contract.job import (
    DRIVES,
    INTERACTION_TYPES,
    INTERIOR,
    JOB_MANIFEST,
    JOB_SCHEMA,
    JOB_VERSION,
    SURFACE,
    Camera,
    Ground,
    Interaction,
    Job,
    PointSet,
    SolverSettings,
    Video,
    read_job,
    resolve_path,
    write_job,
)
from physinteract.contract.pc2 import read_pc2, write_pc2

CONTRACT_VERSION = JOB_VERSION

__all__ = [name for name in dir() if not name.startswith("_")]
