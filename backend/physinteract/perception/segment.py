"""SAM 2 silhouettes and contact regions, image by image or propagated through a video.

Pixel coordinates are (x right, y down) in the input image, in pixels; boxes are (x0, y0, x1, y1).
The model is never downloaded: its checkpoint is found by ``perception.models.sam2_checkpoint`` and
read with ``torch.load(..., weights_only=True)`` (no unpickling); the network is built from the
sam2 package's yaml config (or one placed beside the checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from physinteract.perception import models

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) px
MASK_PROMPT_LOGIT = 10.0  # logit given to inside (+) and outside (-) pixels of a mask prompt
IMG_MEAN = (0.485, 0.456, 0.406)  # SAM 2's input normalisation (RGB in [0, 1])
IMG_STD = (0.229, 0.224, 0.225)


def prompt_from_mask(mask: np.ndarray, num_points: int = 3) -> tuple[Box, np.ndarray, np.ndarray]:
    """An automatic SAM prompt from a silhouette ``mask`` [H, W] bool (e.g. the projected static object).

    Returns (box, points [P, 2] px (x, y), labels [P] int, all 1 = foreground). The box bounds the mask's
    pixels; the points lie deep inside it: the pixel farthest from the boundary (distance transform, image
    edges count as boundary), then farthest-point picks among pixels at least half as deep, so the points
    spread over the object while keeping away from its outline.
    """
    import cv2

    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2 or not mask.any():
        raise ValueError(f"prompt_from_mask needs a non-empty [H, W] mask, got shape {mask.shape} with {int(mask.sum())} pixels")
    ys, xs = np.nonzero(mask)
    box: Box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
    padded = np.pad(mask.astype(np.uint8), 1)
    depth = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]  # px to the nearest outside pixel
    deep = depth >= 0.5 * depth.max()
    cand = np.stack(np.nonzero(deep)[::-1], axis=1).astype(np.float64)  # [C, 2] (x, y)
    first = np.unravel_index(int(np.argmax(depth)), depth.shape)
    chosen = [np.array([first[1], first[0]], dtype=np.float64)]
    nearest = np.linalg.norm(cand - chosen[0], axis=1)
    while len(chosen) < min(num_points, len(cand)):
        k = int(np.argmax(nearest))
        if nearest[k] <= 0:
            break
        chosen.append(cand[k])
        nearest = np.minimum(nearest, np.linalg.norm(cand - cand[k], axis=1))
    points = np.stack(chosen)
    return box, points, np.ones(len(points), dtype=np.int64)


def _config(config: str | Path) -> Any:
    """The OmegaConf config: a yaml file path, or a config name inside the sam2 package."""
    import sam2  # type: ignore[import-untyped]
    from omegaconf import OmegaConf

    path = Path(config)
    if not path.is_file():
        path = Path(sam2.__file__).parent / str(config)
    if not path.is_file():
        raise ValueError(f"SAM 2 config {config} is neither a yaml file nor a config of the sam2 package")
    return OmegaConf.load(path)


class Segmenter:
    """SAM 2 image and video segmentation on one device.

    Args:
        model: a folder holding a SAM 2 checkpoint (*.pt, optionally its yaml), a .pt file, or a hub id
            found in the hub cache; default: models.MODELS["sam2"] through env vars and the cache.
        config: the sam2 package config (or a yaml path) used when the checkpoint implies none.
        device: torch device.
        checkpoint: an explicit .pt file (overrides ``model``).
        allow_random: when no checkpoint is found, build the network with RANDOM weights instead of
            raising. For tests of the code paths only: its masks mean nothing.
        image_size: the network's input side in px (default: the config's, 1024 for released models;
            tests use small sizes for speed).

    Raises:
        RuntimeError: no checkpoint (with the placement instructions), or one that does not fit the config.
    """

    def __init__(
        self,
        model: str | None = None,
        config: str = "configs/sam2.1/sam2.1_hiera_t.yaml",
        device: str = "cpu",
        checkpoint: str | Path | None = None,
        allow_random: bool = False,
        image_size: int | None = None,
    ) -> None:
        import torch
        from hydra.utils import instantiate
        from omegaconf import OmegaConf
        from sam2.sam2_image_predictor import SAM2ImagePredictor  # type: ignore[import-untyped]

        if checkpoint is not None:
            if not Path(checkpoint).is_file():
                raise RuntimeError(f"SAM 2 checkpoint {checkpoint} does not exist")
            found: models.Sam2Checkpoint | None = models.Sam2Checkpoint(Path(checkpoint), None)
        else:
            found = models.sam2_checkpoint(model)
        if found is None and not allow_random:
            folder = models.locate("sam2", model)
            empty = f"{folder} holds no SAM 2 checkpoint (*.pt). " if folder else ""
            raise RuntimeError(empty + models.missing_message("sam2"))
        self.checkpoint: Path | None = found.checkpoint if found else None
        self.config = (found.config if found and found.config else None) or config
        self.random = found is None

        cfg = _config(self.config)
        overrides: dict[str, Any] = {
            "model._target_": "sam2.sam2_video_predictor.SAM2VideoPredictor",
            # as sam2's own builders: fall back to multi-mask output when a single mask is unstable
            "model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability": True,
            "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": 0.05,
            "model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": 0.98,
            "model.binarize_mask_from_pts_for_mem_enc": True,
            "model.fill_hole_area": 0,  # hole filling needs sam2's CUDA extension
        }
        if image_size is not None:
            overrides["model.image_size"] = int(image_size)
        for key, value in overrides.items():
            OmegaConf.update(cfg, key, value, force_add=True)
        OmegaConf.resolve(cfg)
        net = instantiate(cfg.model, _recursive_=True)
        if self.checkpoint is not None:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
            state = state.get("model", state) if isinstance(state, dict) else state
            missing, unexpected = net.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise RuntimeError(
                    f"SAM 2 checkpoint {self.checkpoint} does not fit config {self.config}: "
                    f"missing {list(missing)[:3]}..., unexpected {list(unexpected)[:3]}..."
                )
        self.net = net.to(device).eval()
        self.device = device
        self.image_size = int(self.net.image_size)
        self.image_predictor = SAM2ImagePredictor(self.net)
        s = self.image_size
        self.image_predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]

    def _low_res_logits(self, mask: np.ndarray) -> np.ndarray:
        """A bool mask [H, W] as SAM's low-resolution mask-prompt logits [1, S/4, S/4] (the input is squashed to S x S)."""
        import cv2

        side = self.image_size // 4
        small = cv2.resize(mask.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA) >= 0.5
        return np.where(small, MASK_PROMPT_LOGIT, -MASK_PROMPT_LOGIT)[None].astype(np.float32)

    def segment_image(
        self,
        image: np.ndarray,  # [H, W, 3] uint8 RGB
        box: Box | None = None,
        points: np.ndarray | None = None,  # [P, 2] px (x right, y down)
        labels: np.ndarray | None = None,  # [P] 1 foreground, 0 background
        mask_prompt: np.ndarray | None = None,  # [H, W] bool, a previous or projected silhouette
    ) -> np.ndarray:
        """The object's mask [H, W] bool in one image from a box, points and/or a mask prompt.

        A lone point is ambiguous: SAM's three candidate masks are made and the best scored kept.
        """
        import torch

        image = _check_frames(np.asarray(image)[None], "image")[0]
        pts, lbl = _check_points(points, labels)
        if box is None and pts is None and mask_prompt is None:
            raise ValueError("segment_image needs a prompt: a box, points or a mask")
        mask_input = None
        if mask_prompt is not None:
            mask_input = self._low_res_logits(_check_mask(mask_prompt, image.shape[:2]))
        multimask = box is None and mask_input is None and pts is not None and len(pts) == 1
        with torch.inference_mode():
            self.image_predictor.set_image(image)
            masks, scores, _ = self.image_predictor.predict(
                point_coords=pts, point_labels=lbl, box=None if box is None else np.asarray(box, dtype=np.float32),
                mask_input=mask_input, multimask_output=multimask,
            )
        self.image_predictor.reset_predictor()
        return np.asarray(masks[int(np.argmax(scores))]) > 0

    def _init_video_state(self, frames: np.ndarray) -> dict:
        """sam2's inference state for in-memory ``frames`` [T, H, W, 3] uint8 (no JPEG folder).

        sam2's ``init_state`` reads frames through ``load_video_frames`` (JPEG folders or mp4 via decord);
        for this one call its module's loader is replaced by one returning our frames, resized to the
        network's S x S and normalised exactly as sam2 does. Everything else is sam2's own state set-up.
        """
        from unittest import mock

        import torch
        import torch.nn.functional as F
        from sam2 import sam2_video_predictor  # type: ignore[import-untyped]

        t, h, w, _ = frames.shape
        s = self.image_size

        def load_frames(**_: Any) -> tuple[Any, int, int]:
            x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
            x = torch.cat([F.interpolate(x[i:i + 16], size=(s, s), mode="bilinear", antialias=True, align_corners=False)
                           for i in range(0, t, 16)])
            mean = torch.tensor(IMG_MEAN)[:, None, None]
            std = torch.tensor(IMG_STD)[:, None, None]
            return (x - mean) / std, h, w

        with mock.patch.object(sam2_video_predictor, "load_video_frames", load_frames):
            return self.net.init_state(video_path="<in-memory frames>", offload_video_to_cpu=True)

    def segment_video(
        self,
        frames: np.ndarray,  # [T, H, W, 3] uint8 RGB
        box: Box | None = None,
        points: np.ndarray | None = None,  # [P, 2] px on frame 0
        labels: np.ndarray | None = None,  # [P]
        mask: np.ndarray | None = None,  # [H, W] bool prompt on frame 0
        progress: Callable[[int, int], None] | None = None,  # (frames done, total)
    ) -> np.ndarray:
        """The object's masks [T, H, W] bool, prompted on frame 0 and propagated by SAM 2's memory.

        Give either a mask or a box and/or points (SAM 2 takes one kind per frame).
        """
        import torch

        frames = _check_frames(np.asarray(frames), "frames")
        pts, lbl = _check_points(points, labels)
        if mask is not None and (box is not None or pts is not None):
            raise ValueError("segment_video takes either a mask prompt or a box/points prompt, not both")
        if mask is None and box is None and pts is None:
            raise ValueError("segment_video needs a prompt on frame 0: a box, points or a mask")
        t = len(frames)
        out = np.zeros(frames.shape[:3], dtype=bool)
        with torch.inference_mode():
            state = self._init_video_state(frames)
            if mask is not None:
                self.net.add_new_mask(state, frame_idx=0, obj_id=1, mask=torch.from_numpy(_check_mask(mask, frames.shape[1:3])))
            else:
                self.net.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=pts, labels=lbl,
                                               box=None if box is None else np.asarray(box, dtype=np.float32))
            done = 0
            for idx, _, logits in self.net.propagate_in_video(state):
                out[idx] = (logits[0, 0] > 0).cpu().numpy()
                done += 1
                if progress is not None:
                    progress(done, t)
        return out


def _check_frames(frames: np.ndarray, name: str) -> np.ndarray:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"{name} must be uint8 RGB [H, W, 3] per frame, got {frames.dtype} of shape {frames.shape}")
    return frames


def _check_points(points: np.ndarray | None, labels: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    if points is None:
        if labels is not None:
            raise ValueError("labels given without points")
        return None, None
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    lbl = np.ones(len(pts), dtype=np.int32) if labels is None else np.asarray(labels, dtype=np.int32).reshape(-1)
    if len(lbl) != len(pts):
        raise ValueError(f"{len(pts)} points but {len(lbl)} labels")
    return pts, lbl


def _check_mask(mask: np.ndarray, hw: tuple[int, ...]) -> np.ndarray:
    mask = np.asarray(mask).astype(bool)
    if mask.shape != tuple(hw):
        raise ValueError(f"mask prompt has shape {mask.shape}, the image is {tuple(hw)}")
    return mask
