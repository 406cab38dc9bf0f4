"""The MLS-MPM solver: APIC/FLIP transfers, quadratic B-splines, fixed-corotated elasticity.

Transfers: p2g scatters the particles' APIC momentum m (v + C dpos) (kept as ``grid_mv``) and,
with it, the stress and force impulses; g2p gathers the new grid velocity v_pic and its gradient C,
advects x with v_pic and updates F with C. The particle's new velocity is v_pic + a (v - v_before),
v_before the gathered grid velocity before the forces and a = 1 - min(1, dt / pic_time): the FLIP
share keeps what the grid could not hold. Pure APIC (a = 0) drops that at every substep, so its
damping grows with the number of substeps (a freely vibrating bar kept 4 % of its energy over
0.4 s at cfl 0.1 and 40 % at cfl 0.4; tests/mpm/test_step_convergence.py).

One substep is ``active_block, clear_grid, compute_stress, p2g, grid_op, g2p`` in that
order: passes (ti.func loops) that the kernel ``advance`` runs in one launch (a Python-side
launch costs as much as a pass over a few thousand particles). The grid passes visit only
the active block: the box of nodes that the particles' (and, when advected, the tracers')
B-spline stencils touch in this substep, found on the device by ``active_block`` (its twin
``_active_block`` is the whole grid; tests compare them). Nodes outside the block are
neither read nor written in that substep. In the backward pass each taped substep's grid
block is kept (``tape_grid``) rather than scattered again. Particle state is
held in ``slots`` (x[s, p], ...) and never overwritten within a taped segment, so
Taichi's reverse-mode autodiff can run the kernels backwards (``rollout.py``
stores per-frame checkpoints and recomputes substeps in the backward pass).

Fixed-corotated Kirchhoff stress (Stomakhin et al. 2012; the paper's Eq. (1)):
    tau = 2 mu (F - R) F^T + lambda (J - 1) J I,   F = R S (polar),  J = det F,
    mu = E / (2 (1 + nu)),  lambda = E nu / ((1 + nu) (1 - 2 nu)).
R comes from scaled Newton iterations R <- (g R + (g R)^-T) / 2 (Higham), stopped once
converged (tests compare it with the SVD polar factor). The stress is computed in its own
pass (``compute_stress``, which keeps tau and R per slot) whose adjoint ``stress_backward``
is written by hand from the polar derivative dR = R [w]x, w = (tr(S) I - S)^-1 axial(R^T dF - dF^T R)
(``ti.svd`` is not differentiable in 3D, and an autodiffed iteration compiles slowly).
The transfers p2g / g2p also have hand-written adjoints (``p2g_backward``, ``g2p_backward``):
Taichi 1.7 autodiff is wrong for their dynamic 27-node loops and compiles for minutes when
they are unrolled. ``grid_op`` (no inner loops) is differentiated by Taichi. All adjoints
are checked against finite differences in tests/mpm/test_gradients.py.
Units SI (m, kg, s, Pa, N); world frame (+Z up).
"""

import math

import numpy as np
import taichi as ti
from taichi.lang import impl

from physinteract.mpm.config import SolverConfig
from physinteract.mpm.model import Control, Model
from physinteract.mpm.runtime import ensure_taichi

STATE_REALS = 24  # x, v, C, F of one particle in one slot
STRESS_REALS = 18  # tau and R of one particle in one slot
GRID_NODE_REALS = 11  # m, contact, mv, v_in, v_out of one grid node (and their adjoints)
TAPE_NODE_REALS = GRID_NODE_REALS  # the tape keeps a node whole
TAPE_NODES_MAX = 1 << 20  # grid nodes the backward tape may hold (11 reals each), over all taped substeps
GRIP_CFL = 0.4  # the grasp's time scale in Courant numbers (grip_time): the grip of a substep at cfl 0.4
COLLIDER_CODES = {"none": 0, "sphere": 1, "capsule": 2, "plane": 3}
GROUND_CODES = {"sticky": 0, "slip": 1, "separate": 2}
EPS = 1e-20


PASSES = ("active_block", "clear_grid", "compute_stress", "p2g", "grid_op", "tape_grid", "g2p")  # MPMSolver.run_pass


class SlotState:
    """A device-side State: slot ``slot`` of a solver's particle buffers at ``time`` (s)."""

    def __init__(self, solver: "MPMSolver", slot: int, time: float = 0.0) -> None:
        self.solver, self.slot, self.time = solver, slot, time

    def numpy(self):  # -> model.State
        return self.solver.read_state(self.slot, self.time)


