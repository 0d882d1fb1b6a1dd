#!/usr/bin/env python3
"""Write a STAND-IN head in the official FLAME pickle form, for `make demo` and the tests.

This is NOT FLAME. FLAME (flame.is.tue.mpg.de) is licence-gated and cannot be downloaded or
committed; so that the demo can show a moving face without it, this script builds a smooth,
head-like surface with FLAME's parameter layout, written as a FLAME 2023 pickle (plain numpy
arrays, the joint regressor a scipy.sparse csc_matrix in its pickled form, through
tools/reference/make_flame.py's writer; no scipy needed) that goes through
`tools/export.py --flame` exactly like the real generic_model.pkl:

  f            (F, 3) uint32     triangles
  v_template   (V, 3) float64    the head, metres, FLAME's axes: x left-right, y up, z towards
                                 the camera (upstream's camera: yfov 16 deg at (0, 0, 1))
  shapedirs    (V, 3, 400)       300 shape + 100 expression directions (upstream uses [:100] and
                                 [300:350]); the first expression directions move the mouth
                                 corners, lips, cheeks and brows by a few millimetres per unit
  posedirs     (V, 3, 36)        pose correctives of joints 1..4 (9 each): near zero
  J_regressor  (5, V) csc_matrix joints as fixed combinations of vertex pairs
  weights      (V, 5)            skinning weights: head on the neck joint, the lower face on the
                                 jaw joint (the mouth is a slit in the mesh: rotating the jaw
                                 opens it), the neck's base on the root
  kintree_table (2, 5)           [[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]] as FLAME
  J            (5, 3)            the joints of v_template (unused by upstream; FLAME has it)
  flame_source str               says what this is (the exporter keeps it as metadata)

--uv OUT.npz also writes uv coordinates in upstream's models/data/uv_coords.npz form
(vt (n_vt, 2) float64 in [0, 1], ft (F, 3) uint32): a longitude/latitude map.

Sizes are modest (about 5000 vertices, like FLAME's 5023); counts come from the file.
Deterministic (fixed seed).
"""

import argparse
import math
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / 'reference'))
from make_flame import write_flame_pickle  # noqa: E402  (the synthetic-FLAME writer: the same pickle forms)

SOURCE = 'stand-in head (not FLAME): tools/make_standin_head.py'

N_ROWS = 56            # latitude rows, crown to neck
N_COLS = 90            # longitude columns (4 degrees)
PHI_TOP, PHI_BOTTOM = 4.0, 150.0     # polar angle from +y, degrees: the neck is left open below
PHI_MOUTH = 104.5      # the mouth slit's polar angle, degrees
MOUTH_HALF_WIDTH = 25.0  # degrees of longitude either side of the front
CENTER = np.array([0.0, -0.012, 0.0])
AXES = np.array([0.074, 0.098, 0.090])   # ellipsoid semi-axes x, y, z (m)
NECK_RADIUS = 0.047

# joints: root (base of the neck), neck, jaw hinge, left eye, right eye (m)
JOINTS = np.array([[0.0, -0.095, -0.012],
                   [0.0, -0.062, -0.010],
                   [0.0, -0.030, -0.008],
                   [0.031, 0.022, 0.068],
                   [-0.031, 0.022, 0.068]])


def smoothstep(a, b, x):
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def bump(phi, lam, phi0, lam0, s_phi, s_lam):
    """Gaussian in (polar, longitude) degrees."""
    return np.exp(-0.5 * (((phi - phi0) / s_phi) ** 2 + ((lam - lam0) / s_lam) ** 2))


def row_angles():
    """Polar angles of the rows: uniform, with the two rows around the mouth pulled together so
    that the closed mouth is a thin line."""
    phi = np.linspace(PHI_TOP, PHI_BOTTOM, N_ROWS)
    k = int(np.searchsorted(phi, PHI_MOUTH)) - 1      # rows k (upper lip) and k+1 (lower lip)
    phi[k], phi[k + 1] = PHI_MOUTH - 0.35, PHI_MOUTH + 0.35
    return phi, k


