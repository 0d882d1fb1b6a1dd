"""Video, meshes and frames: dpt-generate --flame and dpt-mesh on the stand-in head
(tools/make_standin_head.py, exported with tools/export.py --flame) and the bundled demo model.

The mp4 files are checked with ffprobe (frame count = coefficient frames, 25 fps, h264 yuv420p, an
AAC stream of the clip's length); vertices against a float64 NumPy LBS written from upstream's
lbs() description and against tools/reference/dpt_ref/flame.py (float32 PyTorch); OBJ and PNG
read back; every failure must be one line, exit 1, and leave no output (and no temporary) behind.
"""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import helpers
from dpt_ref import flame as flame_ref

GEN = str(helpers.BUILD / 'dpt-generate')
MESH = str(helpers.BUILD / 'dpt-mesh')
MODEL = str(helpers.ROOT / 'weights' / 'demo-tiny.dpt')
SPEECH = str(helpers.ROOT / 'examples' / 'data' / 'speech.flac')
STANDIN = helpers.ROOT / 'tools' / 'make_standin_head.py'
EXPORT = helpers.ROOT / 'tools' / 'export.py'
FPS = 25

pytestmark = pytest.mark.skipif(shutil.which('ffprobe') is None, reason='ffmpeg/ffprobe not installed (make deps)')


def run(prog, *args, **kw):
    return subprocess.run([prog] + [str(a) for a in args], capture_output=True, text=True, **kw)


def ok(prog, *args, **kw):
    r = run(prog, *args, **kw)
    assert r.returncode == 0, r.stderr
    return r


def fails(prog, *args, status=1, **kw):
    r = run(prog, *args, **kw)
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def leftovers(d):
    """Temporary files or directories a run left in d (outfile.c names them '.NAME.tmp-...')."""
    return [p.name for p in d.iterdir() if '.tmp-' in p.name]


# ---- the stand-in head, exported ------------------------------------------------------------

