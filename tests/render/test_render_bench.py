"""The render benchmark runs and its scene is what it claims (a ball spanning half the image width)."""

from __future__ import annotations

import argparse
import math

from physinteract.render import bench


def test_bench_ball_covers_a_disc_of_half_the_image_width():
    """Silhouette area of the benchmark ball ~ pi (W/4)^2 / W^2 = pi/16 of the image, times are reported."""
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    result = bench.run(p.parse_args(["--counts", "400", "--sizes", "48", "--repeats", "1", "--reference"]))
    (case,) = result["cases"]
    assert abs(case["coverage"] - math.pi / 16) < 0.05
    for key in ("forward_s", "forward_backward_s", "reference_forward_s", "reference_forward_backward_s"):
        assert case[key] > 0