@ti.data_oriented
class MPMSolver:
    """MLS-MPM on a dense grid over the model's domain.

    Args:
        model: particles, material and grid (fixed during a step).
        config: solver settings (defaults to ``model.config``).
        slots: particle-state buffers; a taped segment of L substeps needs L + 1.
        requires_grad: allocate adjoint fields for reverse-mode autodiff.
        restrict_grid: grid kernels visit only the active block (same results as the whole
            grid, to round-off; False visits the whole grid, the reference).
        tape_nodes: grid nodes the backward tape holds (default: twice the particles' rest block per
            taped substep, at most TAPE_NODES_MAX); taped substeps whose grid does not fit are
            recomputed in the backward pass. 0 recomputes every grid (the reference).
    """

    Config = SolverConfig

    def __init__(self, model: Model, config: SolverConfig | None = None, *, slots: int = 2, requires_grad: bool = False,
                 restrict_grid: bool = True, tape_nodes: int | None = None) -> None:
        self.model = model
        self.config = cfg = config or model.config
        self.arch = ensure_taichi(cfg.arch, cfg.precision)
        self.np_real = np.float64 if cfg.precision == "f64" else np.float32
        real = ti.f64 if cfg.precision == "f64" else ti.f32
        g = requires_grad
        self.requires_grad = g
        self.n = n = model.num_particles
        self.slots = max(2, slots)
        # the fields live in one SNode tree of their own, which release() frees (Taichi frees
        # no field by itself: every solver built in a process would stay allocated)
        self._builder = ti.FieldsBuilder()
        self._prog = impl.get_runtime().prog
        self.x = self._place(ti.Vector.field(3, real, needs_grad=g), (self.slots, n))
        self.v = self._place(ti.Vector.field(3, real, needs_grad=g), (self.slots, n))
        self.C = self._place(ti.Matrix.field(3, 3, real, needs_grad=g), (self.slots, n))
        self.F = self._place(ti.Matrix.field(3, 3, real, needs_grad=g), (self.slots, n))
        self.tau = self._place(ti.Matrix.field(3, 3, real), (self.slots, n))  # Kirchhoff stress of each slot
        self.tau_adj = self._place(ti.Matrix.field(3, 3, real), n if g else 1)  # dL/dtau of the substep being differentiated
        self.R = self._place(ti.Matrix.field(3, 3, real), (self.slots, n))  # its polar rotation (reused by stress_backward)
        self.mass = self._place(ti.field(real), n)
        self.vol = self._place(ti.field(real), n)
        self.log_E = self._place(ti.field(real, needs_grad=g), n)
        self.nu = self._place(ti.field(real, needs_grad=g), n)
        self.ext_force = self._place(ti.Vector.field(3, real), n)
        self.is_contact = self._place(ti.field(ti.i32), n)
        self.grip = self._place(ti.field(real), n)  # the share of each particle the grasp holds (0 outside the contact set)
        self.grid_shape = tuple(int(s) for s in model.grid_shape)
        self.grid_m = self._place(ti.field(real, needs_grad=g), self.grid_shape)
        self.grid_mv = self._place(ti.Vector.field(3, real, needs_grad=g), self.grid_shape)  # the particles' momentum, before forces
        self.grid_v_in = self._place(ti.Vector.field(3, real, needs_grad=g), self.grid_shape)  # momentum after the stress and forces
        self.grid_v_out = self._place(ti.Vector.field(3, real, needs_grad=g), self.grid_shape)
        self.grid_contact = self._place(ti.field(real, needs_grad=g), self.grid_shape)  # kg: the grasp's share of grid_m
        # the active block of this substep: first node, extent (nodes per axis) and node count
        self.restrict_grid = bool(restrict_grid)
        self.block_lo = self._place(ti.Vector.field(3, ti.i32), ())
        self.block_hi = self._place(ti.Vector.field(3, ti.i32), ())
        self.block_count = self._place(ti.field(ti.i32), ())
        # the backward tape: the active block of the grid of each taped substep k (after grid_op),
        # kept so the backward pass need not scatter it again; tape_saved[k] = 0 when it did not fit
        if tape_nodes is None:
            tape_nodes = min((self.slots - 1) * tape_nodes_per_substep(model), TAPE_NODES_MAX) if g else 0
        self.tape_nodes = int(tape_nodes)
        cap = max(1, self.tape_nodes)
        self.tape_m = self._place(ti.field(real), cap)
        self.tape_contact = self._place(ti.field(real), cap)
        self.tape_mv = self._place(ti.Vector.field(3, real), cap)
        self.tape_v_in = self._place(ti.Vector.field(3, real), cap)
        self.tape_v_out = self._place(ti.Vector.field(3, real), cap)
        self.tape_lo = self._place(ti.Vector.field(3, ti.i32), self.slots)
        self.tape_hi = self._place(ti.Vector.field(3, ti.i32), self.slots)
        self.tape_start = self._place(ti.field(ti.i32), self.slots + 1)  # first tape node of substep k
        self.tape_saved = self._place(ti.field(ti.i32), self.slots)
        # per-substep control: [slot, 0] collider centre, [1] collider velocity, [2] contact velocity, [3] force
        self.ctrl = self._place(ti.Vector.field(3, real, needs_grad=g), (self.slots, 4))
        # control parameters live in fields so a new Control needs no recompilation
        self.contact_mode = self._place(ti.field(ti.i32), ())
        self.inv_contact = self._place(ti.field(real), ())
        self.grip_time = self._place(ti.field(real), ())  # s: see grid_node and grip_time()
        self.collider_type = self._place(ti.field(ti.i32), ())
        self.collider_radius = self._place(ti.field(real), ())
        self.collider_friction = self._place(ti.field(real), ())
        self.collider_axis = self._place(ti.Vector.field(3, real), ())
        self.collider_normal = self._place(ti.Vector.field(3, real), ())
        # host transfer staging (one state)
        self.stage_x = self._place(ti.Vector.field(3, real), n)
        self.stage_v = self._place(ti.Vector.field(3, real), n)
        self.stage_C = self._place(ti.Matrix.field(3, 3, real), n)
        self.stage_F = self._place(ti.Matrix.field(3, 3, real), n)
        self.num_tracers = nt = model.num_tracers
        self.tracer_x = self._place(ti.Vector.field(3, real), max(1, nt))
        self.tracer_F = self._place(ti.Matrix.field(3, 3, real), max(1, nt))
        if g:
            self._builder.lazy_grad()
        self._tree: object = self._builder.finalize()
        # constants of this model, baked into the kernels
        self.dx = float(model.dx)
        self.inv_dx = 1.0 / self.dx
        self.origin = tuple(float(v) for v in model.domain_min)
        self.gravity = tuple(float(v) for v in cfg.gravity)
        self.damping = float(cfg.damping)
        self.pic_time = float(cfg.pic_time)
        # Nodes with less mass than this are treated as empty: a node at the edge of a particle's
        # stencil can receive a weight product of 1e-40, and the adjoint of v = p / m (which grows
        # as 1 / m) then overflows to inf and poisons the gradients with NaN in single precision.
        self.mass_floor = 1e-9 * float(np.min(model.mass))
        self.has_ground = cfg.ground.height is not None
        self.ground_height = float(cfg.ground.height) if cfg.ground.height is not None else 0.0
        self.ground_friction = float(cfg.ground.friction)
        self.ground_mode = GROUND_CODES[cfg.ground.mode]
        self.walls = bool(cfg.walls)
        self.wall_cells = int(cfg.wall_cells)
        self.polar_iterations = int(cfg.polar_iterations)
        # On the CPU the kernels that scatter to shared nodes run serially: uncontended plain adds
        # beat contended atomic adds several times over on few cores (and sum in a fixed order).
        # So do the loops over the active block, too short to pay for waking the thread pool.
        self.serial_loops = self.arch == "cpu"
        self.polar_tol = 1e-8 if cfg.precision == "f32" else 1e-18  # squared step (see polar_rotation)
        self._control_key: object = None
        self.generation = 0  # counts the runs that overwrite the slots (rollout.py keeps a window only within one)
        self.set_material(model.E, model.nu)
        self.mass.from_numpy(model.mass.astype(self.np_real))
        self.vol.from_numpy(model.volume.astype(self.np_real))
        self.ext_force.from_numpy(model.external_force.astype(self.np_real))
        self.write_tracers(model.tracers, np.tile(np.eye(3), (nt, 1, 1)))

    # ------------------------------------------------------------------ helpers

    def _place(self, f, shape):
        """Place field ``f`` (declared without a shape) with ``shape`` in this solver's SNode tree."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if shape:
            self._builder.dense(ti.axes(*range(len(shape))), shape).place(f)
        else:
            self._builder.place(f)
        return f

    def release(self) -> None:
        """Free this solver's fields now; the solver cannot be used afterwards. (A Taichi reset,
        ``ensure_taichi`` with other settings, has freed them already: then nothing is done.)"""
        tree, self._tree = self._tree, None
        if tree is not None and impl.get_runtime().prog is self._prog:
            tree.destroy()  # type: ignore[attr-defined]

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # Taichi already shut down (interpreter exit): nothing left to free
            pass

    @ti.func
    def origin_vec(self):
        return ti.Vector([self.origin[0], self.origin[1], self.origin[2]])

    @ti.func
    def stencil_base(self, xp):
        """Grid position (cells) of xp (m) and the first node of its 3 x 3 x 3 stencil (clamped into the grid)."""
        Xp = (xp - self.origin_vec()) * self.inv_dx
        hi = ti.Vector([self.grid_shape[0] - 3, self.grid_shape[1] - 3, self.grid_shape[2] - 3])
        return Xp, ti.max(ti.min(ti.floor(Xp - 0.5, ti.i32), hi), 0)

    @ti.func
    def stencil(self, xp):
        """Base node, fractional offset (cells), quadratic B-spline weights and their derivatives."""
        Xp, base = self.stencil_base(xp)
        fx = Xp - base
        w = ti.Matrix.rows([0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2])  # [node, axis]
        dw = ti.Matrix.rows([fx - 1.5, -2.0 * (fx - 1.0), fx - 0.5])  # d w / d fx
        return base, fx, w, dw

    @ti.func
    def polar_rotation(self, F):
        """Rotation R of F = R S by scaled Newton iterations (det F > 0).

        At most ``polar_iterations``; stops once converged: the error after a step of size
        d is about d^2 / 2, so a step with d^2 < polar_tol leaves R exact to round-off.
        """
        R = F
        it = 0
        while it < self.polar_iterations:
            Ri = R.inverse().transpose()
            gamma = ti.sqrt(ti.sqrt(Ri.norm_sqr() / R.norm_sqr()))
            R_next = 0.5 * (gamma * R + Ri / gamma)
            step = (R_next - R).norm_sqr()
            R = R_next
            it += 1
            if step < self.polar_tol:
                break
        return R

    @ti.func
    def block_node(self, t):
        """Node index of the t-th node (row-major) of the active block."""
        lo = self.block_lo[None]
        ext = self.block_hi[None] - lo
        return lo + ti.Vector([t // (ext[1] * ext[2]), (t // ext[2]) % ext[1], t % ext[2]])


    @ti.func
    def collide(self, xi, v, c):
        """Kinematic collider (sphere, capsule or plane) at ctrl[c]: no penetration, no sticking."""
        kind = self.collider_type[None]
        if kind != 0:
            centre = self.ctrl[c, 0]
            vc = self.ctrl[c, 1]
            n = ti.Vector.zero(float, 3)
            phi = 1.0
            if kind == 1:
                d = xi - centre
                dist = ti.sqrt(d.norm_sqr() + EPS)
                n = d / dist
                phi = dist - self.collider_radius[None]
            elif kind == 2:
                a = self.collider_axis[None]
                h = ti.min(ti.max((xi - centre).dot(a) / (a.norm_sqr() + EPS), -1.0), 1.0)
                d = xi - (centre + h * a)
                dist = ti.sqrt(d.norm_sqr() + EPS)
                n = d / dist
                phi = dist - self.collider_radius[None]
            else:
                n = self.collider_normal[None]
                phi = (xi - centre).dot(n)
            if phi < 0.0:
                vr = v - vc
                vn = vr.dot(n)
                if vn < 0.0:  # approaching: remove the normal part, Coulomb friction on the rest
                    vt = vr - vn * n
                    vt_norm = ti.sqrt(vt.norm_sqr() + EPS)
                    vt *= ti.max(0.0, 1.0 + self.collider_friction[None] * vn / vt_norm)
                    v = vt + vc
        return v

    @ti.func
    def ground(self, xi, v):
        """Ground plane z = height: sticky, slip or separate with Coulomb friction."""
        if xi[2] < self.ground_height:
            if ti.static(self.ground_mode == 0):
                v = ti.Vector.zero(float, 3)
            elif ti.static(self.ground_mode == 1):
                v = ti.Vector([v[0], v[1], 0.0])
            else:
                if v[2] < 0.0:
                    vt = ti.Vector([v[0], v[1], 0.0])
                    vt_norm = ti.sqrt(vt.norm_sqr() + EPS)
                    v = vt * ti.max(0.0, 1.0 + self.ground_friction * v[2] / vt_norm)
        return v

    # ------------------------------------------------------------------ the substep

    @ti.func
    def active_block(self, s, with_tracers):
        """The box of nodes touched by the stencils of slot s's particles (and the tracers when asked)."""
        self.block_lo[None] = ti.Vector([self.grid_shape[0], self.grid_shape[1], self.grid_shape[2]])
        self.block_hi[None] = ti.Vector([0, 0, 0])
        ti.loop_config(serialize=self.serial_loops)
        for p in range(self.n):
            _, base = self.stencil_base(self.x[s, p])
            ti.atomic_min(self.block_lo[None], base)
            ti.atomic_max(self.block_hi[None], base + 3)
        ti.loop_config(serialize=self.serial_loops)
        for t in range(self.num_tracers * with_tracers):
            _, base = self.stencil_base(self.tracer_x[t])
            ti.atomic_min(self.block_lo[None], base)
            ti.atomic_max(self.block_hi[None], base + 3)
        ext = ti.max(self.block_hi[None] - self.block_lo[None], 0)
        self.block_count[None] = ext[0] * ext[1] * ext[2]

    @ti.func
    def _active_block(self):
        """Twin of active_block: the whole grid."""
        self.block_lo[None] = ti.Vector([0, 0, 0])
        self.block_hi[None] = ti.Vector([self.grid_shape[0], self.grid_shape[1], self.grid_shape[2]])
        self.block_count[None] = self.grid_shape[0] * self.grid_shape[1] * self.grid_shape[2]

    @ti.func
    def find_block(self, s, with_tracers):
        """The active block of a substep from slot s (the whole grid unless ``restrict_grid``)."""
        if ti.static(self.restrict_grid):
            self.active_block(s, with_tracers)
        else:
            self._active_block()

    @ti.func
    def clear_grid(self):
        """Zero the grid (and its adjoints) over the active block."""
        ti.loop_config(serialize=self.serial_loops)
        for t in range(self.block_count[None]):
            I = self.block_node(t)
            self.grid_m[I] = 0.0
            self.grid_mv[I] = ti.Vector.zero(float, 3)
            self.grid_v_in[I] = ti.Vector.zero(float, 3)
            self.grid_v_out[I] = ti.Vector.zero(float, 3)
            self.grid_contact[I] = 0.0
            if ti.static(self.requires_grad):
                self.grid_contact.grad[I] = 0.0
                self.grid_m.grad[I] = 0.0
                self.grid_mv.grad[I] = ti.Vector.zero(float, 3)
                self.grid_v_in.grad[I] = ti.Vector.zero(float, 3)
                self.grid_v_out.grad[I] = ti.Vector.zero(float, 3)

    @ti.func
    def compute_stress(self, s):
        """Fixed-corotated Kirchhoff stress tau = P F^T (Pa) of slot s."""
        for p in range(self.n):
            F = self.F[s, p]
            E = ti.exp(self.log_E[p])
            nu = self.nu[p]
            mu = E / (2.0 * (1.0 + nu))
            la = E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))
            R = self.polar_rotation(F)
            self.R[s, p] = R
            J = F.determinant()
            self.tau[s, p] = 2.0 * mu * (F - R) @ F.transpose() + la * (J - 1.0) * J * ti.Matrix.identity(float, 3)

    @ti.kernel
    def stress_backward(self, s: ti.i32):
        """Adjoint of compute_stress: tau_adj -> F.grad[s], log_E.grad, nu.grad."""
        for p in range(self.n):
            G = self.tau_adj[p]
            F = self.F[s, p]
            E = ti.exp(self.log_E[p])
            nu = self.nu[p]
            mu = E / (2.0 * (1.0 + nu))
            la = E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))
            Id = ti.Matrix.identity(float, 3)
            R = self.R[s, p]  # from compute_stress(s)
            S = R.transpose() @ F
            S = 0.5 * (S + S.transpose())
            J = F.determinant()
            g_mu = 2.0 * (G * ((F - R) @ F.transpose())).sum()
            g_la = (J - 1.0) * J * G.trace()
            # through R: dL/dF = R [b]x, b = (tr(S) I - S)^-1 a, a = axial part of R^T G_R, G_R = -2 mu G F
            A = R.transpose() @ (-2.0 * mu * G @ F)
            a = ti.Vector([A[2, 1] - A[1, 2], A[0, 2] - A[2, 0], A[1, 0] - A[0, 1]])
            b = (S.trace() * Id - S).inverse() @ a
            B = ti.Matrix([[0.0, -b[2], b[1]], [b[2], 0.0, -b[0]], [-b[1], b[0], 0.0]])
            dF = 2.0 * mu * ((G + G.transpose()) @ F - G.transpose() @ R) + R @ B
            dF += la * G.trace() * (2.0 * J - 1.0) * J * F.inverse().transpose()
            self.F.grad[s, p] += dF
            self.log_E.grad[p] += g_mu * mu + g_la * la
            self.nu.grad[p] += -g_mu * mu / (1.0 + nu) + g_la * E * (1.0 + 2.0 * nu * nu) / ((1.0 + nu) * (1.0 - 2.0 * nu)) ** 2

    @ti.func
    def p2g(self, s, c, dt):
        """Scatter mass, momentum (APIC: m (v + C dpos)) and the stress and force impulses (MLS) to
        the grid; weigh the grasped particles' share of each node."""
        ti.loop_config(serialize=self.serial_loops)
        for p in range(self.n):
            base, fx, w, _ = self.stencil(self.x[s, p])
            mv = self.mass[p] * self.v[s, p]
            mC = self.mass[p] * self.C[s, p]
            affine = (-dt * self.vol[p] * 4.0 * self.inv_dx * self.inv_dx) * self.tau[s, p] + mC
            mom = mv + dt * self.ext_force[p]
            mode = self.contact_mode[None] * self.is_contact[p]
            if mode == 2:
                mom += (dt * self.inv_contact[None]) * self.ctrl[c, 3]
            for i, j, k in ti.ndrange(3, 3, 3):
                offset = ti.Vector([i, j, k])
                dpos = (offset - fx) * self.dx
                weight = w[i, 0] * w[j, 1] * w[k, 2]
                self.grid_v_in[base + offset] += weight * (mom + affine @ dpos)
                if ti.static(self.pic_time > 0.0):  # only the FLIP update reads it
                    self.grid_mv[base + offset] += weight * (mv + mC @ dpos)
                self.grid_m[base + offset] += weight * self.mass[p]
                if mode == 1:
                    self.grid_contact[base + offset] += weight * self.mass[p] * self.grip[p]

    @ti.kernel
    def p2g_backward(self, s: ti.i32, c: ti.i32, dt: float):
        """Adjoint of p2g: grid adjoints -> x, v, C grads of slot s, tau_adj and the force control."""
        for p in range(self.n):
            base, fx, w, dw = self.stencil(self.x[s, p])
            k_tau = -dt * self.vol[p] * 4.0 * self.inv_dx * self.inv_dx
            m = self.mass[p]
            mv = m * self.v[s, p]
            mC = m * self.C[s, p]
            affine = k_tau * self.tau[s, p] + mC
            mom = mv + dt * self.ext_force[p]
            mode = self.contact_mode[None] * self.is_contact[p]
            if mode == 2:
                mom += (dt * self.inv_contact[None]) * self.ctrl[c, 3]
            g_mom = ti.Vector.zero(float, 3)  # from grid_v_in
            g_aff = ti.Matrix.zero(float, 3, 3)
            g_mv = ti.Vector.zero(float, 3)  # from grid_mv
            g_mC = ti.Matrix.zero(float, 3, 3)
            g_x = ti.Vector.zero(float, 3)
            for i, j, k in ti.ndrange(3, 3, 3):
                offset = ti.Vector([i, j, k])
                dpos = (offset - fx) * self.dx
                weight = w[i, 0] * w[j, 1] * w[k, 2]
                grad_w = self.inv_dx * ti.Vector([dw[i, 0] * w[j, 1] * w[k, 2], w[i, 0] * dw[j, 1] * w[k, 2], w[i, 0] * w[j, 1] * dw[k, 2]])
                Gv = self.grid_v_in.grad[base + offset]
                Gmv = self.grid_mv.grad[base + offset]
                scalar = Gv.dot(mom + affine @ dpos) + Gmv.dot(mv + mC @ dpos) + m * self.grid_m.grad[base + offset]
                if mode == 1:
                    scalar += m * self.grip[p] * self.grid_contact.grad[base + offset]
                g_x += scalar * grad_w
                g_mom += weight * Gv
                g_aff += weight * Gv.outer_product(dpos)
                g_mv += weight * Gmv
                g_mC += weight * Gmv.outer_product(dpos)
            g_x -= affine.transpose() @ g_mom + mC.transpose() @ g_mv  # sum over nodes of -weight A^T G (dpos moves with x)
            self.x.grad[s, p] += g_x
            self.v.grad[s, p] += m * (g_mom + g_mv)
            self.C.grad[s, p] += m * (g_aff + g_mC)
            self.tau_adj[p] = k_tau * g_aff  # tau[s] feeds nothing else
            if mode == 2:
                self.ctrl.grad[c, 3] += (dt * self.inv_contact[None]) * g_mom

    @ti.kernel
    def grid_op(self, c: ti.i32, dt: float):
        """update_grid as a kernel of its own (a bare loop), for Taichi to differentiate: grid_op.grad."""
        ti.loop_config(serialize=self.serial_loops)
        for t in range(self.block_count[None]):
            self.grid_node(self.block_node(t), c, dt)

    @ti.func
    def update_grid(self, c, dt):
        """Momentum to velocity, gravity, damping, grasp, collider, ground and walls (active block)."""
        ti.loop_config(serialize=self.serial_loops)
        for t in range(self.block_count[None]):
            self.grid_node(self.block_node(t), c, dt)

    @ti.func
    def grid_node(self, I, c, dt):
        """The grid update at node I: grid_v_out[I] from the scattered momentum and mass."""
        m = self.grid_m[I]
        v = ti.Vector.zero(float, 3)
        if m > self.mass_floor:
            v = self.grid_v_in[I] / m + dt * ti.Vector([self.gravity[0], self.gravity[1], self.gravity[2]])
            if ti.static(self.damping > 0.0):
                v *= ti.exp(-self.damping * dt)
            if self.contact_mode[None] == 1:
                # A node the grasp holds at least half the mass of moves with the hand: a velocity
                # condition on the nodes inside the held region (the quadratic B-spline is symmetric,
                # so a node on the region's face takes half its mass from either side), wherever the
                # particle lattice falls and however many particles a cell holds. Below half the hold
                # fades out (smoothly, so the motion stays smooth as the region crosses nodes): such
                # a node takes the share alpha of the hand's velocity per grip time, over a substep
                # dt 1 - (1 - alpha)^(dt / grip_time), a rate, so that the substep does not change
                # how tightly it holds.
                t = ti.min(2.0 * self.grid_contact[I] / m, 1.0)
                alpha = t * t * (3.0 - 2.0 * t)
                share = 1.0 - ti.pow(ti.max(1.0 - alpha, 1e-4), dt / self.grip_time[None])
                beta = ti.select(alpha < 1.0, share, 1.0)
                v = (1.0 - beta) * v + beta * self.ctrl[c, 2]
            xi = self.origin_vec() + I * self.dx
            v = self.collide(xi, v, c)
            if ti.static(self.has_ground):
                v = self.ground(xi, v)
            if ti.static(self.walls):  # free-slip walls: no velocity out of the domain
                hi = ti.Vector([self.grid_shape[0], self.grid_shape[1], self.grid_shape[2]]) - 1 - self.wall_cells
                at_lo = ti.cast(I < self.wall_cells, float)
                at_hi = ti.cast(I > hi, float)
                v = v - at_lo * ti.min(v, 0.0) - at_hi * ti.max(v, 0.0)
        self.grid_v_out[I] = v

    @ti.func
    def gather(self, xp, before: ti.template()):  # type: ignore[valid-type]
        """APIC gather at position xp (m): the grid velocity (m/s), its affine matrix C (1/s) and,
        when ``before``, the grid velocity before this substep's forces (sum of weight * mv / m)."""
        base, fx, w, _ = self.stencil(xp)
        new_v = ti.Vector.zero(float, 3)
        new_C = ti.Matrix.zero(float, 3, 3)
        v_before = ti.Vector.zero(float, 3)
        for i, j, k in ti.ndrange(3, 3, 3):
            offset = ti.Vector([i, j, k])
            weight = w[i, 0] * w[j, 1] * w[k, 2]
            g_v = self.grid_v_out[base + offset]
            new_v += weight * g_v
            new_C += (4.0 * self.inv_dx * weight) * g_v.outer_product(offset - fx)
            if ti.static(before):
                m = self.grid_m[base + offset]
                if m > self.mass_floor:
                    v_before += (weight / m) * self.grid_mv[base + offset]
        return new_v, new_C, v_before

    @ti.func
    def flip_share(self, dt):
        """The FLIP share a of the particle velocity update: 1 - min(1, dt / pic_time) (0: pure APIC)."""
        a = 0.0
        if ti.static(self.pic_time > 0.0):
            a = 1.0 - ti.min(1.0, dt / self.pic_time)
        return a

    @ti.func
    def g2p(self, s, so, c, dt):
        """Gather velocity and affine velocity; FLIP velocity update; advect with the grid velocity;
        update F; contact velocity condition."""
        a = self.flip_share(dt)
        for p in range(self.n):
            new_v, new_C, v_before = self.gather(self.x[s, p], self.pic_time > 0.0)
            v_adv = new_v
            if ti.static(self.pic_time > 0.0):  # keep the share a of what the grid could not hold
                new_v += a * (self.v[s, p] - v_before)
            if self.contact_mode[None] * self.is_contact[p] == 1:  # the held share moves with the hand
                g = self.grip[p]
                new_v = g * self.ctrl[c, 2] + (1.0 - g) * new_v
                v_adv = g * self.ctrl[c, 2] + (1.0 - g) * v_adv
            self.v[so, p] = new_v
            self.C[so, p] = new_C
            self.x[so, p] = self.x[s, p] + dt * v_adv
            self.F[so, p] = (ti.Matrix.identity(float, 3) + dt * new_C) @ self.F[s, p]

    @ti.kernel
    def g2p_backward(self, s: ti.i32, so: ti.i32, c: ti.i32, dt: float):
        """Adjoint of g2p: slot so adjoints -> slot s adjoints, grid_v_out.grad (and grid_mv.grad,
        grid_m.grad through the FLIP update) and the contact control."""
        a = self.flip_share(dt)
        ti.loop_config(serialize=self.serial_loops)
        for p in range(self.n):
            base, fx, w, dw = self.stencil(self.x[s, p])
            Gx = self.x.grad[so, p]
            GF = self.F.grad[so, p]
            F = self.F[s, p]
            new_C = self.C[so, p]
            g_v = self.v.grad[so, p] + dt * Gx  # adjoint of the gathered grid velocity
            g_res = a * self.v.grad[so, p]  # adjoint of the FLIP residual v[s] - v_before
            g_C = self.C.grad[so, p] + dt * GF @ F.transpose()
            if self.contact_mode[None] * self.is_contact[p] == 1:
                g = self.grip[p]
                self.ctrl.grad[c, 2] += g * g_v
                g_v *= 1.0 - g
                g_res *= 1.0 - g
            g_x = Gx
            v_pic = ti.Vector.zero(float, 3)  # sum over nodes of weight * grid velocity
            for i, j, k in ti.ndrange(3, 3, 3):
                offset = ti.Vector([i, j, k])
                d = offset - fx
                weight = w[i, 0] * w[j, 1] * w[k, 2]
                grad_w = self.inv_dx * ti.Vector([dw[i, 0] * w[j, 1] * w[k, 2], w[i, 0] * dw[j, 1] * w[k, 2], w[i, 0] * w[j, 1] * dw[k, 2]])
                gv_node = self.grid_v_out[base + offset]
                gCd = g_C @ d
                self.grid_v_out.grad[base + offset] += weight * g_v + (4.0 * self.inv_dx * weight) * gCd
                g_x += (gv_node.dot(g_v) + 4.0 * self.inv_dx * gv_node.dot(gCd)) * grad_w
                v_pic += weight * gv_node
                if ti.static(self.pic_time > 0.0):  # - a * sum of weight * mv / m
                    m = self.grid_m[base + offset]
                    if m > self.mass_floor:
                        v0 = self.grid_mv[base + offset] / m
                        self.grid_mv.grad[base + offset] -= (weight / m) * g_res
                        self.grid_m.grad[base + offset] += (weight / m) * v0.dot(g_res)
                        g_x -= v0.dot(g_res) * grad_w
            g_x -= (4.0 * self.inv_dx * self.inv_dx) * (g_C.transpose() @ v_pic)  # d/dx of the (offset - fx) in C
            self.x.grad[s, p] += g_x
            if ti.static(self.pic_time > 0.0):
                self.v.grad[s, p] += g_res
            self.F.grad[s, p] += (ti.Matrix.identity(float, 3) + dt * new_C).transpose() @ GF

    @ti.func
    def advect_tracers(self, dt, with_tracers):
        """Carry the passive tracers with the grid velocity and its gradient (no mass), when asked."""
        for t in range(self.num_tracers * with_tracers):
            new_v, new_C, _ = self.gather(self.tracer_x[t], False)
            self.tracer_x[t] += dt * new_v
            self.tracer_F[t] = (ti.Matrix.identity(float, 3) + dt * new_C) @ self.tracer_F[t]

    @ti.func
    def tape_grid(self, k):
        """Keep the active block of the grid (after grid_op) as taped substep k, if k >= 0 and it fits."""
        if ti.static(self.tape_nodes > 0):
            start = 0
            copy = 0
            if k >= 0:
                start = self.tape_start[k]
                fits = start + self.block_count[None] <= self.tape_nodes
                self.tape_saved[k] = ti.select(fits, 1, 0)
                self.tape_start[k + 1] = ti.select(fits, start + self.block_count[None], start)
                self.tape_lo[k] = self.block_lo[None]
                self.tape_hi[k] = self.block_hi[None]
                copy = ti.select(fits, self.block_count[None], 0)
            ti.loop_config(serialize=self.serial_loops)
            for t in range(copy):
                I = self.block_node(t)
                self.tape_m[start + t] = self.grid_m[I]
                self.tape_contact[start + t] = self.grid_contact[I]
                self.tape_mv[start + t] = self.grid_mv[I]
                self.tape_v_in[start + t] = self.grid_v_in[I]
                self.tape_v_out[start + t] = self.grid_v_out[I]

    @ti.kernel
    def untape_grid(self, k: ti.i32):
        """Restore taped substep k's grid block (values; adjoints zeroed), as grid_update left it."""
        self.block_lo[None] = self.tape_lo[k]
        self.block_hi[None] = self.tape_hi[k]
        ext = self.tape_hi[k] - self.tape_lo[k]
        self.block_count[None] = ext[0] * ext[1] * ext[2]
        start = self.tape_start[k]
        ti.loop_config(serialize=self.serial_loops)
        for t in range(self.block_count[None]):
            I = self.block_node(t)
            self.grid_m[I] = self.tape_m[start + t]
            self.grid_contact[I] = self.tape_contact[start + t]
            self.grid_mv[I] = self.tape_mv[start + t]
            self.grid_v_in[I] = self.tape_v_in[start + t]
            self.grid_v_out[I] = self.tape_v_out[start + t]
            if ti.static(self.requires_grad):
                self.grid_contact.grad[I] = 0.0
                self.grid_m.grad[I] = 0.0
                self.grid_mv.grad[I] = ti.Vector.zero(float, 3)
                self.grid_v_in.grad[I] = ti.Vector.zero(float, 3)
                self.grid_v_out.grad[I] = ti.Vector.zero(float, 3)

    @ti.kernel
    def advance(self, s: ti.i32, so: ti.i32, c: ti.i32, dt: float, with_tracers: ti.i32, tape_k: ti.i32):
        """One MLS-MPM substep from slot s to slot so with the control in ctrl row c, in one launch;
        the grid is kept as taped substep ``tape_k`` when that is >= 0."""
        self.find_block(s, with_tracers)
        self.clear_grid()
        self.compute_stress(s)
        self.p2g(s, c, dt)
        self.update_grid(c, dt)
        self.tape_grid(tape_k)
        self.g2p(s, so, c, dt)
        self.advect_tracers(dt, with_tracers)

    @ti.kernel
    def regrid(self, s: ti.i32, c: ti.i32, dt: float):
        """The grid of substep s once more, for its adjoint (its stress tau[s] is kept from the forward)."""
        self.find_block(s, 0)
        self.clear_grid()
        self.p2g(s, c, dt)
        self.update_grid(c, dt)

    @ti.kernel
    def run_pass(self, which: ti.template(), s: ti.i32, so: ti.i32, c: ti.i32, dt: float):  # type: ignore[valid-type]
        """One pass of ``advance`` on its own (PASSES[which]), for timing it (``physinteract bench mpm``)."""
        if ti.static(which == 0):
            self.find_block(s, 0)
        if ti.static(which == 1):
            self.clear_grid()
        if ti.static(which == 2):
            self.compute_stress(s)
        if ti.static(which == 3):
            self.p2g(s, c, dt)
        if ti.static(which == 4):
            self.update_grid(c, dt)
        if ti.static(which == 5):
            self.tape_grid(s)
        if ti.static(which == 6):
            self.g2p(s, so, c, dt)

    def substep(self, s: int, so: int, c: int, dt: float, tracers: bool = False) -> None:
        """One MLS-MPM substep from slot s to slot so with the control in ctrl row c (and the tracers)."""
        self.advance(s, so, c, dt, 1 if tracers else 0, -1)

    def taped_substeps(self, count: int, dt: float, first: int = 0) -> np.ndarray:
        """The forward half of a taped segment: substeps k = first..first+count-1 from slot k to
        k + 1 with control row k, keeping each grid on the tape (a segment that starts at slot 0
        starts the tape; one that starts later continues it). Returns which grids were kept [count]."""
        if not self.tape_nodes:
            for k in range(first, first + count):
                self.advance(k, k + 1, k, dt, 0, -1)
            return np.zeros(count, bool)
        if first == 0:
            self.tape_start[0] = 0
        for k in range(first, first + count):
            self.advance(k, k + 1, k, dt, 0, k)
        return self.tape_saved.to_numpy()[first : first + count] == 1

    def substep_grad(self, s: int, so: int, c: int, dt: float, taped: bool = False) -> None:
        """The adjoint of a substep: restore its grid from the tape (``taped``) or recompute it,
        then its passes' adjoints in reverse order."""
        if taped:
            self.untape_grid(s)
        else:
            self.regrid(s, c, dt)
        self.g2p_backward(s, so, c, dt)
        self.grid_op.grad(c, dt)
        self.p2g_backward(s, c, dt)
        self.stress_backward(s)

    # ------------------------------------------------------------------ Warp-style API

    def state(self, slot: int, time: float = 0.0) -> "SlotState":
        return SlotState(self, slot, time)

    def step(self, state_in: "SlotState", state_out: "SlotState", control: Control, dt: float) -> None:
        """Advance ``state_in`` by one substep ``dt`` (s) into ``state_out`` under ``control``."""
        self.set_control(control)
        self.generation += 1
        table, *_ = control.substep_table(state_in.time, dt, 1)
        self.upload_ctrl(table, row=state_in.slot)
        self.substep(state_in.slot, state_out.slot, state_in.slot, dt)
        state_out.time = state_in.time + dt

    # ------------------------------------------------------------------ host transfers

    def set_material(self, E: np.ndarray, nu: np.ndarray) -> None:
        """Per-particle Young's modulus E [N] (Pa) and Poisson's ratio nu [N]."""
        self.log_E.from_numpy(np.log(np.asarray(E, np.float64)).astype(self.np_real))
        self.nu.from_numpy(np.asarray(nu, np.float64).astype(self.np_real))

    def set_control(self, control: Control) -> None:
        """Upload the control's contact set and collider parameters (once per Control)."""
        key = (id(control), control.interaction, control.drive, control.collider, control.contact.tobytes(),
               None if control.grip is None else control.grip.tobytes())
        if key == self._control_key:
            return
        mask = np.zeros(self.n, np.int32)
        if len(control.contact):
            if control.contact.min() < 0 or control.contact.max() >= self.n:
                raise ValueError(f"Control.contact: indices must lie in [0, {self.n})")
            mask[control.contact] = 1
        self.is_contact.from_numpy(mask)
        grip = np.zeros(self.n, self.np_real)
        grip[control.contact] = 1.0 if control.grip is None else control.grip
        self.grip.from_numpy(grip)
        self.contact_mode[None] = control.contact_mode
        # the grip's time scale for step(); a Rollout sets its own, a whole fraction of its frame
        self.grip_time[None] = grip_time(self.model, control, None, 0.0, self.config)
        self.inv_contact[None] = 1.0 / max(1, int(mask.sum()))
        self.collider_type[None] = COLLIDER_CODES[control.collider] if control.collider_active else 0
        self.collider_radius[None] = float(control.radius)
        self.collider_friction[None] = float(control.friction)
        self.collider_axis[None] = [float(a) for a in control.axis]
        nrm = np.asarray(control.normal, np.float64)
        nrm = nrm / max(float(np.linalg.norm(nrm)), 1e-12)
        self.collider_normal[None] = [float(a) for a in nrm]
        self._control_key = key

    def upload_ctrl(self, table: np.ndarray, row: int = 0) -> None:
        """Write per-substep control rows ``table`` [L, 4, 3] into ctrl[row : row + L]."""
        buf = np.zeros((self.slots, 4, 3), self.np_real)
        buf[row : row + len(table)] = table
        self.ctrl.from_numpy(buf)

    @ti.kernel
    def _load_stage(self, slot: ti.i32):
        for p in range(self.n):
            self.x[slot, p] = self.stage_x[p]
            self.v[slot, p] = self.stage_v[p]
            self.C[slot, p] = self.stage_C[p]
            self.F[slot, p] = self.stage_F[p]

    @ti.kernel
    def _store_stage(self, slot: ti.i32):
        for p in range(self.n):
            self.stage_x[p] = self.x[slot, p]
            self.stage_v[p] = self.v[slot, p]
            self.stage_C[p] = self.C[slot, p]
            self.stage_F[p] = self.F[slot, p]

    @ti.kernel
    def _load_stage_adjoint(self, slot: ti.i32):
        for p in range(self.n):
            self.x.grad[slot, p] += self.stage_x[p]
            self.v.grad[slot, p] += self.stage_v[p]
            self.C.grad[slot, p] += self.stage_C[p]
            self.F.grad[slot, p] += self.stage_F[p]

    @ti.kernel
    def _store_stage_adjoint(self, slot: ti.i32):
        for p in range(self.n):
            self.stage_x[p] = self.x.grad[slot, p]
            self.stage_v[p] = self.v.grad[slot, p]
            self.stage_C[p] = self.C.grad[slot, p]
            self.stage_F[p] = self.F.grad[slot, p]

    @ti.kernel
    def clear_state_grads(self, count: ti.i32):
        """Zero the adjoints of slots 0..count-1."""
        for s, p in ti.ndrange(count, self.n):
            self.x.grad[s, p] = ti.Vector.zero(float, 3)
            self.v.grad[s, p] = ti.Vector.zero(float, 3)
            self.C.grad[s, p] = ti.Matrix.zero(float, 3, 3)
            self.F.grad[s, p] = ti.Matrix.zero(float, 3, 3)

    def _stage(self, x: np.ndarray, v: np.ndarray, C: np.ndarray, F: np.ndarray) -> None:
        r = self.np_real
        self.stage_x.from_numpy(np.ascontiguousarray(x, r))
        self.stage_v.from_numpy(np.ascontiguousarray(v, r))
        self.stage_C.from_numpy(np.ascontiguousarray(C, r))
        self.stage_F.from_numpy(np.ascontiguousarray(F, r))

    def _unstage(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            self.stage_x.to_numpy().astype(np.float64),
            self.stage_v.to_numpy().astype(np.float64),
            self.stage_C.to_numpy().astype(np.float64),
            self.stage_F.to_numpy().astype(np.float64),
        )

    def write_state(self, slot: int, state) -> None:  # state: model.State
        self._stage(state.x, state.v, state.C, state.F)
        self._load_stage(slot)

    def read_state(self, slot: int, time: float = 0.0):  # -> model.State
        from physinteract.mpm.model import State

        self._store_stage(slot)
        x, v, C, F = self._unstage()
        return State(x, v, C, F, time)

    def read_positions(self, slot: int) -> np.ndarray:
        """[N, 3] positions (m) of a slot."""
        self._store_stage(slot)
        return self.stage_x.to_numpy().astype(np.float64)

    def add_adjoint(self, slot: int, gx=None, gv=None, gC=None, gF=None) -> None:
        """Add dL/d(x, v, C, F) ([N, 3], [N, 3], [N, 3, 3], [N, 3, 3]) to a slot's adjoint."""
        n = self.n
        self._stage(
            np.zeros((n, 3)) if gx is None else gx,
            np.zeros((n, 3)) if gv is None else gv,
            np.zeros((n, 3, 3)) if gC is None else gC,
            np.zeros((n, 3, 3)) if gF is None else gF,
        )
        self._load_stage_adjoint(slot)

    def read_adjoint(self, slot: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self._store_stage_adjoint(slot)
        return self._unstage()

    def read_tracers(self) -> tuple[np.ndarray, np.ndarray]:
        """Tracer positions [T, 3] (m) and deformation gradients [T, 3, 3]."""
        nt = self.num_tracers
        return (self.tracer_x.to_numpy().astype(np.float64)[:nt], self.tracer_F.to_numpy().astype(np.float64)[:nt])

    def write_tracers(self, x: np.ndarray, F: np.ndarray) -> None:
        """Set the tracer positions [T, 3] (m) and deformation gradients [T, 3, 3]."""
        nt = self.num_tracers
        if nt:
            self.tracer_x.from_numpy(np.ascontiguousarray(np.asarray(x, np.float64).reshape(nt, 3), self.np_real))
            self.tracer_F.from_numpy(np.ascontiguousarray(np.asarray(F, np.float64).reshape(nt, 3, 3), self.np_real))

    def device_memory_bytes(self) -> int:
        """Bytes of this solver's Taichi fields (values and adjoints), from their shapes."""
        item = 8 if self.np_real == np.float64 else 4
        nodes = int(np.prod(self.grid_shape))
        per_slot = self.slots * self.n * STATE_REALS  # x, v, C, F (and their adjoints)
        scalars = per_slot + self.slots * self.n * STRESS_REALS + self.n * (2 + 2 + 3 + 24)  # + tau, R per slot; per particle
        scalars += nodes * GRID_NODE_REALS + self.slots * 12 + max(1, self.num_tracers) * 12
        scalars += max(1, self.tape_nodes) * TAPE_NODE_REALS
        grads = per_slot + self.n * (2 + 9) + nodes * GRID_NODE_REALS + self.slots * 12
        return int((scalars + (grads if self.requires_grad else 0)) * item + self.n * 4)


def tape_nodes_per_substep(model: Model) -> int:
    """Grid nodes to set aside on the backward tape per taped substep: twice the block that the
    particles' rest positions touch (the body may move and spread), at most the whole grid."""
    cells = (model.x0 - model.domain_min) / model.dx - 0.5
    rest_block = int(np.prod(np.floor(cells.max(0)) - np.floor(cells.min(0)) + 3))
    return min(int(np.prod(model.grid_shape)), 2 * rest_block)


def tape_slots(model: Model, config: SolverConfig, substeps: int) -> tuple[int, int]:
    """(slots, tape_nodes) for a differentiable solver that keeps up to ``substeps`` taped substeps
    within ``config.tape_memory_mb``, and never fewer than ``config.backward_segment``.

    A taped substep costs a particle slot (x, v, C, F, their adjoints, tau and R: 66 reals a
    particle) and its grid block on the tape (11 reals a node), as ``device_memory_bytes`` counts them.
    """
    item = 8 if config.precision == "f64" else 4
    per_node = tape_nodes_per_substep(model)
    per_substep = item * ((2 * STATE_REALS + STRESS_REALS) * model.num_particles + TAPE_NODE_REALS * per_node)
    fit = int(config.tape_memory_mb * 2**20 // per_substep)
    count = max(config.backward_segment, min(int(substeps), fit))
    return count + 1, count * per_node


def signal_speed(model: Model, control: Control | None, duration: float, config: SolverConfig) -> float:
    """max(c_p, v_max) (m/s): c_p = sqrt((lambda + 2 mu) / rho) the fastest elastic wave, v_max
    bounding the initial, driven and gravity-accelerated speeds over ``duration`` (s)."""
    v_max = float(np.max(np.linalg.norm(model.v0, axis=1))) if model.num_particles else 0.0
    if control is not None:
        v_max = max(v_max, control.max_speed())
    v_max += float(np.linalg.norm(config.gravity)) * duration
    return max(model.p_wave_speed(), v_max, 1e-6)


def grip_time(model: Model, control: Control | None, frame_dt: float | None, duration: float, config: SolverConfig) -> float:
    """The grasp's time scale (s): the substep the CFL limit would choose at cfl GRIP_CFL, a whole
    fraction of ``frame_dt`` (None: GRIP_CFL dx / ``signal_speed`` itself). A node the grasp holds
    less than half the mass of takes its share alpha of the hand's velocity per grip time,
    whatever the substep (``MPMSolver.grid_node``); at cfl GRIP_CFL that is once per substep.
    Like the substep count it is constant under small changes of the material, which the
    gradients do not follow."""
    limit = GRIP_CFL * model.dx / signal_speed(model, control, duration, config)
    if frame_dt is None:
        return limit
    return frame_dt / max(1, int(math.ceil(frame_dt / limit)))


def cfl_substeps(model: Model, control: Control | None, frame_dt: float, duration: float, config: SolverConfig) -> int:
    """Substeps per frame from the CFL and elastic wave-speed limits (or the fixed substep):
    dt <= cfl * dx / ``signal_speed`` over ``duration`` (s)."""
    if config.substep_dt is not None:
        count = max(1, int(math.ceil(frame_dt / config.substep_dt - 1e-9)))
    else:
        speed = signal_speed(model, control, duration, config)
        count = max(1, int(math.ceil(frame_dt * speed / (config.cfl * model.dx))))
    if count > config.max_substeps_per_frame:
        raise ValueError(
            f"the stability limit asks for {count} substeps per frame (max_substeps_per_frame is "
            f"{config.max_substeps_per_frame}): lower E, raise density, coarsen the grid or raise fps"
        )
    return count
