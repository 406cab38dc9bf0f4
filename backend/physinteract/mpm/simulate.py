"""Forward simulation of a contract Job into a contract cache (``physinteract simulate``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from physinteract.contract import CacheWriter, Job, PointSetInfo


def simulate_job(
    job: Job,
    cache_folder: str | Path,
    *,
    arch: str | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Simulate ``job``'s interaction with its material over frame_start..frame_end at job.fps.

    Writes a "simulate" cache: point set "particles" (all particles) and one set per
    ``job.point_sets`` entry, carried as passive tracers (with deformed Gaussian
    rotations and scales when the set has them). Frame ``frame_start`` is the rest state.
    ``arch`` overrides ``job.solver.arch``. ``progress(event)`` receives the "resolution" event
    (mpm.resolution: particles per cell, thin parts, warnings), each progress event and, at the
    end, the "tearing" event (particles that came apart from their rest neighbours);
    ``should_stop()`` turning true finishes the cache as "cancelled" (frames written so far stay
    valid). Failures finish it as "failed", emit an "error" event and re-raise.
    """
    from physinteract.geometry import deform_gaussians
    from physinteract.mpm.model import State, config_from_settings, control_from_job, model_from_job
    from physinteract.mpm.resolution import Tearing, resolution_report
    from physinteract.mpm.rollout import Rollout

    sets = [PointSetInfo("particles", len(job.particles))]
    for ps in job.point_sets:
        sets.append(
            PointSetInfo(
                ps.name,
                len(ps.rest_positions),
                world_to_object=np.linalg.inv(np.asarray(ps.object_to_world, np.float64)),
                has_rotations=ps.rest_rotations is not None,
                has_scales=ps.rest_scales is not None,
            )
        )
    writer = CacheWriter(cache_folder, kind="simulate", fps=job.fps, frame_start=job.frame_start, frame_end=job.frame_end,
                         point_sets=sets, job=job.name)
    try:
        cfg = config_from_settings(job.solver)
        if arch is not None and arch != "auto":
            cfg.arch = arch
        elif arch == "auto":
            cfg.arch = "auto"
        model = model_from_job(job, cfg)
        ev = writer.events.emit("resolution", **resolution_report(model.x0, model.dx, cfg.grid_resolution).summary())
        if progress is not None:
            progress(ev)
        control = control_from_job(job)
        frames = job.num_frames - 1
        tearing = Tearing(model.x0)
        sim = Rollout(model, control, 1.0 / job.fps, frames, cfg)
        offsets = np.cumsum([0] + [len(ps.rest_positions) for ps in job.point_sets])
        writer.events.emit("start", frames=job.num_frames, particles=model.num_particles, tracers=model.num_tracers,
                           arch=sim.solver.arch, precision=cfg.precision, grid=list(model.grid_shape), dx=model.dx,
                           substeps_per_frame=sim.substeps[0])

        def write(index: int, x: np.ndarray) -> None:
            frame = job.frame_start + index
            tearing.update(frame, x)
            data: dict[str, dict[str, np.ndarray]] = {"particles": {"positions": x}}
            tx, tF = sim.solver.read_tracers() if model.num_tracers else (np.zeros((0, 3)), np.zeros((0, 3, 3)))
            for i, ps in enumerate(job.point_sets):
                sl = slice(offsets[i], offsets[i + 1])
                entry = {"positions": tx[sl]}
                if ps.rest_rotations is not None or ps.rest_scales is not None:
                    rot = ps.rest_rotations if ps.rest_rotations is not None else np.tile([1.0, 0, 0, 0], (len(tx[sl]), 1))
                    scl = ps.rest_scales if ps.rest_scales is not None else np.ones((len(tx[sl]), 3))
                    q, log_s = deform_gaussians(rot, np.log(scl), tF[sl])
                    if ps.rest_rotations is not None:
                        entry["rotations"] = q
                    if ps.rest_scales is not None:
                        entry["scales"] = np.exp(log_s)
                data[ps.name] = entry
            writer.write_frame(frame, data)
            writer.events.emit("frame", frame=frame)
            ev = writer.events.emit("progress", frame=frame, frames=job.num_frames, done=index + 1,
                                    fraction=(index + 1) / job.num_frames, substeps_per_frame=sim.substeps[min(index, frames - 1)]
                                    if frames else 0)
            if progress is not None:
                progress(ev)

        write(0, model.x0)
        stopped = False

        def on_frame(index: int, state: State) -> bool:
            nonlocal stopped
            write(index, state.x)
            stopped = bool(should_stop and should_stop())
            return stopped

        if frames > 0 and not (should_stop and should_stop()):
            sim.forward(tracers=True, on_frame=on_frame)
        elif frames > 0:
            stopped = True
        ev = writer.events.emit("tearing", **tearing.summary())
        if progress is not None:
            progress(ev)
        if stopped:
            writer.events.emit("cancelled")
            writer.finish("cancelled", "stopped by request")
        else:
            writer.finish("complete")
    except BaseException as e:
        msg = f"{type(e).__name__}: {e}" if not isinstance(e, KeyboardInterrupt) else "interrupted"
        writer.events.emit("error", message=msg)
        writer.finish("failed" if not isinstance(e, KeyboardInterrupt) else "cancelled", msg)
        raise
