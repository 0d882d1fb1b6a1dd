"""FLAME: tools/export.py --flame (restricted unpickling, checks) and lib/flame.c vertices against the
float32 reference tools/reference/dpt_ref/flame.py (upstream's FLAME.forward semantics).

Models are synthetic pickles in the official on-disk forms (tools/reference/make_flame.py): official size
(5023 vertices, 9976 faces, 5 joints; tests named *official*, kept out of the qemu run) and tiny.
Tolerance: max |v_C − v_ref| ≤ 1e-5 · max |v_ref| (the issue's bound).
"""

import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import helpers
import export
import make_flame
from dpt_ref import flame as ref_flame

HARNESS = helpers.BUILD / 'tests' / 'harness_flame'
DPT_INFO = helpers.BUILD / 'dpt-info'
EXPORT = str(helpers.ROOT / 'tools' / 'export.py')
TOL = 1e-5


def _export_cli(*args, cwd=None):
    r = subprocess.run([helpers.PYTHON, EXPORT, *map(str, args)], capture_output=True, text=True, timeout=300,
                       cwd=cwd)
    return r.returncode, r.stdout, r.stderr


def _models(size):
    """Cached dir with the 2020 and 2023 pickles, a uv npz and their FLAME files."""
    def build(tmp):
        arrays = make_flame.flame_arrays(size, 0)
        make_flame.write_flame_pickle(tmp / 'flame2020.pkl', arrays, '2020')
        make_flame.write_flame_pickle(tmp / 'flame2023.pkl', arrays, '2023')
        make_flame.write_uv(tmp / 'uv.npz', len(arrays['f']), 0)
        for form, uv in (('2020', True), ('2023', False)):
            args = ['--flame', tmp / f'flame{form}.pkl', '-o', tmp / f'flame{form}.dpt'] + (
                ['--uv', tmp / 'uv.npz'] if uv else [])
            rc, _, err = _export_cli(*args)
            assert rc == 0, err
    return helpers.cached_dir('flame', dict(size=size, numpy=np.__version__), build,
                              sources=[make_flame.__file__, export.__file__])


@pytest.fixture(scope='module')
def official():
    return _models('official')


@pytest.fixture(scope='module')
def tiny():
    return _models('tiny')


def _coefs(T, seed=0, per_frame=False, scale=0.6):
    rng = np.random.default_rng(seed)
    shape = rng.normal(size=(T, 100) if per_frame else 100).astype(np.float32)
    exp = rng.normal(size=(T, 50)).astype(np.float32)
    pose = (rng.normal(size=(T, 6)) * scale).astype(np.float32)
    return shape, exp, pose


