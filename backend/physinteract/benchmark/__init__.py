"""The synthetic benchmark suite (issue 5): scenes with known material and interaction, and the runner.

Light at import: ``scenes`` and ``run`` import taichi/torch only inside the functions that simulate or render.
"""