def _build_standin(tmp):
    subprocess.run([helpers.PYTHON, str(STANDIN), '-o', str(tmp / 'head.pkl'), '--uv', str(tmp / 'uv.npz')],
                   check=True, capture_output=True)
    label = ['--flame-source', 'stand-in head (not FLAME): tools/make_standin_head.py']
    r = subprocess.run([helpers.PYTHON, str(EXPORT), '--flame', str(tmp / 'head.pkl'), '--uv', str(tmp / 'uv.npz'),
                        *label, '-o', str(tmp / 'head.dpt')], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    subprocess.run([helpers.PYTHON, str(EXPORT), '--flame', str(tmp / 'head.pkl'), *label,
                    '-o', str(tmp / 'head-nouv.dpt')], check=True, capture_output=True)


@pytest.fixture(scope='module')
def standin():
    import make_standin_head
    d = helpers.cached_dir('standin', {'v': 1}, _build_standin, sources=[STANDIN, EXPORT])
    model, _ = make_standin_head.make()    # the arrays pickled (deterministic; the pickle needs scipy to load)
    uv = dict(np.load(d / 'uv.npz'))
    return {'dpt': d / 'head.dpt', 'nouv': d / 'head-nouv.dpt', 'pkl': model, 'uv': uv}


def rodrigues(r):
    """upstream's batch_rodrigues for one axis-angle (its 1e-8 included)."""
    angle = np.linalg.norm(r + 1e-8)
    k = r / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def lbs_numpy(m, shape, exp, pose, no_head=False):
    """Vertices (F, V, 3) float64 of upstream's FLAME.forward(pose2rot=True) for the pickle m."""
    dirs = np.concatenate([m['shapedirs'][:, :, :100], m['shapedirs'][:, :, 300:350]], axis=2)
    posedirs = m['posedirs'].reshape(-1, 36).T              # (36, V*3), as upstream
    parents = m['kintree_table'][0].astype(np.int64)
    parents[0] = -1
    out = []
    for s, e, p in zip(shape, exp, pose):
        v_shaped = m['v_template'] + dirs @ np.concatenate([s, e])
        J = m['J_regressor'] @ v_shaped
        full = [np.zeros(3) if no_head else p[:3], np.zeros(3), p[3:6], np.zeros(3), np.zeros(3)]
        R = [rodrigues(np.asarray(x, np.float64)) for x in full]
        feat = np.concatenate([(R[j] - np.eye(3)).ravel() for j in range(1, 5)])
        v_posed = v_shaped + (feat @ posedirs).reshape(-1, 3)
        G = []
        for j in range(5):
            T = np.eye(4)
            T[:3, :3] = R[j]
            T[:3, 3] = J[j] - (J[parents[j]] if parents[j] >= 0 else 0)
            G.append(T if parents[j] < 0 else G[parents[j]] @ T)
        A = np.stack(G)
        A[:, :3, 3] -= np.einsum('jab,jb->ja', A[:, :3, :3], J)
        W = np.einsum('vj,jab->vab', m['weights'], A)
        out.append(np.einsum('vab,vb->va', W[:, :3, :3], v_posed) + W[:, :3, 3])
    return np.stack(out)


def coef_file(path, F, seed=0, jaw=None, scale=1.0):
    rng = np.random.default_rng(seed)
    exp = (rng.normal(0, 1, (F, 50)) * scale).astype(np.float32)
    pose = (rng.normal(0, 0.1, (F, 6)) * scale).astype(np.float32)
    pose[:, 4:] = 0
    if jaw is not None:
        pose[:, 3] = jaw
    shape = np.repeat(rng.normal(0, 1, (1, 100)), F, axis=0).astype(np.float32)
    np.savez(path, exp=exp, pose=pose, shape=shape)
    return exp, pose, shape


def probe(path):
    r = ok('ffprobe', '-v', 'error', '-count_frames', '-show_streams', '-of', 'json', path)
    return {s['codec_type']: s for s in json.loads(r.stdout)['streams']}


@pytest.fixture(scope='module')
def short_speech(tmp_path_factory):
    """The first 1.6 s of the bundled clip as WAV: a 40-frame video."""
    import soundfile
    d = tmp_path_factory.mktemp('speech')
    x, sr = soundfile.read(SPEECH)
    path = d / 'short.wav'
    soundfile.write(path, x[:int(1.6 * sr)], sr)
    return path


# ---- the stand-in --------------------------------------------------------------------------

def test_standin_exports_with_flame_counts_and_jaw_opens(standin, tmp_path):
    m = standin['pkl']
    V = len(m['v_template'])
    assert m['shapedirs'].shape == (V, 3, 400) and m['posedirs'].shape == (V, 3, 36)
    assert m['weights'].shape == (V, 5) and m['J_regressor'].shape == (5, V)
    assert 'not FLAME' in m['flame_source']
    # the exported file keeps that label
    info = ok(str(helpers.BUILD / 'dpt-info'), standin['dpt']).stdout
    assert 'stand-in head (not FLAME)' in info and f'{V} vertices' in info
    # jaw closed vs opened 0.3 rad: the lower lip moves down by centimetres, the crown not at all
    F = 2
    exp = np.zeros((F, 50), np.float32)
    pose = np.zeros((F, 6), np.float32)
    pose[1, 3] = 0.3
    np.savez(tmp_path / 'jaw.npz', exp=exp, pose=pose, shape=np.zeros((F, 100), np.float32))
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'jaw.npz', '--vertices', tmp_path / 'v.npy')
    v = np.load(tmp_path / 'v.npy')
    d = np.linalg.norm(v[1] - v[0], axis=1)
    jaw = m['weights'][:, 2]
    assert d[jaw > 0.99].min() > 0.01                   # every fully jaw-bound vertex moves > 1 cm
    assert d[jaw == 0].max() < 5e-4                     # the rest stays (but for the tiny posedirs)
    assert (v[1][jaw > 0.99, 1] < v[0][jaw > 0.99, 1]).all()   # downwards: the mouth opens
    # the first expression directions move the mouth by millimetres
    for k in range(4):
        e = np.zeros((1, 50), np.float32)
        e[0, k] = 1
        np.savez(tmp_path / 'e.npz', exp=e, pose=np.zeros((1, 6), np.float32), shape=np.zeros((1, 100), np.float32))
        ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'e.npz', '--vertices', tmp_path / 've.npy')
        moved = np.linalg.norm(np.load(tmp_path / 've.npy')[0] - v[0], axis=1).max()
        assert 0.002 < moved < 0.02, (k, moved)