def surface(phi, lam):
    """Points of the head for polar angle phi and longitude lam (degrees; lam 0 = the face)."""
    p, l = np.radians(phi), np.radians(lam)
    d = np.stack([np.sin(p) * np.sin(l), np.cos(p), np.sin(p) * np.cos(l)], axis=-1)
    r_ell = 1.0 / np.sqrt(((d / AXES) ** 2).sum(-1))
    # below the jaw the surface narrows into a neck (a cylinder about the vertical axis)
    r_neck = NECK_RADIUS / np.maximum(np.sin(p), 1e-3) * (1.0 - 0.12 * np.cos(l))
    s = smoothstep(117.0, 140.0, phi)
    r = (1 - s) * r_ell + s * np.minimum(r_neck, 0.16)
    # facial relief, radial, metres
    side = np.abs(lam)
    r = r + 0.021 * bump(phi, lam, 90.0, 0.0, 6.0, 5.0)            # nose tip
    r = r + 0.010 * bump(phi, lam, 79.0, 0.0, 7.0, 3.5)            # nose bridge
    r = r - 0.009 * bump(phi, side, 78.0, 21.0, 5.0, 7.0)          # eye sockets
    r = r + 0.006 * bump(phi, side, 69.0, 20.0, 4.0, 12.0)         # brows
    r = r + 0.006 * bump(phi, side, 96.0, 36.0, 8.0, 10.0)         # cheek bones
    r = r + 0.005 * bump(phi, lam, PHI_MOUTH - 2.5, 0.0, 2.5, 17.0)  # upper lip
    r = r + 0.006 * bump(phi, lam, PHI_MOUTH + 3.0, 0.0, 2.5, 16.0)  # lower lip
    r = r + 0.008 * bump(phi, lam, 116.0, 0.0, 6.0, 15.0)          # chin
    r = r + 0.013 * bump(phi, side, 88.0, 90.0, 7.0, 5.0)          # ears
    return CENTER + r[..., None] * d


def build_mesh():
    phi_rows, k_mouth = row_angles()
    lam_cols = np.arange(N_COLS) * (360.0 / N_COLS) - 180.0   # -180 .. 176: column 45 is the face
    PHI, LAM = np.meshgrid(phi_rows, lam_cols, indexing='ij')  # (rows, cols)
    grid = surface(PHI, LAM).reshape(-1, 3)
    top = surface(np.array([0.0]), np.array([0.0]))            # the crown: one vertex, a fan
    verts = np.concatenate([top, grid])
    phi_v = np.concatenate([[0.0], PHI.ravel()])
    lam_v = np.concatenate([[0.0], LAM.ravel()])

    def vid(i, j):
        return 1 + i * N_COLS + (j % N_COLS)

    faces, uv_faces = [], []
    # uv: columns 0..N_COLS (the seam duplicated), rows 0..N_ROWS-1, plus the crown
    def tid(i, j):
        return 1 + i * (N_COLS + 1) + j

    for j in range(N_COLS):
        faces.append([0, vid(0, j), vid(0, j + 1)])
        uv_faces.append([0, tid(0, j), tid(0, j + 1)])
    for i in range(N_ROWS - 1):
        for j in range(N_COLS):
            lam_mid = lam_cols[j] + 180.0 / N_COLS
            if i == k_mouth and abs(lam_mid) < MOUTH_HALF_WIDTH:
                continue                                        # the mouth slit
            a, b, c, d = vid(i, j), vid(i, j + 1), vid(i + 1, j + 1), vid(i + 1, j)
            ta, tb, tc, td = tid(i, j), tid(i, j + 1), tid(i + 1, j + 1), tid(i + 1, j)
            faces += [[a, c, b], [a, d, c]]                     # outward (counter-clockwise seen from outside)
            uv_faces += [[ta, tc, tb], [ta, td, tc]]
    faces = np.array(faces, dtype=np.uint32)
    uv_faces = np.array(uv_faces, dtype=np.uint32)
    u = (np.arange(N_COLS + 1) / N_COLS)
    v = 1.0 - (phi_rows - PHI_TOP) / (PHI_BOTTOM - PHI_TOP) * 0.98 - 0.01
    U, Vv = np.meshgrid(u, v)
    vt = np.concatenate([[[0.5, 0.995]], np.stack([U.ravel(), Vv.ravel()], -1)])
    return verts, faces, phi_v, lam_v, k_mouth, phi_rows, vt, uv_faces


