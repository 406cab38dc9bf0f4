"""PhysInteract backend: differentiable MPM material and interaction estimation.

Importing this package is cheap and never imports taichi, torch or bpy: the
heavy modules (``physinteract.mpm``, ``physinteract.render``, ...) import them
when they are used. ``physinteract.contract`` is the numpy-only job/cache
contract shared with the Blender add-on.
"""

__version__ = "0.1.0"
