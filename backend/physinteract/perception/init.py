"""The initialisation stage (the paper's Section 3.2): from a job and its video to an initial interaction.

Stages, in order (each reported as an event): video -> vlm (interaction type) -> pose (camera fit by
differentiable rendering) -> segment (SAM 2 silhouettes and the contact region on the first frame) ->
contact (back-projection, Eq. 2, and the contact particles) -> track (LK or mask centroids, lifted to 3D)
-> write (the job, atomically, at the very end: a failure leaves the previous job as it was).

Events are JSON lines {"event": "start"|"stage"|"progress"|"done"|"error", "time", "stage", "fraction",
"message", ...} appended to ``InitOptions.events`` (default JOB_DIR/init_events.jsonl).
Units: SI (m, s), pixels; world frame Blender's (+Z up); cameras OpenCV.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physinteract import contract

EVENTS_FILE = "init_events.jsonl"
STAGES = ("video", "vlm", "pose", "segment", "contact", "track", "write")


@dataclass
class InitOptions:
    """What ``physinteract init`` does (the command's options).

    video: a video file or frame folder; None = the job's own video.frames.  start / end / stride / max_size:
        the frame range (source frame numbers, end inclusive), step and downscale (px, longest side).
    vlm / sam2: model folder or hub id (None = the default locations, see perception.models).
    interaction: the user's interaction type, used when the VLM is missing or unsure.
    contact_box (x0, y0, x1, y1) / contact_point (u, v) px on the first frame, or contact_mask (a PNG): the contact
        region's prompt; none = the job's current contact particles, projected.
    keyframe_spacing: frames between trajectory keyframes.  pose_fit: fit the camera (else keep the job's).
    events: the JSON-lines progress file.  device: torch device.  sam2_image_size: SAM 2 input side (None = the
        model's own; tests use a small one).  pose: settings of the camera fit (None = defaults).
    """

    video: Path | None = None
    start: int = 0
    end: int | None = None
    stride: int = 1
    max_size: int | None = None
    vlm: str | None = None
    sam2: str | None = None
    interaction: str | None = None
    contact_box: tuple[float, float, float, float] | None = None
    contact_point: tuple[float, float] | None = None
    contact_mask: Path | None = None
    keyframe_spacing: int = 2
    pose_fit: bool = True
    events: Path | None = None
    device: str = "cpu"
    sam2_image_size: int | None = None
    pose: Any = None


@dataclass
class InitResult:
    """What was written: the job, the interaction guess, contact indices [K], keyframes (times [M] s, values [M, 3]),
    the fitted camera (world_to_camera [4, 4], K), the tracker used and the metadata.init summary."""

    job: contract.Job
    interaction: Any
    contact: np.ndarray
    trajectory_times: np.ndarray
    trajectory: np.ndarray
    world_to_camera: np.ndarray
    K: np.ndarray
    tracker: str
    summary: dict[str, Any] = field(default_factory=dict)


class InitEvents:
    """Writes events through ``contract.EventLog`` (one flushed JSON line each; none without a path) and forwards
    each record to ``progress``."""

    def __init__(self, path: Path | None, progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.log = contract.EventLog(path) if path is not None else None
        self.progress = progress

    def emit(self, event: str, **fields: Any) -> None:
        rec = self.log.emit(event, **fields) if self.log is not None else {"event": event, "time": time.time(), **fields}
        if self.progress is not None:
            self.progress(rec)


DEFAULT_INTERACTIONS = {
    "point_adherent": dict(drive="velocity", collider_shape="none"),
    "point_non_adherent": dict(drive="velocity", collider_shape="sphere"),
    "surface_non_adherent": dict(drive="velocity", collider_shape="plane"),
}


def run_init(job_dir: str | Path, options: InitOptions | None = None,
             progress: Callable[[dict[str, Any]], None] | None = None) -> InitResult:
    """Run every stage on the job in ``job_dir`` and write the result into it (see the module docstring).

    Raises ContractError / ValueError / FileNotFoundError / RuntimeError with a message naming the file or
    field at fault; an "error" event is emitted first, and nothing of the job is changed.
    """
    opts = options or InitOptions()
    job_dir = Path(job_dir)
    events_path = opts.events if opts.events is not None else (job_dir / EVENTS_FILE if job_dir.is_dir() else None)
    ev = InitEvents(events_path, progress)
    ev.emit("start", job=str(job_dir), message=f"initialising {job_dir}")
    stage = ["video"]
    try:
        return _run(job_dir, opts, ev, stage)
    except Exception as e:
        ev.emit("error", stage=stage[0], message=str(e))
        raise


def _run(job_dir: Path, opts: InitOptions, ev: InitEvents, stage: list[str]) -> InitResult:
    from physinteract.imageio import read_png

    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def begin(name: str, message: str) -> None:
        if stage[0] != name and stage[0] in STAGES:
            timings[stage[0]] = round(time.perf_counter() - clock[0], 3)
        stage[0] = name
        clock[0] = time.perf_counter()
        ev.emit("stage", stage=name, fraction=STAGES.index(name) / len(STAGES), message=message)

    job = contract.read_job(job_dir)
    if job.camera is None:
        raise ValueError(f"{job_dir / contract.JOB_MANIFEST}: field 'camera': init needs a start camera (the Blender camera)")

    # ---------------------------------------------------------------- video
    begin("video", "reading the video")
    from_file = opts.video is not None
    if from_file:
        from physinteract.perception.video import read_video

        vid = read_video(opts.video, start=opts.start, end=opts.end, stride=opts.stride, max_size=opts.max_size)  # type: ignore[arg-type]
        frames = vid.frames
        fps = float(vid.fps) / opts.stride
    else:
        if job.video is None or not job.video.frames:
            raise ValueError(f"{job_dir / contract.JOB_MANIFEST}: field 'video.frames': the job has no video; give one with --video PATH")
        imgs = [read_png(contract.resolve_path(job_dir, p)) for p in job.video.frames]
        frames = np.stack([np.round(np.clip(i if i.ndim == 3 else np.repeat(i[..., None], 3, 2), 0, 1) * 255).astype(np.uint8)
                           for i in imgs])
        fps = job.fps
    T, H, W, _ = frames.shape
    if T < 2:
        raise ValueError(f"{opts.video or job_dir}: the video has {T} frame(s); init needs at least 2")
    cam = job.camera
    K = contract.scale_intrinsics(cam.K, (cam.width, cam.height), (W, H))  # the video may be downscaled
    w2c0 = np.asarray(cam.world_to_camera[0], np.float64)
    old_masks = None
    if not from_file and job.video is not None and job.video.masks:
        old_masks = np.stack([_mask(read_png(contract.resolve_path(job_dir, p))) for p in job.video.masks])
    ev.emit("progress", stage="video", fraction=1.0, message=f"{T} frames of {W}x{H} px at {fps:g} fps")

    # ---------------------------------------------------------------- vlm
    begin("vlm", "asking the vision-language model for the interaction type")
    from physinteract.perception.vlm import classify_interaction

    guess = classify_interaction(frames, model=opts.vlm, fallback=opts.interaction, device=opts.device)
    ev.emit("progress", stage="vlm", fraction=1.0, message=guess.message, interaction_type=guess.type, source=guess.source,
            confidence=guess.confidence)

    # ---------------------------------------------------------------- pose
    begin("pose", "fitting the camera to the first frame")
    gaussians = _rest_gaussians(job, frames[0])
    pose_summary: dict[str, Any] = {"fitted": False}
    if opts.pose_fit:
        from physinteract.perception.pose import PoseFitConfig, fit_camera

        def pose_progress(step: int, total: int, loss: float) -> None:
            if step % 10 == 0 or step == total:
                ev.emit("progress", stage="pose", fraction=step / total, loss=loss, message=f"pose step {step}/{total}")

        fit = fit_camera(gaussians, K, w2c0, frames[:1], None if old_masks is None else old_masks[:1],
                         opts.pose or PoseFitConfig(device=opts.device), progress=pose_progress)
        w2c, K = fit.world_to_camera, fit.K
        pose_summary = {"fitted": True, **fit.summary()}
    else:
        w2c = w2c0
    alpha0, depth0 = _render_alpha_depth(gaussians, K, w2c, W, H)
    object_mask0 = alpha0 > 0.5
    if not object_mask0.any():
        raise ValueError(f"{job_dir / 'camera_world_to_camera.npy'}: field 'camera': the object does not project into the "
                         f"{W}x{H} image from this camera")

    # ---------------------------------------------------------------- segment
    begin("segment", "segmenting the object and the contact region")
    user_mask = None
    if opts.contact_mask is not None:
        user_mask = _mask(read_png(opts.contact_mask))
        if user_mask.shape != (H, W):
            raise ValueError(f"{opts.contact_mask}: field 'contact_mask': expected a {W}x{H} mask (the video's size), "
                             f"got {user_mask.shape[1]}x{user_mask.shape[0]}")
    segmenter = _segmenter(opts, ev, have_fallback=old_masks is not None or user_mask is not None)
    sam_masks = None
    contact_masks = None
    if segmenter is not None:
        from physinteract.perception.segment import prompt_from_mask

        box, pts, labels = prompt_from_mask(object_mask0)
        sam_masks = segmenter.segment_video(frames, box=box, points=pts, labels=labels,
                                            progress=lambda d, n: ev.emit("progress", stage="segment", fraction=0.5 * d / n,
                                                                          message=f"object silhouette {d}/{n}"))
        if user_mask is not None:
            contact0 = user_mask
        elif opts.contact_box is not None:
            contact0 = segmenter.segment_image(frames[0], box=opts.contact_box)
        elif opts.contact_point is not None:
            contact0 = segmenter.segment_image(frames[0], points=np.array([opts.contact_point]), labels=np.array([1]))
        else:
            contact0 = _projected_contact(job, K, w2c, W, H, object_mask0)
        contact0 = contact0 & object_mask0
        if not contact0.any():
            contact0 = _prompt_fallback(opts, job, K, w2c, W, H, object_mask0)
        contact_masks = segmenter.segment_video(frames, mask=contact0,
                                                progress=lambda d, n: ev.emit("progress", stage="segment", fraction=0.5 + 0.5 * d / n,
                                                                              message=f"contact region {d}/{n}"))
    else:
        contact0 = user_mask if user_mask is not None else _prompt_fallback(opts, job, K, w2c, W, H, object_mask0)
        contact0 = contact0 & object_mask0

    # ---------------------------------------------------------------- contact
    begin("contact", "back-projecting the contact region")
    from physinteract.perception.contact import backproject, select_contact

    points = backproject(contact0, depth0, K, w2c)
    if len(points) == 0:
        raise ValueError("the contact region does not overlap the object on the first frame; give --contact-box, --contact-point "
                         "or --contact-mask on the object")
    # a grasp holds the region itself: the share of each particle's footprint in the mask (None: each whole)
    grasp = guess.type == "point_adherent"
    picked = select_contact(job.particles, job.labels, points, mask=contact0, depth=depth0, K=K, world_to_camera=w2c,
                            weights=grasp)
    contact, held = picked if grasp else (picked, None)
    ev.emit("progress", stage="contact", fraction=1.0, message=f"{len(contact)} contact particles from {len(points)} pixels")

    # ---------------------------------------------------------------- track
    begin("track", "tracking the contact region")
    from physinteract.perception.track import choose_track, keyframes, lift_tracks, track_points

    seeds = _track_seeds(frames[0], contact0)
    tracks, valid = track_points(frames, seeds) if len(seeds) else (None, None)
    choice = choose_track(tracks, valid, contact_masks, principal_point=K[:2, 2])
    anchor = points.mean(0)
    lifted = lift_tracks(choice.centre, anchor, K, w2c, choice.scale)
    displacement = lifted - lifted[0]
    if guess.type == "point_adherent":
        origin = (held @ job.particles[contact]) / held.sum() if held is not None else job.particles[contact].mean(0)
    elif guess.type == "point_non_adherent":
        out = anchor - job.particles.mean(0)
        origin = anchor + job.interaction.collider_radius * out / max(float(np.linalg.norm(out)), 1e-12)
    else:
        origin = anchor
    times = np.arange(T) / fps
    kt, kv = keyframes(times, origin + displacement, opts.keyframe_spacing)
    ev.emit("progress", stage="track", fraction=1.0, message=choice.message, tracker=choice.method)

    # ---------------------------------------------------------------- write
    begin("write", "writing the job")
    new = copy.deepcopy(job)
    it = new.interaction
    it.type = guess.type
    for k, v in DEFAULT_INTERACTIONS[guess.type].items():
        setattr(it, k, v)
    new.contact = contact
    new.contact_weights = held
    new.trajectory_times, new.trajectory = kt, kv
    if from_file:
        new.fps = fps
        new.frame_end = new.frame_start + T - 1
    new.camera = contract.Camera(W, H, K, np.tile(w2c, (T, 1, 1)))
    from physinteract.imageio import write_png

    if from_file:
        names = [f"video/frame_{i:04d}.png" for i in range(T)]
        for name, img in zip(names, frames):
            write_png(job_dir / name, img.astype(np.float64) / 255.0)
        new.video = contract.Video(frames=names, masks=[])
    if sam_masks is not None:
        names = [f"masks/sam2_{i:04d}.png" for i in range(T)]
        for name, m in zip(names, sam_masks):
            write_png(job_dir / name, m.astype(np.float64))
        assert new.video is not None
        new.video.masks = names
    elif from_file:
        new.video.masks = []  # type: ignore[union-attr]
    timings["write"] = 0.0
    summary = {
        "interaction": {"type": guess.type, "temporal": guess.temporal, "source": guess.source, "confidence": guess.confidence,
                        "message": guess.message, "answer": guess.answer},
        "pose": pose_summary,
        "tracker": {"method": choice.method, "message": choice.message, "valid_fraction": choice.valid_fraction},
        "segmentation": "sam2" if segmenter is not None else "given masks (SAM 2 missing)",
        "contact_count": int(len(contact)),
        "keyframes": int(len(kt)),
        "timings_s": timings,
    }
    new.metadata = {**new.metadata, "init": summary}
    t0 = time.perf_counter()
    contract.write_job(new, job_dir)
    timings["write"] = round(time.perf_counter() - t0, 3)
    ev.emit("done", stage="write", fraction=1.0, message=f"{guess.type}, {len(contact)} contact particles, {len(kt)} keyframes",
            interaction_type=guess.type, contact_count=int(len(contact)), keyframes=int(len(kt)), tracker=choice.method)
    return InitResult(new, guess, contact, kt, kv, w2c, K, choice.method, summary)


def _mask(img: np.ndarray) -> np.ndarray:
    return (img.mean(axis=2) if img.ndim == 3 else img) > 0.5


def _rest_gaussians(job: contract.Job, frame0: np.ndarray) -> Any:
    """The object's Gaussians at rest (the job's coloured point set, or its surface particles coloured from frame 0)."""
    import torch

    from physinteract.estimate.scene import Observation, binding_from_job
    from physinteract.render import GaussianBatch

    rgb = torch.as_tensor(frame0[None].astype(np.float32) / 255.0)
    b = binding_from_job(job, Observation(rgb, None, rgb[0, 0, 0]))
    return GaussianBatch(means=b.rest_means, colors=b.colors, opacities=b.opacities, covariances=b.covariances)


def _render_alpha_depth(gaussians: Any, K: np.ndarray, w2c: np.ndarray, W: int, H: int) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from physinteract.render import Camera, render

    with torch.no_grad():
        out = render(gaussians, Camera.from_numpy(K, w2c, W, H, dtype=gaussians.means.dtype))
    return out.alpha.double().numpy(), out.depth.double().numpy()


def _segmenter(opts: InitOptions, ev: InitEvents, have_fallback: bool) -> Any:
    """SAM 2, or None when it is missing and masks were given (said in an event); missing without masks is an error."""
    from physinteract.perception import models

    try:
        from physinteract.perception.segment import Segmenter

        return Segmenter(model=opts.sam2, device=opts.device, image_size=opts.sam2_image_size)
    except (RuntimeError, ImportError) as e:
        if not have_fallback:
            raise RuntimeError(f"{e}\n{models.missing_message('sam2')}\n(or give --contact-mask PNG, with silhouettes in the job)") from e
        ev.emit("stage", stage="segment", fraction=STAGES.index("segment") / len(STAGES),
                message=f"SAM 2 is not available ({str(e).splitlines()[0]}); using the given masks instead")
        return None


def _projected_contact(job: contract.Job, K: np.ndarray, w2c: np.ndarray, W: int, H: int, obj: np.ndarray) -> np.ndarray:
    """The job's current contact particles projected into the first frame (a disc of a particle spacing per particle)."""
    import cv2

    from physinteract.perception.contact import particle_spacing

    m = np.zeros((H, W), np.uint8)
    if len(job.contact) == 0:
        return m.astype(bool)
    uv, z = contract.project(K, w2c, job.particles[job.contact])
    r = max(1, int(round(particle_spacing(job.particles) * float(K[0, 0]) / max(float(np.median(z)), 1e-9))))
    for u, v in uv[z > 0]:
        cv2.circle(m, (int(np.floor(u)), int(np.floor(v))), r, (1,), -1)
    return m.astype(bool) & obj


def _prompt_fallback(opts: InitOptions, job: contract.Job, K: np.ndarray, w2c: np.ndarray, W: int, H: int,
                     obj: np.ndarray) -> np.ndarray:
    """A contact mask without SAM 2 (or when its mask misses the object): the box or a disc at the point, cut to the
    object; else the job's contact set projected."""
    m = np.zeros((H, W), bool)
    if opts.contact_box is not None:
        x0, y0, x1, y1 = opts.contact_box
        m[max(0, int(y0)):int(np.ceil(y1)), max(0, int(x0)):int(np.ceil(x1))] = True
    elif opts.contact_point is not None:
        vv, uu = np.mgrid[0:H, 0:W] + 0.5
        m = (uu - opts.contact_point[0]) ** 2 + (vv - opts.contact_point[1]) ** 2 <= (0.02 * max(W, H)) ** 2
    else:
        m = _projected_contact(job, K, w2c, W, H, obj)
    if not (m & obj).any():
        raise ValueError("the contact prompt misses the object on the first frame; give --contact-box, --contact-point or "
                         "--contact-mask on the object")
    return m & obj


def _track_seeds(frame0: np.ndarray, mask: np.ndarray, count: int = 40) -> np.ndarray:
    """Points to track [P, 2] px: corners (Shi-Tomasi) inside the contact mask, else a grid over it."""
    import cv2

    grey = cv2.cvtColor(frame0, cv2.COLOR_RGB2GRAY)
    corners = cv2.goodFeaturesToTrack(grey, count, 0.01, 2, mask=mask.astype(np.uint8))
    if corners is not None and len(corners) >= 3:
        return corners.reshape(-1, 2).astype(np.float64) + 0.5
    v, u = np.nonzero(mask)
    if len(u) == 0:
        return np.zeros((0, 2))
    pick = np.linspace(0, len(u) - 1, min(count, len(u))).astype(int)
    return np.stack([u[pick] + 0.5, v[pick] + 0.5], 1)