# ---- dpt-mesh ------------------------------------------------------------------------------

def test_mesh_vertices_match_lbs(standin, tmp_path):
    exp, pose, shape = coef_file(tmp_path / 'c.npz', 7, seed=3, scale=3.0)   # large rotations too
    for no_head in (False, True):
        out = tmp_path / f'v{int(no_head)}.npy'
        ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--vertices', out, '--threads', 2,
           *(['--no-head'] if no_head else []))
        v = np.load(out)
        assert v.dtype == np.float32 and v.shape == (7, len(standin['pkl']['v_template']), 3)
        # from the stand-in's own arrays in float64 (also checks what the exporter kept) ...
        ref = lbs_numpy(standin['pkl'], shape.astype(np.float64), exp.astype(np.float64),
                        pose.astype(np.float64), no_head=no_head)
        assert np.abs(v - ref).max() <= 1e-5 * np.abs(ref).max()
        # ... and the float32 PyTorch reference on the exported file
        ref32 = flame_ref.flame_vertices(flame_ref.flame_from_dpt(standin['dpt']), shape, exp, pose, no_head=no_head)
        assert np.abs(v - ref32).max() <= 1e-5 * np.abs(ref32).max()


def test_mesh_accepts_upstream_layouts(standin, tmp_path):
    """(R, F, ...) with --rep, and a single shape row (100,)."""
    exp, pose, shape = coef_file(tmp_path / 'c.npz', 5, seed=4)
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--vertices', tmp_path / 'a.npy')
    np.savez(tmp_path / 'r.npz', exp=np.stack([exp * 0, exp]), pose=np.stack([pose * 0, pose]),
             shape=np.stack([shape, shape]))
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'r.npz', '--rep', 1, '--vertices', tmp_path / 'b.npy')
    np.savez(tmp_path / 's.npz', exp=exp, pose=pose, shape=shape[0])
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 's.npz', '--vertices', tmp_path / 'c.npy')
    a = np.load(tmp_path / 'a.npy')
    np.testing.assert_array_equal(a, np.load(tmp_path / 'b.npy'))
    np.testing.assert_array_equal(a, np.load(tmp_path / 'c.npy'))
    line = fails(MESH, '-f', standin['dpt'], '-c', tmp_path / 'r.npz', '--rep', 2, '--vertices', tmp_path / 'x.npy')
    assert 'r.npz' in line and '--rep' in line


def test_mesh_obj_files_match_vertices(standin, tmp_path):
    coef_file(tmp_path / 'c.npz', 3, seed=5)
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--vertices', tmp_path / 'v.npy', '--obj', tmp_path / 'obj')
    v = np.load(tmp_path / 'v.npy')
    names = sorted(os.listdir(tmp_path / 'obj'))
    assert names == ['000000.obj', '000001.obj', '000002.obj']
    m, uv = standin['pkl'], standin['uv']
    for i, name in enumerate(names):
        vs, vts, fs = [], [], []
        for line in (tmp_path / 'obj' / name).read_text().splitlines():
            t = line.split()
            if not t or t[0].startswith('#'):
                continue
            if t[0] == 'v':
                vs.append([float(x) for x in t[1:]])
            elif t[0] == 'vt':
                vts.append([float(x) for x in t[1:]])
            elif t[0] == 'f':
                fs.append([[int(y) - 1 for y in x.split('/')] for x in t[1:]])
        np.testing.assert_allclose(np.array(vs), v[i], rtol=1e-5, atol=1e-7)
        fs = np.array(fs)                               # (F, 3, 2): vertex, uv index
        np.testing.assert_array_equal(fs[:, :, 0], m['f'].astype(np.int64))
        np.testing.assert_array_equal(fs[:, :, 1], uv['ft'])
        np.testing.assert_allclose(np.array(vts), uv['vt'], atol=1e-6)
    # without uv: "f a b c"
    ok(MESH, '-f', standin['nouv'], '-c', tmp_path / 'c.npz', '--obj', tmp_path / 'obj2')
    faces = [line for line in (tmp_path / 'obj2' / '000000.obj').read_text().splitlines() if line.startswith('f ')]
    assert len(faces) == len(m['f']) and '/' not in faces[0]
    assert not [line for line in (tmp_path / 'obj2' / '000000.obj').read_text().splitlines() if line.startswith('vt')]