def skinning_weights(phi, lam, phi_rows, k_mouth):
    """(V, 5): jaw for the lower face (sharp at the slit, gradual on the cheeks), root for the base
    of the neck, the neck joint (the head) for the rest; eyes none."""
    side = np.abs(lam)
    upper, lower = phi_rows[k_mouth], phi_rows[k_mouth + 1]
    sharp = (phi >= lower - 1e-9).astype(float)
    gradual = smoothstep(PHI_MOUTH - 6.0, PHI_MOUTH + 14.0, phi)
    h = 1.0 - smoothstep(MOUTH_HALF_WIDTH - 4.0, MOUTH_HALF_WIDTH + 12.0, side)
    below = h * sharp + (1 - h) * gradual
    below = np.where((side < MOUTH_HALF_WIDTH) & (phi <= upper + 1e-9), 0.0, below)
    around = 1.0 - smoothstep(55.0, 100.0, side)          # the back of the head does not move
    under = 1.0 - smoothstep(124.0, 142.0, phi)           # the neck stays
    w_jaw = below * around * under
    w_root = smoothstep(138.0, 155.0, phi) * (1 - w_jaw)
    w = np.zeros((phi.size, 5))
    w[:, 2] = w_jaw
    w[:, 0] = w_root
    w[:, 1] = 1.0 - w_jaw - w_root
    return w


def joint_regressor(verts):
    """(5, V): each joint as a combination of a mirrored vertex pair whose (y, z) is nearest the
    joint's, weighted to give its x."""
    reg = np.zeros((len(JOINTS), len(verts)))
    left = np.where(verts[:, 0] > 0.01)[0]
    for j, t in enumerate(JOINTS):
        d = (verts[left, 1] - t[1]) ** 2 + (verts[left, 2] - t[2]) ** 2
        a = left[np.argmin(d)]
        mirror = np.argmin(((verts - verts[a] * np.array([-1, 1, 1])) ** 2).sum(1))
        wa = 0.5 * (1 + t[0] / verts[a, 0])
        reg[j, a] += wa
        reg[j, mirror] += 1 - wa
    return reg


def expression_dirs(verts, phi, lam, rng):
    """(V, 3, 100) expression directions, metres per unit coefficient."""
    V = len(verts)
    E = np.zeros((V, 3, 100))
    side = np.sign(lam + 1e-9) * (np.abs(lam) > 1e-6)
    xs = np.sign(verts[:, 0])
    normal = (verts - CENTER) / np.linalg.norm(verts - CENTER, axis=1, keepdims=True)
    m = PHI_MOUTH
    corners = bump(phi, np.abs(lam), m, MOUTH_HALF_WIDTH, 6.0, 9.0)
    lips = bump(phi, lam, m, 0.0, 5.0, 24.0)
    upper_lip = bump(phi, lam, m - 3.0, 0.0, 3.5, 22.0) * (phi < m)
    lower_lip = bump(phi, lam, m + 4.0, 0.0, 4.5, 22.0) * (phi > m)
    cheeks = bump(phi, np.abs(lam), 97.0, 36.0, 8.0, 11.0)
    brows = bump(phi, np.abs(lam), 69.0, 20.0, 5.0, 13.0)
    del side
    # 0 smile: corners up, out and back; cheeks up
    E[:, 0, 0] = 0.0030 * corners * xs
    E[:, 1, 0] = 0.0045 * corners + 0.0020 * cheeks
    E[:, 2, 0] = -0.0015 * corners
    # 1 lips apart: lower lip down, upper lip up
    E[:, 1, 1] = -0.0045 * lower_lip + 0.0020 * upper_lip
    # 2 pucker: lips forward and narrower
    E[:, 2, 2] = 0.0050 * lips
    E[:, 0, 2] = -0.0030 * lips * np.clip(verts[:, 0] / 0.03, -1, 1)
    # 3 stretch: corners outwards
    E[:, 0, 3] = 0.0050 * corners * xs
    # 4 frown: corners down
    E[:, 1, 4] = -0.0040 * corners
    # 5 brows up
    E[:, 1, 5] = 0.0045 * brows
    # 6 cheeks puffed
    E[:, :, 6] = 0.0045 * (cheeks + 0.5 * lips)[:, None] * normal
    # 7 upper lip raised
    E[:, 1, 7] = 0.0035 * upper_lip
    E[:, 2, 7] = 0.0010 * upper_lip
    # 8..99: smooth blobs on the face, decreasing
    for k in range(8, 100):
        p0, l0 = rng.uniform(70, 120), rng.uniform(-50, 50)
        g = bump(phi, lam, p0, l0, rng.uniform(6, 14), rng.uniform(8, 20))
        g = g + bump(phi, lam, p0, -l0, 10, 14) * 0.5 * rng.uniform(-1, 1)
        amp = 0.0025 * (8.0 / k) ** 0.5 if k < 50 else 0.0005
        E[:, :, k] = amp * g[:, None] * rng.normal(size=3)[None, :]
    return E


