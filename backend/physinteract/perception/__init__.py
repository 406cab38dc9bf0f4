"""Perception: the paper's initialisation stage (VLM, SAM 2, pose, tracking).

Heavy dependencies (transformers, sam2, torch) are imported by the modules that
use them, never here.
"""