def test_mesh_frames_count_and_size(standin, tmp_path):
    from PIL import Image
    coef_file(tmp_path / 'c.npz', 4, seed=6)
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--frames', tmp_path / 'fr', '--size', '96x64')
    names = sorted(os.listdir(tmp_path / 'fr'))
    assert names == [f'{i:06d}.png' for i in range(4)]
    img = np.asarray(Image.open(tmp_path / 'fr' / names[0]).convert('RGB'))
    assert img.shape == (64, 96, 3)
    assert (img == 255).all(axis=2).mean() > 0.3       # white background
    assert (img < 200).all(axis=2).mean() > 0.05       # and a grey head in the middle
    assert (img[32, 48] < 200).all()
    # a shorter clip into the same directory replaces the frames, and removes the extra ones
    (tmp_path / 'fr' / 'notes.txt').write_text('kept')
    coef_file(tmp_path / 'c2.npz', 2, seed=6)
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c2.npz', '--frames', tmp_path / 'fr', '--size', '96x64')
    assert sorted(os.listdir(tmp_path / 'fr')) == ['000000.png', '000001.png', 'notes.txt']
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--frames', tmp_path / 'fb', '--size', '96x64',
       '--black-bg')
    img = np.asarray(Image.open(tmp_path / 'fb' / names[0]).convert('RGB'))
    assert (img[0, 0] == 0).all()


def test_mesh_video_without_and_with_audio(standin, short_speech, tmp_path):
    F = 40
    coef_file(tmp_path / 'c.npz', F, seed=8)
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--video', tmp_path / 'silent.mp4', '--size', '64x64')
    s = probe(tmp_path / 'silent.mp4')
    assert set(s) == {'video'} and int(s['video']['nb_read_frames']) == F
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--video', tmp_path / 'v.mp4', '-a', short_speech,
       '--size', '64x64')
    s = probe(tmp_path / 'v.mp4')
    assert int(s['video']['nb_read_frames']) == F
    assert s['audio']['codec_name'] == 'aac'
    assert abs(float(s['audio']['duration']) - F / FPS) <= 1.0 / FPS
    # speech as a .npy of 16 kHz samples: piped to ffmpeg
    import soundfile
    x, sr = soundfile.read(short_speech, dtype='float32')
    n16 = int(len(x) * 16000 / sr)
    np.save(tmp_path / 'speech.npy', np.interp(np.arange(n16) * sr / 16000, np.arange(len(x)), x).astype(np.float32))
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--video', tmp_path / 'n.mp4', '-a',
       tmp_path / 'speech.npy', '--size', '64x64')
    s = probe(tmp_path / 'n.mp4')
    assert int(s['video']['nb_read_frames']) == F and s['audio']['codec_name'] == 'aac'
    assert int(s['audio']['sample_rate']) == 16000
    assert abs(float(s['audio']['duration']) - F / FPS) <= 1.0 / FPS
    assert not leftovers(tmp_path)


# ---- dpt-generate --flame ------------------------------------------------------------------

