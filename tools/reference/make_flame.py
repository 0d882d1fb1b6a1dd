#!/usr/bin/env python3
"""Synthetic FLAME models in the official `generic_model.pkl` on-disk form (FLAME itself is licence-gated).

    .venv/bin/python tools/reference/make_flame.py OUT.pkl [--form 2020|2023] [--size official|tiny]
        [--seed 0] [--uv OUT_UV.npz]

The values are random but plausible (a head-sized point cloud, small blend directions, skinning weights
that sum to 1, a sparse joint regressor whose rows average a few vertices); what matters is the form:

* ``--form 2020`` (default): as FLAME 2020 is distributed — a Python-2 protocol-2 pickle (read upstream
  with ``encoding='latin1'``): every string a Python-2 ``str`` (SHORT_BINSTRING/BINSTRING, array data
  included), ``__builtin__`` names, arrays through ``numpy.core.multiarray._reconstruct``, ``shapedirs``
  (and ``J``) as ``chumpy.ch.Ch`` objects with chumpy's state dict (``_dirty_vars`` a set, ``_itr``,
  ``_make_dense``, ``_make_sparse``, ``_depends_on_deps``, ``x`` the array), ``J_regressor`` a
  ``scipy.sparse.csc.csc_matrix`` with old scipy's state dict (``format``, ``maxprint``, ``_shape``,
  ``indices``, ``indptr``, ``data``).
* ``--form 2023``: a Python-3 protocol-2 pickle (bytes through ``_codecs.encode``, ``__builtin__`` names
  via the protocol-2 name mapping), ``shapedirs`` a plain array, ``J_regressor`` from the new scipy module
  ``scipy.sparse._csc`` (state ``_shape``, ``maxprint``, ``data``, ``indices``, ``indptr``).

Neither chumpy nor scipy is needed: inert stand-in classes are registered under their module names in
``sys.modules`` only while the pickle is written (the real modules, if installed, are put back).
The stand-ins' pickled form was compared once with real chumpy 0.70 + scipy 1.11 (Python 3,
protocol 2): the opcode streams of a real Ch + csc_matrix and of the stand-ins are identical, and real
chumpy/scipy unpickle both forms to the same values (DEVELOPERS.md, "FLAME notes").

Sizes: ``official`` = 5023 vertices, 9976 faces, 5 joints, shapedirs 400, posedirs 36 (FLAME 2020);
``tiny`` = 40 vertices, 60 faces, the same joints and directions (fast tests, small fixtures).
``--uv`` also writes a uv npz in the form of upstream's ``models/data/uv_coords.npz`` (``vt`` float64
(N, 2) in [0, 1], ``ft`` uint32 (faces, 3)).

Library use: ``flame_arrays(size, seed)`` → dict of the official keys (numpy arrays, float64 as in the
official file); ``write_flame_pickle(path, arrays, form)``; ``write_uv(path, n_faces, seed)``.
"""

import argparse
import contextlib
import io
import pickle
import struct
import sys
import types

import numpy as np

SIZES = {
    'official': dict(n_vertices=5023, n_faces=9976),
    'tiny': dict(n_vertices=40, n_faces=60),
}
N_JOINTS = 5            # global, neck, jaw, left eye, right eye
N_SHAPEDIRS = 400       # 300 shape + 100 expression
ROOT_PARENT = 4294967295