def _c_vertices(dpt, shape, exp, pose, tmp, no_head=False, threads=None):
    coef = tmp / 'coef.npz'
    out = tmp / 'v.npy'
    np.savez(coef, shape=shape, exp=exp, pose=pose)
    cmd = [str(HARNESS), 'vertices', str(dpt), str(coef), str(out)] + (['--no-head'] if no_head else []) + (
        ['--threads', str(threads)] if threads else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return np.load(out)


def _check(dpt, shape, exp, pose, tmp, no_head=False, threads=None):
    v = _c_vertices(dpt, shape, exp, pose, tmp, no_head, threads)
    r = ref_flame.flame_vertices(ref_flame.flame_from_dpt(dpt), shape, exp, pose, no_head=no_head)
    assert v.shape == r.shape
    err = np.abs(v - r).max()
    scale = np.abs(r).max()
    assert err <= TOL * scale, f'max abs error {err:.3g} > {TOL} x max|v| {scale:.3g}'
    return v, r


# ---------------------------------------------------------------------------------------------------------
# vertices: C against the reference

def _pose_cases(T):
    shape, exp, pose = _coefs(T, seed=3)
    pose[0] = 0.0                                   # exactly zero: R = I through the epsilon
    pose[1, :3] = [1.9, -0.3, 0.4]                  # large head rotation (‖r‖ ≈ 1.97 rad)
    pose[2, :3] = [-1.2, 1.4, 0.2]                  # ‖r‖ ≈ 1.85 rad
    pose[3, :3] = [3e-9, -1e-9, 2e-9]               # angle near 0: the epsilon dominates
    pose[4, :3] = [0.0, 0.0, 3.1]                   # near π
    pose[5, 3:] = [0.45, 0.0, 0.0]                  # jaw wide open
    pose[6, 3:] = [0.3, 0.1, -0.05]
    pose[7, 3:] = [1e-9, 0.0, 0.0]
    return shape, exp, pose


@pytest.mark.parametrize('no_head', [False, True], ids=['head', 'no_head'])
def test_vertices_official_rotations_jaw(official, tmp_path, no_head):
    shape, exp, pose = _pose_cases(16)
    v, r = _check(official / 'flame2020.dpt', shape, exp, pose, tmp_path, no_head=no_head)
    if no_head:                                     # the global rotation changes nothing
        pose2 = pose.copy()
        pose2[:, :3] = 0
        v2 = _c_vertices(official / 'flame2020.dpt', shape, exp, pose2, tmp_path)
        assert np.abs(v - v2).max() <= TOL * np.abs(r).max()


def test_vertices_official_per_frame_shape(official, tmp_path):
    shape, exp, pose = _coefs(24, seed=5, per_frame=True)
    _check(official / 'flame2023.dpt', shape, exp, pose, tmp_path)
    # one shape for all frames = the same shape repeated per frame
    one = shape[7]
    v1 = _c_vertices(official / 'flame2023.dpt', one, exp, pose, tmp_path)
    vr = _c_vertices(official / 'flame2023.dpt', np.repeat(one[None], 24, 0), exp, pose, tmp_path)
    assert np.abs(v1 - vr).max() <= TOL * np.abs(vr).max()


@pytest.mark.parametrize('threads', [1, 2])
def test_vertices_official_many_frames(official, tmp_path, threads):
    # more than upstream's 512-frame batches
    shape, exp, pose = _coefs(613, seed=7, scale=0.8)
    _check(official / 'flame2020.dpt', shape, exp, pose, tmp_path, threads=threads)


def test_vertices_tiny(tiny, tmp_path):
    shape, exp, pose = _pose_cases(12)
    _check(tiny / 'flame2020.dpt', shape, exp, pose, tmp_path)
    _check(tiny / 'flame2020.dpt', shape, exp, pose, tmp_path, no_head=True)
    s, e, p = _coefs(9, seed=11, per_frame=True)
    _check(tiny / 'flame2023.dpt', s, e, p, tmp_path, threads=2)


def test_vertices_nan_refused(tiny, tmp_path):
    shape, exp, pose = _coefs(3)
    exp[1, 4] = np.nan
    np.savez(tmp_path / 'c.npz', shape=shape, exp=exp, pose=pose)
    r = subprocess.run([str(HARNESS), 'vertices', str(tiny / 'flame2020.dpt'), str(tmp_path / 'c.npz'),
                        str(tmp_path / 'v.npy')], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and 'NaN' in r.stderr and len(r.stderr.splitlines()) == 1
    assert not (tmp_path / 'v.npy').exists()


# ---------------------------------------------------------------------------------------------------------
# exporter: what it keeps

def test_export_official_tensors_as_upstream(official):
    """2020 (chumpy, old scipy, Python-2 strings) and 2023 forms give identical tensors, which are what
    upstream's FLAME.__init__ keeps from the arrays."""
    meta20, t20 = export.read_dpt(official / 'flame2020.dpt')
    meta23, t23 = export.read_dpt(official / 'flame2023.dpt')
    assert meta20['kind'] == meta23['kind'] == 'flame'
    assert meta20['flame_source'] == 'flame2020.pkl'
    assert set(t20) - set(t23) == {'flame.uv.vt', 'flame.uv.ft'}
    for k in t23:
        assert t20[k].dtype == np.float32 and np.array_equal(t20[k], t23[k]), k
    a = make_flame.flame_arrays('official', 0)
    sd = a['shapedirs']
    np.testing.assert_array_equal(t20['flame.shapedirs'],
                                  np.concatenate([sd[:, :, :100], sd[:, :, 300:350]], 2).astype(np.float32))
    np.testing.assert_array_equal(t20['flame.posedirs'], a['posedirs'].reshape(-1, 36).T.astype(np.float32))
    np.testing.assert_array_equal(t20['flame.J_regressor'], a['J_regressor'].astype(np.float32))
    np.testing.assert_array_equal(t20['flame.parents'], [-1, 0, 1, 1, 1])
    np.testing.assert_array_equal(t20['flame.faces'], a['f'].astype(np.float32))
    np.testing.assert_array_equal(t20['flame.lbs_weights'], a['weights'].astype(np.float32))
    np.testing.assert_array_equal(t20['flame.v_template'], a['v_template'].astype(np.float32))
    assert t20['flame.v_template'].shape == (5023, 3) and t20['flame.faces'].shape == (9976, 3)


def test_export_official_uv_and_info(official, tmp_path):
    uv = np.load(official / 'uv.npz')
    r = subprocess.run([str(HARNESS), 'mesh', str(official / 'flame2020.dpt'), str(tmp_path / 'f.npy'),
                        str(tmp_path / 'vt.npy'), str(tmp_path / 'ft.npy')], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / 'vt.npy'), uv['vt'].astype(np.float32))
    np.testing.assert_array_equal(np.load(tmp_path / 'ft.npy'), uv['ft'].astype(np.float32))
    np.testing.assert_array_equal(np.load(tmp_path / 'f.npy'),
                                  make_flame.flame_arrays('official', 0)['f'].astype(np.float32))
    out = subprocess.run([str(DPT_INFO), str(official / 'flame2020.dpt')], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert '5023 vertices, 9976 faces, 5 joints' in out.stdout
    assert f"uv              {len(uv['vt'])} coordinates" in out.stdout
    out = subprocess.run([str(DPT_INFO), str(official / 'flame2023.dpt')], capture_output=True, text=True)
    assert out.returncode == 0 and 'uv              none' in out.stdout


def test_info_counts_come_from_the_file(tiny):
    r = subprocess.run([str(HARNESS), 'info', str(tiny / 'flame2020.dpt')], capture_output=True, text=True)
    a = make_flame.flame_arrays('tiny', 0)
    n_uv = len(np.load(tiny / 'uv.npz')['vt'])
    assert r.stdout.split() == [str(x) for x in (len(a['v_template']), len(a['f']), 5, 100, 50, 1, n_uv)]


def test_protocol_1_pickle_with_copy_reg_reconstructor(tmp_path):
    """Protocol 0/1 pickles build the chumpy and scipy objects through copy_reg._reconstructor."""
    arrays = make_flame.flame_arrays('tiny', 2)
    with make_flame._stand_in_modules('scipy.sparse.csc'):
        obj = make_flame._ordered(arrays, '2020')
        data = pickle.dumps(obj, protocol=1)
    assert b'copy_reg\n_reconstructor' in data
    (tmp_path / 'p1.pkl').write_bytes(data)
    make_flame.write_flame_pickle(tmp_path / 'p2.pkl', arrays, '2020')
    for n in ('p1', 'p2'):
        rc, _, err = _export_cli('--flame', tmp_path / f'{n}.pkl', '-o', tmp_path / f'{n}.dpt')
        assert rc == 0, err
    _, t1 = export.read_dpt(tmp_path / 'p1.dpt')
    _, t2 = export.read_dpt(tmp_path / 'p2.dpt')
    assert all(np.array_equal(t1[k], t2[k]) for k in t2)


def test_exporter_needs_neither_chumpy_nor_scipy():
    code = ('import sys; sys.path.insert(0, sys.argv[1]); import export; '
            "print('chumpy' in sys.modules, 'scipy' in sys.modules)")
    r = subprocess.run([helpers.PYTHON, '-c', code, str(helpers.ROOT / 'tools')], capture_output=True, text=True)
    assert r.stdout.split() == ['False', 'False']


# ---------------------------------------------------------------------------------------------------------
# exporter: refusals (one line naming the file, exit 1, no output left)

class _Evil:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').system('touch pwned')",))


def _refused(tmp_path, pkl, *expect, uv=None):
    out = tmp_path / 'out.dpt'
    args = ['--flame', pkl, '-o', out] + (['--uv', uv] if uv else [])
    rc, so, err = _export_cli(*args, cwd=tmp_path)
    assert rc == 1, (so, err)
    assert len(err.splitlines()) == 1, err
    named = uv if uv is not None and any('uv' in e or 'vt' in e or 'ft' in e for e in expect) else pkl
    assert str(named) in err, err
    for e in expect:
        assert e in err, err
    assert not out.exists() and not list(tmp_path.glob('.out.dpt.*'))
    return err


@pytest.mark.parametrize('evil', ['os.system', 'eval', 'inside_ch'])
def test_malicious_pickle_refused_never_run(tmp_path, evil):
    marker = tmp_path / 'pwned'
    arrays = make_flame.flame_arrays('tiny', 0)
    if evil == 'os.system':
        obj = dict(arrays, weights=_Evil(f'touch {marker}'))
        cls = 'posix.system'
    elif evil == 'eval':
        obj = dict(arrays, f=_EvalEvil())
        cls = '__builtin__.eval'                   # protocol 2 writes Python-2 names
    else:                                           # a payload hidden in a chumpy state dict
        with make_flame._stand_in_modules('scipy.sparse.csc'):
            ch = make_flame._Ch(arrays['shapedirs'])
            ch._state['_itr'] = _Evil(f'touch {marker}')
            obj = dict(arrays, shapedirs=ch)
            data = pickle.dumps(obj, protocol=2)
        cls = 'posix.system'
    if evil != 'inside_ch':
        data = pickle.dumps(obj, protocol=2)
    # the pickle really would run it
    assert cls.split('.')[1].encode() in data
    (tmp_path / 'evil.pkl').write_bytes(data)
    err = _refused(tmp_path, tmp_path / 'evil.pkl', 'refused', cls, 'nothing was executed')
    assert not marker.exists() and not (tmp_path / 'pwned').exists(), err


def test_object_arrays_refused(tmp_path):
    """Object arrays would unpickle their elements as objects: refused at the dtype."""
    marker = tmp_path / 'pwned'
    arrays = make_flame.flame_arrays('tiny', 0)
    obj = dict(arrays, weights=np.array([_Evil(f'touch {marker}'), 1], dtype=object))
    (tmp_path / 'obj.pkl').write_bytes(pickle.dumps(obj, protocol=2))
    _refused(tmp_path, tmp_path / 'obj.pkl', 'refused', 'object arrays')
    assert not marker.exists()


def _variant(tmp_path, change, form='2020'):
    a = make_flame.flame_arrays('tiny', 0)
    change(a)
    p = tmp_path / 'bad.pkl'
    make_flame.write_flame_pickle(p, a, form)
    return p


def _set(key, value):
    def change(a):
        a[key] = value(a) if callable(value) else value
    return change


BAD = {
    'missing_weights': (lambda a: a.pop('weights'), ["missing 'weights'"]),
    'weights_shape': (_set('weights', lambda a: a['weights'][:, :4]), ["'weights' has shape (40, 4)"]),
    'posedirs_shape': (_set('posedirs', lambda a: a['posedirs'][:, :, :30]), ["'posedirs'", '36']),
    'shapedirs_short': (_set('shapedirs', lambda a: a['shapedirs'][:, :, :340]), ["'shapedirs'", '350']),
    'template_shape': (_set('v_template', lambda a: a['v_template'][:, :2]), ["'v_template'"]),
    'regressor_cols': (_set('J_regressor', lambda a: a['J_regressor'][:, :39]), ["'J_regressor'"]),
    'face_index': (lambda a: a['f'].__setitem__((3, 1), 40), ["'f' has vertex indices outside 0..39"]),
    'parent_order': (lambda a: a['kintree_table'].__setitem__((0, 2), 3), ['joint 2', 'parent 3']),
    'six_joints': (_set('kintree_table', np.array([[4294967295, 0, 1, 1, 1, 0], np.arange(6)])), ['6 joints']),
    'nan_template': (lambda a: a['v_template'].__setitem__((5, 1), np.nan), ["'v_template' has NaN"]),
    'inf_shapedirs': (lambda a: a['shapedirs'].__setitem__((1, 1, 310), np.inf), ["'shapedirs' has NaN"]),
    'string_faces': (_set('f', 'faces'), ["'f' is a str"]),
    'huge_weights': (lambda a: a['weights'].__setitem__((2, 2), 1e39), ["'weights' has values beyond the float32"]),
}


@pytest.mark.parametrize('name', sorted(BAD))
def test_exporter_refuses_bad_models(tmp_path, name):
    change, expect = BAD[name]
    _refused(tmp_path, _variant(tmp_path, change), *expect)


def test_exporter_refuses_inconsistent_csc(tmp_path):
    a = make_flame.flame_arrays('tiny', 0)
    with make_flame._stand_in_modules('scipy.sparse.csc'):
        obj = make_flame._ordered(a, '2020')
        obj['J_regressor'].__dict__['indptr'] = obj['J_regressor'].__dict__['indptr'][:-3]
        buf = io.BytesIO()
        make_flame._Py2Pickler(buf, protocol=2).dump(obj)
    (tmp_path / 'csc.pkl').write_bytes(buf.getvalue())
    _refused(tmp_path, tmp_path / 'csc.pkl', "'J_regressor' csc_matrix", 'inconsistent')


@pytest.mark.parametrize('cut', [0.5, 0.999])
def test_exporter_refuses_truncated(tiny, tmp_path, cut):
    data = (tiny / 'flame2020.pkl').read_bytes()
    (tmp_path / 't.pkl').write_bytes(data[:int(len(data) * cut)])
    _refused(tmp_path, tmp_path / 't.pkl', 'truncated')


def test_exporter_refuses_non_pickles(tiny, tmp_path):
    _refused(tmp_path, tiny / 'uv.npz', 'not a pickle')
    (tmp_path / 'list.pkl').write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    _refused(tmp_path, tmp_path / 'list.pkl', 'holds a dict, this one a list')
    (tmp_path / 'junk.pkl').write_bytes(b'\x80\x02\xff\xfe garbage')
    _refused(tmp_path, tmp_path / 'junk.pkl', 'not a readable FLAME pickle')
    rc, _, err = _export_cli('--flame', tmp_path / 'absent.pkl', '-o', tmp_path / 'o.dpt')
    assert rc == 1 and 'no such file' in err and len(err.splitlines()) == 1


@pytest.mark.parametrize('case', ['missing_ft', 'ft_rows', 'ft_index', 'vt_nan', 'vt_range'])
def test_exporter_refuses_bad_uv(tiny, tmp_path, case):
    uv = dict(np.load(tiny / 'uv.npz'))
    expect = {'missing_ft': "no array 'ft'", 'ft_rows': "'ft' has shape", 'ft_index': "'ft' has indices",
              'vt_nan': "'vt' has NaN", 'vt_range': "'vt' has values outside [0, 1]"}[case]
    if case == 'missing_ft':
        del uv['ft']
    elif case == 'ft_rows':
        uv['ft'] = uv['ft'][:-1]
    elif case == 'ft_index':
        uv['ft'][0, 0] = len(uv['vt'])
    elif case == 'vt_nan':
        uv['vt'][2, 0] = np.nan
    else:
        uv['vt'][1, 1] = -0.01
    np.savez(tmp_path / 'uv.npz', **uv)
    _refused(tmp_path, tiny / 'flame2020.pkl', expect, uv=tmp_path / 'uv.npz')


def test_model_and_flame_loaders_refuse_each_other(tiny, tmp_path):
    # dpt-info on a model still describes the model; the harness refuses a model as a FLAME file
    r = subprocess.run([str(HARNESS), 'info', str(helpers.ROOT / 'weights' / 'demo-tiny.dpt')],
                       capture_output=True, text=True)
    assert r.returncode == 1 and 'not a FLAME file' in r.stderr
    r = subprocess.run([str(DPT_INFO), str(tiny / 'flame2020.dpt'), '--tensors'], capture_output=True, text=True)
    assert r.returncode == 1 and 'FLAME file' in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize('form', ['2020', '2023'])
def test_damaged_pickles_fail_cleanly(tmp_path, form):
    """Deterministic byte damage and truncation of a tiny pickle: every variant either converts or fails
    with the exporter's one-line error (never another exception, never a float32 overflow)."""
    import random
    import warnings
    data = make_flame.flame_pickle_bytes(make_flame.flame_arrays('tiny', 0), form)
    rng = random.Random(form)
    p = tmp_path / 'damaged.pkl'
    outcomes = {'ok': 0, 'error': 0}
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)
        for i in range(400):
            b = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            if i % 3 == 0:
                b = b[:rng.randrange(len(b))]
            p.write_bytes(bytes(b))
            try:
                export.flame_tensors(p, export.load_flame_pickle(p))
                outcomes['ok'] += 1
            except export.ExportError as e:
                assert str(e).startswith(f'{p}: ') and '\n' not in str(e)
                outcomes['error'] += 1
    assert outcomes['error'] > 100