def test_generate_flame_video_matches_coefficients(standin, short_speech, tmp_path):
    ok(GEN, '-m', MODEL, '-a', short_speech, '-c', helpers.ROOT / 'examples' / 'data' / 'shape.npy',
       '--cfg-cond', 'audio', '--steps', 2, '--flame', standin['dpt'], '-o', tmp_path / 'clip.mp4', '--save-coef',
       '--size', '128x128', '--threads', 2)
    z = np.load(tmp_path / 'clip.npz')
    F = z['exp'].shape[0]
    assert F == 40
    s = probe(tmp_path / 'clip.mp4')
    v, a = s['video'], s['audio']
    assert v['codec_name'] == 'h264' and v['pix_fmt'] == 'yuv420p'
    assert v['r_frame_rate'] == '25/1' and int(v['nb_read_frames']) == F
    assert (v['width'], v['height']) == (128, 128)
    assert a['codec_name'] == 'aac' and abs(float(a['duration']) - F / FPS) <= 1.0 / FPS
    assert sorted(p.name for p in tmp_path.iterdir()) == ['clip.mp4', 'clip.npz']


def test_generate_flame_repetitions_and_coefficients_on_request(standin, short_speech, tmp_path):
    args = ['-m', MODEL, '-a', short_speech, '-c', helpers.ROOT / 'examples' / 'data' / 'shape.npy', '--cfg-cond',
            'audio', '--steps', 2, '--flame', standin['dpt'], '--size', '64x64']
    ok(GEN, *args, '-o', tmp_path / 'clip.mp4', '-n', 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['clip_000.mp4', 'clip_001.mp4']   # upstream's names
    ok(GEN, *args, '--frames', tmp_path / 'fr')
    assert len(os.listdir(tmp_path / 'fr')) == 40 and not (tmp_path / 'fr.npz').exists()
    # the same coefficients render the same frames through dpt-mesh
    ok(GEN, *args, '-o', tmp_path / 'c.npz', '--frames', tmp_path / 'fr2')
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--frames', tmp_path / 'fr3', '--size', '64x64')
    for name in ('000000.png', '000039.png'):
        assert (tmp_path / 'fr2' / name).read_bytes() == (tmp_path / 'fr3' / name).read_bytes()
    # --no-head renders as upstream's ignore_global_rot: the same frames as dpt-mesh --no-head on the
    # coefficients that keep their head rotation
    ok(GEN, *args, '--no-head', '--frames', tmp_path / 'nh')
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--frames', tmp_path / 'nh2', '--size', '64x64',
       '--no-head')
    assert np.abs(np.load(tmp_path / 'c.npz')['pose'][:, :3]).max() > 0.01
    for name in ('000000.png', '000039.png'):
        assert (tmp_path / 'nh' / name).read_bytes() == (tmp_path / 'nh2' / name).read_bytes()
        assert (tmp_path / 'nh' / name).read_bytes() != (tmp_path / 'fr2' / name).read_bytes()
    # without --flame, -o clip.mp4 still means coefficients (clip.npz), as before
    ok(GEN, *args[:-4], '-o', tmp_path / 'only' / 'clip.mp4')
    assert os.listdir(tmp_path / 'only') == ['clip.npz']


# ---- failures ------------------------------------------------------------------------------

def test_missing_ffmpeg_is_one_line_and_no_file(standin, tmp_path):
    coef_file(tmp_path / 'c.npz', 3)
    line = fails(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--video', tmp_path / 'o.mp4',
                 env={**os.environ, 'PATH': str(tmp_path / 'empty')})
    assert line == 'dpt-mesh: ffmpeg not found: install it (apt install ffmpeg)'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['c.npz']


def test_failing_run_keeps_existing_output(standin, tmp_path):
    coef_file(tmp_path / 'c.npz', 5)
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--video', tmp_path / 'o.mp4', '--size', '32x32',
       '--vertices', tmp_path / 'v.npy')
    good = (tmp_path / 'o.mp4').read_bytes(), (tmp_path / 'v.npy').read_bytes()
    (tmp_path / 'bad.wav').write_bytes(b'not audio at all' * 10)
    line = fails(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--video', tmp_path / 'o.mp4', '--size',
                 '32x32', '--vertices', tmp_path / 'v.npy', '-a', tmp_path / 'bad.wav')
    assert 'o.mp4' in line and 'ffmpeg failed' in line and 'bad.wav' in line
    assert ((tmp_path / 'o.mp4').read_bytes(), (tmp_path / 'v.npy').read_bytes()) == good
    assert not leftovers(tmp_path)