def flame_arrays(size='official', seed=0):
    """The official keys of generic_model.pkl with random-but-plausible float64 / integer values."""
    V, F = SIZES[size]['n_vertices'], SIZES[size]['n_faces']
    J = N_JOINTS
    rng = np.random.default_rng(seed)
    # head-sized ellipsoid in FLAME's metres (about 0.16 × 0.22 × 0.2 m), centred near the origin
    d = rng.normal(size=(V, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    v_template = d * np.array([0.08, 0.11, 0.10]) * rng.uniform(0.9, 1.05, size=(V, 1)) + [0.0, -0.01, 0.0]
    # smooth-ish directions: a few global modes of the coordinates plus noise, millimetre scale
    basis = np.concatenate([v_template, v_template ** 2 * 10, np.ones((V, 1))], axis=1)   # (V, 7)
    mix = rng.normal(size=(7, 3 * N_SHAPEDIRS)) * 2e-3
    shapedirs = (basis @ mix).reshape(V, 3, N_SHAPEDIRS) + rng.normal(size=(V, 3, N_SHAPEDIRS)) * 5e-4
    posedirs = rng.normal(size=(V, 3, 9 * (J - 1))) * 2e-3
    # joints: each the average of a few vertices (rows of the regressor sum to 1)
    per_joint = min(12, V // J)
    rows, cols, vals = [], [], []
    picks = rng.permutation(V)[:per_joint * J].reshape(J, per_joint)
    for j in range(J):
        w = rng.uniform(0.5, 1.5, size=per_joint)
        rows += [j] * per_joint
        cols += list(picks[j])
        vals += list(w / w.sum())
    J_regressor = np.zeros((J, V))
    J_regressor[rows, cols] = vals
    weights = rng.dirichlet(np.full(J, 0.7), size=V)
    kintree_table = np.array([[ROOT_PARENT, 0, 1, 1, 1], np.arange(J)], dtype=np.int64)
    f = np.stack([rng.choice(V, 3, replace=False) for _ in range(F)]).astype(np.uint32)
    joints = J_regressor @ v_template
    return {
        'f': f, 'v_template': v_template, 'shapedirs': shapedirs, 'posedirs': posedirs,
        'J_regressor': J_regressor, 'weights': weights, 'kintree_table': kintree_table, 'J': joints,
        'bs_style': 'lbs', 'bs_type': 'lrotmin',
    }


def write_uv(path, n_faces, seed=0, n_uv=None):
    """uv npz in upstream's uv_coords.npz form: vt float64 (N, 2) in [0, 1], ft uint32 (n_faces, 3)."""
    rng = np.random.default_rng(seed + 1000)
    n_uv = n_uv or max(3, n_faces // 2 + 7)
    vt = rng.uniform(0.005, 0.995, size=(n_uv, 2))
    ft = rng.integers(0, n_uv, size=(n_faces, 3)).astype(np.uint32)
    np.savez_compressed(path, vt=vt, ft=ft)


# ---------------------------------------------------------------------------------------------------------
# Stand-ins for chumpy.ch.Ch and scipy's csc_matrix, pickled as the real classes are.

class _Ch:
    """Pickles like chumpy.ch.Ch: NEWOBJ of the class, then BUILD with chumpy's __getstate__ dict."""

    def __init__(self, x):
        self._state = {'_dirty_vars': {'x'}, '_itr': None, '_make_dense': False, '_make_sparse': False,
                       '_depends_on_deps': {}, 'x': x}

    def __getstate__(self):
        return self._state


class _Csc:
    """Pickles like scipy's csc_matrix: NEWOBJ of the class, then BUILD with its __dict__."""

    def __init__(self, dense, old):
        J, V = dense.shape
        data, indices, indptr = [], [], [0]
        for c in range(V):
            nz = np.nonzero(dense[:, c])[0]
            indices += list(nz)
            data += list(dense[nz, c])
            indptr.append(len(indices))
        arrays = dict(indices=np.array(indices, np.int32), indptr=np.array(indptr, np.int32),
                      data=np.array(data, np.float64))
        if old:     # scipy < 1.8 (module scipy.sparse.csc) kept `format` in the instance dict
            self.__dict__.update(format='csc', maxprint=50, _shape=(J, V), **arrays)
        else:
            self.__dict__.update(_shape=(J, V), maxprint=50, data=arrays['data'],
                                 indices=arrays['indices'], indptr=arrays['indptr'])


@contextlib.contextmanager
def _stand_in_modules(csc_module):
    """Register _Ch as chumpy.ch.Ch and _Csc as csc_module.csc_matrix while pickling."""
    names = ['chumpy', 'chumpy.ch', 'scipy', 'scipy.sparse', csc_module]
    saved = {n: sys.modules.get(n) for n in names}
    fake = {n: types.ModuleType(n) for n in names}
    fake['chumpy.ch'].Ch = _Ch
    fake[csc_module].csc_matrix = _Csc
    old = (_Ch.__module__, _Ch.__qualname__, _Csc.__module__, _Csc.__qualname__)
    _Ch.__module__, _Ch.__qualname__ = 'chumpy.ch', 'Ch'
    _Csc.__module__, _Csc.__qualname__ = csc_module, 'csc_matrix'
    sys.modules.update(fake)
    try:
        yield
    finally:
        _Ch.__module__, _Ch.__qualname__, _Csc.__module__, _Csc.__qualname__ = old
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


class _Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's pickle writes it: str and bytes both as Python-2 byte strings."""

    def _save_py2_str(self, obj):
        b = obj.encode('latin1') if isinstance(obj, str) else bytes(obj)
        n = len(b)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + b)
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', n) + b)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[str] = _save_py2_str
    dispatch[bytes] = _save_py2_str


def _ordered(arrays, form):
    a = dict(arrays)
    if form == '2020':
        a['shapedirs'] = _Ch(a['shapedirs'])
        a['J'] = _Ch(a['J'])
        a['J_regressor'] = _Csc(a['J_regressor'], old=True)
    else:
        a['J_regressor'] = _Csc(a['J_regressor'], old=False)
    order = ['J_regressor', 'f', 'kintree_table', 'J', 'weights', 'posedirs', 'v_template', 'shapedirs',
             'bs_style', 'bs_type']
    return {k: a[k] for k in order if k in a} | {k: v for k, v in a.items() if k not in order}


def flame_pickle_bytes(arrays, form='2020'):
    """The pickle of `arrays` (from flame_arrays) in the given form, as bytes."""
    if form not in ('2020', '2023'):
        raise ValueError(f'form must be 2020 or 2023, not {form!r}')
    with _stand_in_modules('scipy.sparse.csc' if form == '2020' else 'scipy.sparse._csc'):
        obj = _ordered(arrays, form)
        buf = io.BytesIO()
        if form == '2020':
            _Py2Pickler(buf, protocol=2).dump(obj)
        else:
            pickle.Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_flame_pickle(path, arrays, form='2020'):
    with open(path, 'wb') as f:
        f.write(flame_pickle_bytes(arrays, form))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('output', metavar='OUT.pkl')
    p.add_argument('--form', choices=['2020', '2023'], default='2020')
    p.add_argument('--size', choices=sorted(SIZES), default='official')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--uv', metavar='OUT_UV.npz', help='also write a uv npz (vt, ft) for these faces')
    a = p.parse_args(argv)
    arrays = flame_arrays(a.size, a.seed)
    write_flame_pickle(a.output, arrays, a.form)
    if a.uv:
        write_uv(a.uv, len(arrays['f']), a.seed)
    return 0


if __name__ == '__main__':
    sys.exit(main())
