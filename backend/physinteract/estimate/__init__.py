"""Joint material / interaction estimation by analysis-by-synthesis.

Kept light: importing this package imports neither torch nor taichi; use the
submodules (``physinteract.estimate.losses``, ...) which import what they need.
"""