def test_bad_coefficients_are_refused(standin, tmp_path):
    exp, pose, shape = coef_file(tmp_path / 'c.npz', 6)
    cases = {
        'nan.npz': dict(exp=np.where(np.arange(50) == 7, np.nan, exp).astype(np.float32), pose=pose, shape=shape),
        'frames.npz': dict(exp=exp, pose=pose[:5], shape=shape),
        'width.npz': dict(exp=exp[:, :40], pose=pose, shape=shape),
        'noshape.npz': dict(exp=exp, pose=pose),
    }
    words = {'nan.npz': 'non-finite', 'frames.npz': 'frame counts', 'width.npz': "(frames, 50)",
             'noshape.npz': "no 'shape'"}
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        line = fails(MESH, '-f', standin['dpt'], '-c', tmp_path / name, '--vertices', tmp_path / 'out.npy')
        assert name in line and words[name] in line, line
    line = fails(MESH, '-f', standin['dpt'], '-c', tmp_path / 'missing.npz', '--vertices', tmp_path / 'out.npy')
    assert 'missing.npz' in line
    assert not (tmp_path / 'out.npy').exists() and not leftovers(tmp_path)


def test_unwritable_output_and_bad_texture(standin, tmp_path):
    coef_file(tmp_path / 'c.npz', 3)
    (tmp_path / 'file').write_text('x')
    for opt in ('--video', '--vertices'):
        line = fails(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', opt, tmp_path / 'file' / 'out')
        assert 'file' in line
    line = fails(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--obj', tmp_path / 'file')
    assert 'not a directory' in line
    (tmp_path / 'tex.png').write_bytes(b'\x89PNG broken')
    line = fails(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--frames', tmp_path / 'fr', '--tex',
                 tmp_path / 'tex.png')
    assert 'tex.png' in line
    line = fails(MESH, '-f', standin['nouv'], '-c', tmp_path / 'c.npz', '--frames', tmp_path / 'fr', '--tex',
                 tmp_path / 'tex.png')
    assert 'uv' in line
    # dpt-generate checks the texture before generating: nothing written
    line = fails(GEN, '-m', MODEL, '-a', SPEECH, '-c', helpers.ROOT / 'examples' / 'data' / 'shape.npy', '--cfg-cond',
                 'audio', '--steps', 2, '--flame', standin['dpt'], '-o', tmp_path / 'g.mp4', '--save-coef', '--tex',
                 tmp_path / 'tex.png')
    assert 'tex.png' in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ['c.npz', 'file', 'tex.png']


def test_texture_is_used(standin, tmp_path):
    from PIL import Image
    coef_file(tmp_path / 'c.npz', 1)
    Image.new('RGB', (32, 32), (255, 0, 0)).save(tmp_path / 'red.png')
    ok(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--frames', tmp_path / 'fr', '--size', '64x64',
       '--tex', tmp_path / 'red.png')
    img = np.asarray(Image.open(tmp_path / 'fr' / '000000.png').convert('RGB')).astype(int)
    head = img[20:44, 20:44].reshape(-1, 3)
    assert (head[:, 0] > head[:, 1] + 40).mean() > 0.9     # red where the head is


def test_usage_errors(standin, tmp_path):
    coef_file(tmp_path / 'c.npz', 2)
    assert 'nothing to write' in fails(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', status=2)
    assert 'even' in fails(MESH, '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--video', tmp_path / 'o.mp4',
                           '--size', '33x32', status=2)
    assert '--flame' in fails(GEN, '-m', MODEL, '-a', SPEECH, '-c', tmp_path / 'c.npz', '--frames', tmp_path / 'f',
                              status=2)
    assert 'usage: dpt-mesh' in ok(MESH, '--help').stdout
