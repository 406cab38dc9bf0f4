"""Objects to particles, and particles back to what is rendered (numpy only, no bpy).

Public API:
  PLY I/O     read_gaussian_ply, write_gaussian_ply, GaussianCloud, read_mesh,
              write_particles_ply, read_particles_ply
  filling     FillConfig, Particles, fill_mesh, fill_gaussians, nearest_surface_material
  deforming   deform_gaussians, interpolate_from_particles, covariance,
              rotation_scale_from_covariance, quaternion_from_matrix, matrix_from_quaternion
  helpers     winding_number_mesh, winding_number_points, knn
Units are metres; frames are Blender's world frame (+Z up).
"""

from physinteract.geometry.deform import (
    covariance,
    deform_gaussians,
    estimate_deformation_gradient,
    interpolate_from_particles,
    matrix_from_quaternion,
    quaternion_from_matrix,
    rotation_scale_from_covariance,
)
from physinteract.geometry.fill import FillConfig, Particles, fill_gaussians, fill_mesh, nearest_surface_material
from physinteract.geometry.gaussians import GaussianCloud, read_gaussian_ply, write_gaussian_ply
from physinteract.geometry.mesh_io import read_mesh
from physinteract.geometry.neighbors import knn
from physinteract.geometry.particles_io import read_particles_ply, write_particles_ply
from physinteract.geometry.winding import winding_number_mesh, winding_number_points

__all__ = [
    "FillConfig", "GaussianCloud", "Particles", "covariance", "deform_gaussians", "estimate_deformation_gradient",
    "fill_gaussians", "fill_mesh", "interpolate_from_particles", "knn", "matrix_from_quaternion",
    "nearest_surface_material", "quaternion_from_matrix", "read_gaussian_ply", "read_mesh", "read_particles_ply",
    "rotation_scale_from_covariance", "winding_number_mesh", "winding_number_points", "write_gaussian_ply",
    "write_particles_ply",
]