def shape_dirs(verts, rng):
    """(V, 3, 300): smooth whole-head deformations, a few millimetres for the first ones."""
    V = len(verts)
    S = np.zeros((V, 3, 300))
    q = (verts - CENTER) / AXES                           # about -1..1
    S[:, 0, 0] = 0.004 * q[:, 0]                          # wider
    S[:, 1, 1] = 0.004 * q[:, 1]                          # taller
    S[:, 2, 2] = 0.004 * q[:, 2]                          # deeper
    for k in range(3, 300):
        c = rng.normal(size=(3, 4))                       # a random linear + one quadratic field
        field = c[:, 0] + q @ c[:, 1:].T + 0.5 * c[:, 0] * (q ** 2).sum(1, keepdims=True)
        S[:, :, k] = field * (0.0015 / math.sqrt(k))
    return S


def make(seed=0):
    rng = np.random.default_rng(seed)
    verts, faces, phi, lam, k_mouth, phi_rows, vt, ft = build_mesh()
    V = len(verts)
    shapedirs = np.concatenate([shape_dirs(verts, rng), expression_dirs(verts, phi, lam, rng)], axis=2)
    face_region = bump(phi, lam, 100.0, 0.0, 15.0, 40.0)
    posedirs = 1e-4 * face_region[:, None, None] * rng.normal(size=(1, 3, 36))   # near zero
    reg = joint_regressor(verts)
    weights = skinning_weights(phi, lam, phi_rows, k_mouth)
    model = {
        'f': faces,
        'v_template': verts.astype(np.float64),
        'shapedirs': shapedirs.astype(np.float64),
        'posedirs': posedirs.astype(np.float64),
        'J_regressor': reg,
        'weights': weights,
        'kintree_table': np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        'J': reg @ verts,
        'bs_style': 'lbs',
        'bs_type': 'lrotmin',
        'flame_source': SOURCE,
    }
    assert model['weights'].shape == (V, 5) and np.allclose(weights.sum(1), 1)
    return model, {'vt': vt, 'ft': ft}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('-o', '--output', required=True, help='the pickle to write (e.g. build/demo/standin_head.pkl)')
    ap.add_argument('--uv', help='also write uv coordinates (vt, ft) as upstream\'s uv_coords.npz')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args(argv)
    model, uv = make(args.seed)
    write_flame_pickle(args.output, model, '2023')
    if args.uv:
        np.savez(args.uv, **uv)
    print(f'{args.output}: stand-in head (not FLAME): {len(model["v_template"])} vertices, '
          f'{len(model["f"])} faces, 5 joints', file=sys.stderr)


if __name__ == '__main__':
    main()
