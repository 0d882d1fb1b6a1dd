"""The command-line programs end to end (dpt-generate, dpt-style, dpt-info) on the bundled demo model.

Outputs are read back with numpy; every input format upstream uses is fed in; every bad argument or
file must give one line on stderr naming the file or option and a non-zero exit, and leave no output.
"""
import csv
import json
import os
import pty
import select
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import helpers

GEN = str(helpers.BUILD / 'dpt-generate')
STYLE = str(helpers.BUILD / 'dpt-style')
INFO = str(helpers.BUILD / 'dpt-info')
MODEL = str(helpers.ROOT / 'weights' / 'demo-tiny.dpt')
SPEECH = str(helpers.ROOT / 'examples' / 'data' / 'speech.flac')
SVG = '{http://www.w3.org/2000/svg}'


def run(prog, *args, **kw):
    return subprocess.run([prog] + [str(a) for a in args], capture_output=True, text=True, **kw)


def ok(prog, *args):
    r = run(prog, *args)
    assert r.returncode == 0, r.stderr
    return r


def model_info(path=MODEL):
    meta = {}
    for line in ok(INFO, path, '--meta').stdout.splitlines():
        k, _, v = line.partition(' = ')
        meta[k.split('.', 1)[-1] if k.startswith('dpt.') else k] = v.strip("'")
    return meta


def n_frames(path=SPEECH, fps=25):
    """Frames upstream's demo makes: int(len(librosa.load(sr=16000)) / 16000 * fps)."""
    import soundfile
    info = soundfile.info(path)
    n16 = -(-info.frames * 16000 // info.samplerate)
    return int(n16 / 16000 * fps)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Inputs shared by the tests: a shape, a style vector and a motion clip for the demo model."""
    d = tmp_path_factory.mktemp('cli')
    rng = np.random.default_rng(7)
    shape = rng.normal(0, 1, 100).astype(np.float32)
    np.save(d / 'shape.npy', shape)
    np.save(d / 'style.npy', rng.normal(0, 1, 16).astype(np.float32))
    np.savez(d / 'motion.npz', exp=rng.normal(0, 1, (40, 50)).astype(np.float32),
             pose=rng.normal(0, 0.1, (40, 6)).astype(np.float32))
    return dict(dir=d, shape=shape, F=n_frames())


def generate(data, out, *extra, style=True):
    args = ['-m', MODEL, '-a', SPEECH, '-c', data['dir'] / 'shape.npy', '-o', out]
    if style:
        args += ['-s', data['dir'] / 'style.npy']
    return ok(GEN, *args, *extra)


def coef(data, out, *extra, **kw):
    generate(data, out, *extra, **kw)
    return check_coef(out, data['F'])


def check_coef(path, F, shape=None):
    z = np.load(path)
    assert list(z.files) == ['exp', 'pose', 'shape']
    for k, w in (('exp', 50), ('pose', 6), ('shape', 100)):
        assert z[k].shape == (F, w) and z[k].dtype == np.float32, (k, z[k].shape, z[k].dtype)
        assert np.isfinite(z[k]).all()
    if shape is not None:
        np.testing.assert_array_equal(z['shape'], np.broadcast_to(shape, (F, 100)))
    return {k: z[k] for k in z.files}


# ------------------------------------------------------------------------------------------------
# outputs

def test_generate_npz(data, tmp_path):
    r = generate(data, tmp_path / 'out.npz')
    assert r.stdout == '' and r.stderr == ''           # stderr is not a terminal: no progress bar
    check_coef(tmp_path / 'out.npz', data['F'], data['shape'])
    with open(tmp_path / 'out.npz', 'rb') as f:           # deflate-compressed, as np.savez_compressed
        raw = f.read()
    assert raw[:4] == b'PK\x03\x04' and int.from_bytes(raw[8:10], 'little') == 8


def test_repetition_file_names(data, tmp_path):
    generate(data, tmp_path / 'sub' / 'out.npz', '-n', '3')
    assert not (tmp_path / 'sub' / 'out.npz').exists()
    reps = [check_coef(tmp_path / 'sub' / f'out_{i:03d}.npz', data['F'], data['shape']) for i in range(3)]
    assert not np.array_equal(reps[0]['exp'], reps[1]['exp'])
    assert not np.array_equal(reps[1]['exp'], reps[2]['exp'])
    # upstream's naming: the extension of -o is replaced (a video name gives the .npz beside it)
    generate(data, tmp_path / 'clip.mp4')
    generate(data, tmp_path / 'noext')
    generate(data, tmp_path / 'v.mp4', '-n', '2')
    for name in ('clip.npz', 'noext.npz', 'v_000.npz', 'v_001.npz'):
        check_coef(tmp_path / name, data['F'])
    assert not (tmp_path / 'clip.mp4').exists()


def test_seed_and_repeatability(data, tmp_path):
    a = coef(data, tmp_path / 'a.npz', '--seed', '5')
    b = coef(data, tmp_path / 'b.npz', '--seed', '5')
    c = coef(data, tmp_path / 'c.npz', '--seed', '6')
    np.testing.assert_array_equal(a['exp'], b['exp'])
    assert not np.array_equal(a['exp'], c['exp'])
    # --threads changes nothing beyond float rounding (summation order)
    generate(data, tmp_path / 't.npz', '--seed', '5', '--threads', '1')
    np.testing.assert_allclose(np.load(tmp_path / 't.npz')['exp'], a['exp'], rtol=0, atol=1e-4 * np.abs(a['exp']).max())


def test_formats(data, tmp_path):
    ref = coef(data, tmp_path / 'ref.npz')
    F = data['F']
    # csv: header, then one row per frame
    generate(data, tmp_path / 'o.npz', '--format', 'csv')
    with open(tmp_path / 'o.csv') as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert header[:2] == ['frame', 'time'] and header[2] == 'exp_0' and header[52] == 'pose_0' \
        and header[58] == 'shape_0' and len(header) == 158
    body = np.array(rows[1:], dtype=np.float64)
    assert body.shape == (F, 158)
    np.testing.assert_array_equal(body[:, 0], np.arange(F))
    np.testing.assert_allclose(body[:, 1], np.arange(F) / 25, rtol=1e-7)
    np.testing.assert_array_equal(body[:, 2:52].astype(np.float32), ref['exp'])
    np.testing.assert_array_equal(body[:, 52:58].astype(np.float32), ref['pose'])
    np.testing.assert_array_equal(body[:, 58:].astype(np.float32), ref['shape'])
    # json (format from the name's extension)
    generate(data, tmp_path / 'j.json')
    j = json.loads((tmp_path / 'j.json').read_text())
    assert j['fps'] == 25 and j['n_frames'] == F
    for k in ('exp', 'pose', 'shape'):
        np.testing.assert_array_equal(np.array(j[k], dtype=np.float32), ref[k])
    # npy: one file per array
    generate(data, tmp_path / 'p.npz', '--format', 'npy')
    generate(data, tmp_path / 'q.npz', '--format', 'npy', '-n', '2')
    for k in ('exp', 'pose', 'shape'):
        a = np.load(tmp_path / f'p_{k}.npy')
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, ref[k])
        for i in range(2):
            assert np.load(tmp_path / f'q_{i:03d}_{k}.npy').shape == ref[k].shape
    assert not (tmp_path / 'p.npz').exists() and not (tmp_path / 'q.npz').exists()


def test_upstream_option_spellings(data, tmp_path):
    """demo.py's names (--scale_audio, -dtmin, --n_repetitions, --save_coef ...) give the same result."""
    ref = coef(data, tmp_path / 'ref.npz')
    ok(GEN, '--model', MODEL, '--audio', SPEECH, '--coef', data['dir'] / 'shape.npy',
       '--style', data['dir'] / 'style.npy', '--output', tmp_path / 'u.npz', '--scale_audio', '1.15',
       '--scale-style=3', '--n_repetitions', '1', '--dynamic_threshold_ratio', '0', '-dtmin', '1',
       '-dtmax', '4', '--save_coef', '--cfg_mode', 'incremental', '--cfg_cond', 'audio,style')
    np.testing.assert_array_equal(np.load(tmp_path / 'u.npz')['exp'], ref['exp'])


def test_sampling_options(data, tmp_path):
    F = data['F']
    ref = coef(data, tmp_path / 'ref.npz')
    # --no-head zeroes the global rotation only
    nh = coef(data, tmp_path / 'nh.npz', '--no-head')
    assert (nh['pose'][:, :3] == 0).all() and np.abs(ref['pose'][:, :3]).max() > 0
    np.testing.assert_array_equal(nh['pose'][:, 3:], ref['pose'][:, 3:])
    # --steps equal to the model's step count is the faithful sampler
    T = model_info()['n_diff_steps']
    generate(data, tmp_path / 's.npz', '--steps', T)
    np.testing.assert_array_equal(np.load(tmp_path / 's.npz')['exp'], ref['exp'])
    # fewer steps (strided DDIM): a different result of the same layout; deterministic for a seed
    few = []
    for name in ('few1', 'few2'):
        generate(data, tmp_path / f'{name}.npz', '--steps', '3', '--eta', '0.5', '--seed', '4')
        few.append(check_coef(tmp_path / f'{name}.npz', F))
    np.testing.assert_array_equal(few[0]['exp'], few[1]['exp'])
    assert not np.array_equal(few[0]['exp'], ref['exp'])
    # more steps than the model has, eta outside [0, 1], flexibility with strided steps: one clear line
    for extra, word in ((['--steps', str(int(T) + 1)], 'steps'), (['--steps', '3', '--eta', '1.5'], 'eta'),
                        (['--steps', '3', '--flexibility', '0.5'], 'flexibility')):
        r = run(GEN, '-m', MODEL, '-a', SPEECH, '-c', data['dir'] / 'shape.npy', '-s', data['dir'] / 'style.npy',
                '-o', tmp_path / 'bad.npz', *extra)
        assert r.returncode != 0 and len(r.stderr.splitlines()) == 1 and word in r.stderr, (extra, r.stderr)
        assert not (tmp_path / 'bad.npz').exists()
    # guidance options change the result
    for i, extra in enumerate((['-sa', '2'], ['-ss', '1'], ['--cfg-mode', 'independent'], ['--cfg-cond', 'audio'],
                               ['-dtr', '0.9', '--dt-min', '0.5', '--dt-max', '2'])):
        o = tmp_path / f'g{i}.npz'
        generate(data, o, *extra)
        assert not np.array_equal(check_coef(o, F)['exp'], ref['exp']), extra
    # the null style (no -s) with audio guidance only
    generate(data, tmp_path / 'ns.npz', '--cfg-cond', 'audio', style=False)
    check_coef(tmp_path / 'ns.npz', F)


def test_noise_from(data, tmp_path):
    """Replayed draws: the same draws give the same output; too few draws are an error."""
    meta = model_info()
    L, T = int(meta['n_motions']), int(meta['n_diff_steps'])
    n_win = -(-data['F'] // L)
    per_draw = 1 * L * 54
    n = per_draw * (1 + n_win * (T - 1))
    draws = np.random.default_rng(3).normal(0, 1, n).astype(np.float32)
    np.save(tmp_path / 'draws.npy', draws)
    np.save(tmp_path / 'draws2d.npy', draws.reshape(-1, 54))
    generate(data, tmp_path / 'a.npz', '--noise-from', tmp_path / 'draws.npy')
    r = generate(data, tmp_path / 'b.npz', '--noise-from', tmp_path / 'draws2d.npy', '--seed', '9')
    assert r.stderr == ''                                 # all draws used: no warning
    np.testing.assert_array_equal(np.load(tmp_path / 'a.npz')['exp'], np.load(tmp_path / 'b.npz')['exp'])
    np.save(tmp_path / 'more.npy', np.concatenate([draws, draws[:7]]))
    r = generate(data, tmp_path / 'c.npz', '--noise-from', tmp_path / 'more.npy')
    assert 'more.npy' in r.stderr and '7' in r.stderr and 'unused' in r.stderr
    assert 'unused' not in generate(data, tmp_path / 'd.npz', '--noise-from', tmp_path / 'more.npy',
                                    '--quiet').stderr


def test_save_audio_features(data, tmp_path):
    meta = model_info()
    r = ok(GEN, '-m', MODEL, '-a', SPEECH, '--save-audio-features', tmp_path / 'f.npy')
    f = np.load(tmp_path / 'f.npy')
    L = int(meta['n_motions'])
    assert f.dtype == np.float32 and f.shape == (-(-data['F'] // L) * L, int(meta['feature_dim']))
    assert np.isfinite(f).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['f.npy']
    generate(data, tmp_path / 'o.npz', '--save-audio-features', tmp_path / 'g.npy')
    np.testing.assert_array_equal(np.load(tmp_path / 'g.npy'), f)
    saved = check_coef(tmp_path / 'o.npz', data['F'])
    plain = coef(data, tmp_path / 'p.npz')
    for k in plain:
        np.testing.assert_array_equal(saved[k], plain[k])
    assert r.stderr == ''
    # the cache read back: the encoder is skipped, the result is the same
    cached = coef(data, tmp_path / 'c.npz', '--audio-features', tmp_path / 'f.npy')
    for k in plain:
        np.testing.assert_array_equal(cached[k], plain[k])


def test_audio_features_cache_errors(data, tmp_path):
    meta = model_info()
    L, D = int(meta['n_motions']), int(meta['feature_dim'])
    frames = -(-data['F'] // L) * L
    bad = {
        'wrong_dim.npy': (np.zeros((frames, D + 1), np.float32), f'(frames, {D})'),
        'one_d.npy': (np.zeros(frames * D, np.float32), f'(frames, {D})'),
        'nan.npy': (np.where(np.arange(frames * D).reshape(frames, D) == 5, np.nan, 0).astype(np.float32),
                    'NaN'),
        'other_clip.npy': (np.zeros((frames + L, D), np.float32), 'frames'),
    }
    for name, (arr, word) in bad.items():
        np.save(tmp_path / name, arr)
        r = run(GEN, '-m', MODEL, '-a', SPEECH, '-c', data['dir'] / 'shape.npy', '-s', data['dir'] / 'style.npy',
                '-o', tmp_path / 'o.npz', '--audio-features', tmp_path / name)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, (name, r.stderr)
        assert name in r.stderr and word in r.stderr, (name, r.stderr)
        assert not (tmp_path / 'o.npz').exists()
    r = run(GEN, '-m', MODEL, '-a', SPEECH, '-c', data['dir'] / 'shape.npy', '-o', tmp_path / 'o.npz',
            '--audio-features', tmp_path / 'missing.npy')
    assert r.returncode == 1 and 'missing.npy' in r.stderr
    (tmp_path / 'jobs.tsv').write_text('a\tb\t-\tc\n')
    r = run(GEN, '-m', MODEL, '--batch', tmp_path / 'jobs.tsv', '--audio-features', tmp_path / 'nan.npy')
    assert r.returncode == 2 and '--audio-features' in r.stderr


# ------------------------------------------------------------------------------------------------
# input formats

def test_audio_as_samples(data, tmp_path):
    """-a SPEECH.npy: 16 kHz samples, (n,) or (n, channels) averaged, float32 or float64 — the same
    motion as the audio file they were decoded from (the input of a NO_SNDFILE=1 build)."""
    import soundfile
    import soxr
    y, sr = soundfile.read(SPEECH, dtype='float32', always_2d=True)
    y = y.mean(axis=1, dtype=np.float32)
    if sr != 16000:   # librosa.load(sr=16000): soxr_hq, then fix_length to ceil(n·16000/sr)
        n = -(-len(y) * 16000 // sr)
        y = soxr.resample(y, sr, 16000, quality='soxr_hq')[:n]
        y = np.pad(y, (0, n - len(y)))
    y = y.astype(np.float32)
    ref = coef(data, tmp_path / 'file.npz')
    cases = {
        'mono.npy': y,
        'f64.npy': y.astype(np.float64),
        'stereo.npy': np.stack([y, y], axis=1),
    }
    for name, arr in cases.items():
        np.save(tmp_path / name, arr)
        out = tmp_path / f'o_{name}.npz'
        ok(GEN, '-m', MODEL, '-a', tmp_path / name, '-c', data['dir'] / 'shape.npy', '-s',
           data['dir'] / 'style.npy', '-o', out)
        z = check_coef(out, data['F'], data['shape'])
        for k in ref:
            np.testing.assert_allclose(z[k], ref[k], rtol=0, atol=1e-5, err_msg=f'{name} {k}')


def test_shape_files(data, tmp_path):
    """(100,), (frames, 100) (first frame), float64, and .npz with 'shape' stored or compressed."""
    F, s = data['F'], data['shape']
    frames = np.stack([s, s + 1, s - 1])
    cases = {
        'vec.npy': lambda p: np.save(p, s),
        'frames.npy': lambda p: np.save(p, frames),
        'f64.npy': lambda p: np.save(p, s.astype(np.float64)),
        'stored.npz': lambda p: np.savez(p, shape=frames, other=np.zeros(3)),
        'compressed.npz': lambda p: np.savez_compressed(p, exp=np.zeros((3, 50)), shape=frames),
        'vec_in.npz': lambda p: np.savez_compressed(p, shape=s),
    }
    ref = None
    for name, make in cases.items():
        make(tmp_path / name)
        out = tmp_path / f'o_{name}.npz'
        ok(GEN, '-m', MODEL, '-a', SPEECH, '-c', tmp_path / name, '-s', data['dir'] / 'style.npy', '-o', out)
        z = check_coef(out, F, s)
        if ref is None:
            ref = z
        np.testing.assert_array_equal(z['exp'], ref['exp'])


def test_style_files(data, tmp_path):
    """A style .npy (d,) or (1, d), an .npz with 'style', and a motion .npz (extracted on the fly,
    --style-start) equal to dpt-style's vector."""
    F = data['F']
    style = np.load(data['dir'] / 'style.npy')
    np.save(tmp_path / 'row.npy', style[None])
    np.savez_compressed(tmp_path / 'st.npz', style=style)
    np.save(tmp_path / 'f64.npy', style.astype(np.float64))
    ref = coef(data, tmp_path / 'ref.npz')
    for name in ('row.npy', 'st.npz', 'f64.npy'):
        ok(GEN, '-m', MODEL, '-a', SPEECH, '-c', data['dir'] / 'shape.npy', '-s', tmp_path / name,
           '-o', tmp_path / f'o_{name}.npz')
        np.testing.assert_array_equal(np.load(tmp_path / f'o_{name}.npz')['exp'], ref['exp'])
    # motion clip: the same as dpt-style then -s STYLE.npy
    motion = data['dir'] / 'motion.npz'
    ok(STYLE, '-m', MODEL, '-c', motion, '-s', '3', '-o', tmp_path / 'extracted')   # '.npy' appended
    ext = np.load(tmp_path / 'extracted.npy')
    assert ext.shape == (16,) and ext.dtype == np.float32
    ok(GEN, '-m', MODEL, '-a', SPEECH, '-c', data['dir'] / 'shape.npy', '-s', tmp_path / 'extracted.npy',
       '-o', tmp_path / 'x1.npz')
    ok(GEN, '-m', MODEL, '-a', SPEECH, '-c', data['dir'] / 'shape.npy', '-s', motion, '--style-start', '3',
       '-o', tmp_path / 'x2.npz')
    ok(GEN, '-m', MODEL, '-a', SPEECH, '-c', data['dir'] / 'shape.npy', '-s', motion, '-o', tmp_path / 'x3.npz')
    x1, x2, x3 = (np.load(tmp_path / f'x{i}.npz')['exp'] for i in (1, 2, 3))
    np.testing.assert_array_equal(x1, x2)
    assert not np.array_equal(x1, x3)
    # a dpt-generate output is a motion clip too
    ok(STYLE, '-m', MODEL, '-c', tmp_path / 'ref.npz', '--start', '0', '-o', tmp_path / 'from_out.npy')
    assert np.load(tmp_path / 'from_out.npy').shape == (16,)


# ------------------------------------------------------------------------------------------------
# help and errors

GEN_OPTIONS = ['-m', '-a', '-c', '-s', '-o', '-n', '-sa', '--scale-audio', '-ss', '--scale-style', '--cfg-mode',
               '--cfg-cond', '-dtr', '--dynamic-threshold-ratio', '--dt-min', '--dt-max', '--no-head', '--seed',
               '--threads', '--format', '--quiet', '--plot', '--batch', '--batch-stats', '--style-start', '--steps', '--eta',
               '--noise-from', '--save-audio-features', '--audio-features', '--help']


def test_help():
    h = ok(GEN, '--help').stdout
    for o in GEN_OPTIONS:
        assert f'{o} ' in h or f'{o},' in h, o
    for default in ('default 1.15', 'default 3.0', 'default 0 = off', 'default 1.0', 'default 4.0', 'default 0)',
                    'default 1)', 'else npz', "the model's own", "guiding_conditions", 'all cores'):
        assert default in h, default
    h = ok(STYLE, '--help').stdout
    for o in ('-m', '-c', '--start', '-o', '--help', 'default 0'):
        assert o in h
    h = ok(INFO, '-h').stdout
    for o in ('--tensors', '--meta', '--dump', '--npy', '--dump-all', '--help', 'default'):
        assert o in h


@pytest.fixture(scope='module')
def nostyle_model():
    """A tiny model without style input (make_checkpoints --no-style + export), cached."""
    ck = helpers.cached_checkpoints('tiny', 0, no_style=True)
    export = helpers.ROOT / 'tools' / 'export.py'

    def build(tmp):
        subprocess.run([helpers.PYTHON, str(export), '--dpt', str(ck['denoiser']), '--stats', str(ck['stats']),
                        '-o', str(tmp / 'model.dpt')], check=True, capture_output=True)
    return str(helpers.cached_dir('cli-nostyle', dict(ckpt=ck['dir'].name), build, sources=[export]) / 'model.dpt')


def bad_files(d):
    rng = np.random.default_rng(1)
    (d / 'garbage.npy').write_bytes(b'this is not a numpy file at all' * 4)
    np.save(d / 'short.npy', np.zeros(99, np.float32))
    np.save(d / 'cube.npy', np.zeros((2, 2, 100), np.float32))
    s = rng.normal(0, 1, 100).astype(np.float32)
    s[17] = np.nan
    np.save(d / 'nan.npy', s)
    np.save(d / 'int.npy', np.zeros(100, np.int32))
    np.savez(d / 'noshape.npz', exp=np.zeros((3, 50), np.float32))
    np.save(d / 'style7.npy', np.zeros(7, np.float32))
    st = np.zeros(16, np.float32)
    st[3] = np.inf
    np.save(d / 'styleinf.npy', st)
    np.savez(d / 'nopose.npz', exp=np.zeros((30, 50), np.float32))
    np.savez(d / 'narrow.npz', exp=np.zeros((30, 40), np.float32), pose=np.zeros((30, 6), np.float32))
    np.save(d / 'fewdraws.npy', np.zeros(10, np.float32))
    (d / 'text.wav').write_text('RIFF but not really a wave file\n' * 10)
    (d / 'empty.dpt').write_bytes(b'')


# (id, args after the common ones, words the one line must hold, expected exit status)
BAD = [
    ('missing audio', ['-a', '{d}/nope.wav'], ['nope.wav'], 1),
    ('not audio', ['-a', '{d}/text.wav'], ['text.wav'], 1),
    ('audio samples of 3 dimensions', ['-a', '{d}/cube.npy'], ['cube.npy', '(2, 2, 100)', '16 kHz'], 1),
    ('NaN in audio samples', ['-a', '{d}/nan.npy'], ['nan.npy', 'not finite', '17'], 1),
    ('missing model', ['-m', '{d}/nope.dpt'], ['nope.dpt'], 1),
    ('empty model', ['-m', '{d}/empty.dpt'], ['empty.dpt'], 1),
    ('missing shape', ['-c', '{d}/nope.npy'], ['nope.npy'], 1),
    ('corrupt shape', ['-c', '{d}/garbage.npy'], ['garbage.npy'], 1),
    ('shape of 99 values', ['-c', '{d}/short.npy'], ['short.npy', '100', '(99,)'], 1),
    ('shape of 3 dimensions', ['-c', '{d}/cube.npy'], ['cube.npy', '(2, 2, 100)'], 1),
    ('NaN in shape', ['-c', '{d}/nan.npy'], ['nan.npy', 'NaN', '17'], 1),
    ('integer shape', ['-c', '{d}/int.npy'], ['int.npy'], 1),
    ('npz without shape', ['-c', '{d}/noshape.npz'], ['noshape.npz', 'shape', 'exp'], 1),
    ('style of 7 values', ['-s', '{d}/style7.npy'], ['style7.npy', '16'], 1),
    ('Inf in style', ['-s', '{d}/styleinf.npy'], ['styleinf.npy', 'NaN or Inf'], 1),
    ('motion without pose', ['-s', '{d}/nopose.npz'], ['nopose.npz', 'pose'], 1),
    ('motion of wrong width', ['-s', '{d}/narrow.npz'], ['narrow.npz', 'exp', '50'], 1),
    ('style start past the clip', ['-s', '{d}/motion.npz', '--style-start', '500'], ['motion.npz', '500'], 1),
    ('draws run out', ['--noise-from', '{d}/fewdraws.npy'], ['fewdraws.npy', 'noise'], 1),
    ('missing draws', ['--noise-from', '{d}/nope.npy'], ['nope.npy'], 1),
    ('unknown option', ['--bogus'], ['--bogus'], 2),
    ('unknown short option', ['-x', '3'], ['-x'], 2),
    ('stray argument', ['stray'], ['stray'], 2),
    ('bad --format', ['--format', 'xml'], ['--format', 'xml'], 2),
    ('-n 0', ['-n', '0'], ['-n', "'0'"], 2),
    ('-n not a number', ['-n', 'three'], ['-n', 'three'], 2),
    ('scale not a number', ['-sa', 'loud'], ['-sa', 'loud'], 2),
    ('scale NaN', ['--scale-style', 'nan'], ['--scale-style', 'nan'], 2),
    ('negative seed', ['--seed', '-1'], ['--seed'], 2),
    ('negative threads', ['--threads', '-2'], ['--threads'], 2),
    ('unknown cfg mode', ['--cfg-mode', 'sideways'], ['--cfg-mode', 'sideways'], 2),
    ('unknown condition', ['--cfg-cond', 'audio,pitch'], ['--cfg-cond', 'pitch'], 2),
    ('option without value', ['--seed'], ['--seed', 'value'], 2),
    ('flag with value', ['--no-head=yes'], ['--no-head'], 2),
    ('dt ratio above 1', ['-dtr', '1.5'], ['-dtr', '1.5', 'threshold'], 2),
    ('dt min above max', ['-dtr', '0.9', '--dt-min', '5', '--dt-max', '4'], ['--dt-min', 'threshold'], 2),
    ('negative eta', ['--eta', '-1'], ['--eta'], 2),
    ('flexibility above 1', ['--flexibility', '2'], ['--flexibility'], 2),
    ('negative steps', ['--steps', '-3'], ['--steps'], 2),
    ('batch with -a', ['--batch', '{d}/jobs.tsv'], ['--batch'], 2),
    ('missing batch file', ['NOCOMMON', '-m', MODEL, '--batch', '{d}/nope.tsv'], ['nope.tsv'], 1),
    ('no model', ['NOCOMMON', '-a', SPEECH, '-c', '{d}/short.npy', '-o', '{d}/o.npz'], ['-m'], 2),
    ('no shape', ['NOCOMMON', '-m', MODEL, '-a', SPEECH, '-o', '{d}/o.npz'], ['-c'], 2),
    ('no output', ['NOCOMMON', '-m', MODEL, '-a', SPEECH, '-c', '{d}/short.npy'], ['-o'], 2),
    ('unwritable output', ['-o', '/proc/nope/o.npz'], ['/proc/nope'], 1),
    ('output is a directory', ['-o', '{d}/'], ['directory'], 1),
]


@pytest.mark.parametrize('case', BAD, ids=[b[0] for b in BAD])
def test_bad_input(case, data, tmp_path):
    what, extra, words, status = case
    shutil.copy(data['dir'] / 'motion.npz', tmp_path / 'motion.npz')
    bad_files(tmp_path)
    extra = [a.replace('{d}', str(tmp_path)) for a in extra]
    if extra[:1] == ['NOCOMMON']:
        args = extra[1:]
    else:
        args = ['-m', MODEL, '-a', SPEECH, '-c', data['dir'] / 'shape.npy', '-s', data['dir'] / 'style.npy',
                '-o', tmp_path / 'o.npz'] + extra
    r = run(GEN, *args)
    assert r.returncode == status, (what, r.returncode, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('dpt-generate: '), (what, r.stderr)
    for w in words:
        assert w in lines[0], (what, w, lines[0])
    assert not any(p.suffix == '.npz' and p.name.startswith('o') for p in tmp_path.iterdir()), what
    assert 'Sanitizer' not in r.stderr and 'runtime error' not in r.stderr


def test_style_on_model_without_style(data, nostyle_model, tmp_path):
    common = ['-m', nostyle_model, '-a', SPEECH, '-c', data['dir'] / 'shape.npy', '-o', tmp_path / 'o.npz']
    for extra, words in ((['--cfg-cond', 'audio,style'], ['model.dpt', 'style']),
                         (['--cfg-cond', 'style'], ['model.dpt', 'style']),
                         (['-s', data['dir'] / 'style.npy'], ['style.npy', 'no style input']),
                         (['-s', data['dir'] / 'motion.npz'], ['motion.npz', 'no style input'])):
        r = run(GEN, *common, *extra)
        assert r.returncode == 1, r.stderr
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and all(w in lines[0] for w in words), (extra, r.stderr)
    assert not (tmp_path / 'o.npz').exists()
    ok(GEN, *common)                                       # its default: audio guidance, no style
    check_coef(tmp_path / 'o.npz', data['F'], data['shape'])
    r = run(STYLE, '-m', nostyle_model, '-c', data['dir'] / 'motion.npz', '-o', tmp_path / 's.npy')
    assert r.returncode == 1 and 'style encoder' in r.stderr and len(r.stderr.splitlines()) == 1


def test_dpt_style_errors(data, tmp_path):
    bad_files(tmp_path)
    for args, words, status in (
            (['-c', tmp_path / 'nopose.npz'], ['nopose.npz', 'pose'], 1),
            (['-c', tmp_path / 'narrow.npz'], ['narrow.npz', '50'], 1),
            (['-c', tmp_path / 'garbage.npy'], ['garbage.npy'], 1),
            (['-c', tmp_path / 'nope.npz'], ['nope.npz'], 1),
            (['-c', data['dir'] / 'motion.npz', '--start', '40'], ['motion.npz', '40'], 1),
            (['-c', data['dir'] / 'motion.npz', '--start', 'x'], ['--start'], 2),
            (['-c', data['dir'] / 'motion.npz', '--wat'], ['--wat'], 2)):
        r = run(STYLE, '-m', MODEL, *args, '-o', tmp_path / 's.npy')
        assert r.returncode == status, (args, r.stderr)
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith('dpt-style: '), r.stderr
        assert all(w in lines[0] for w in words), (words, lines[0])
        assert not (tmp_path / 's.npy').exists()
    # a short clip is used as upstream does, with a warning (silenced by --quiet)
    r = ok(STYLE, '-m', MODEL, '-c', data['dir'] / 'motion.npz', '--start', '30', '-o', tmp_path / 's.npy')
    assert 'warning' in r.stderr
    assert ok(STYLE, '-m', MODEL, '-c', data['dir'] / 'motion.npz', '--start', '30', '-q',
              '-o', tmp_path / 's2.npy').stderr == ''


# ------------------------------------------------------------------------------------------------
# plot

def test_plot_svg(data, tmp_path):
    shutil.copy(SPEECH, tmp_path / 'a&b <c>.flac')          # the title must be escaped
    ok(GEN, '-m', MODEL, '-a', tmp_path / 'a&b <c>.flac', '-c', data['dir'] / 'shape.npy',
       '-s', data['dir'] / 'style.npy', '-o', tmp_path / 'o.npz', '-n', '2', '--plot', tmp_path / 'plots' / 'p.svg')
    root = ET.parse(tmp_path / 'plots' / 'p.svg').getroot()     # well-formed XML
    assert root.tag == SVG + 'svg'
    groups = {g.get('id'): g for g in root.iter(SVG + 'g') if g.get('id')}
    for panel in ('waveform', 'jaw', 'expression-energy', 'head-rotation', 'time-axis'):
        assert panel in groups, panel

    def traces(group, cls):
        return [p for p in groups[group].iter(SVG + 'path') if cls in (p.get('class') or '').split()]

    def points(path):
        return len([t for t in path.get('d').replace('M', 'L').split('L') if t.strip()])

    assert len(traces('waveform', 'waveform')) == 1 and points(traces('waveform', 'waveform')[0]) > 100
    F = data['F']
    for group, cls in (('jaw', 'jaw'), ('expression-energy', 'expression-energy'), ('head-rotation', 'head-rot-x'),
                       ('head-rotation', 'head-rot-y'), ('head-rotation', 'head-rot-z')):
        t = traces(group, cls)
        assert len(t) == 2, (cls, len(t))                     # one per repetition
        assert all(points(p) == F for p in t), cls
    # the jaw trace follows pose[:, 3] of repetition 0 (in degrees; higher value = smaller y)
    jaw = np.load(tmp_path / 'o_000.npz')['pose'][:, 3]
    ys = np.array([float(t.split()[1]) for t in traces('jaw', 'rep-0')[0].get('d').replace('M', 'L').split('L')
                   if t.strip()])
    assert np.corrcoef(ys, jaw)[0, 1] < -0.999
    text = ' '.join(t.text or '' for t in root.iter(SVG + 'text'))
    assert 'time (s)' in text and 'a&b <c>.flac' in root.find(SVG + 'title').text
    # time axis in seconds up to the clip's length
    ticks = [float(t.text) for t in groups['time-axis'].iter(SVG + 'text') if t.get('class') == 'xtick']
    assert ticks[0] == 0 and 5 <= ticks[-1] <= 6


# ------------------------------------------------------------------------------------------------
# batch

def test_batch(data, tmp_path):
    d = data['dir']
    jobs = tmp_path / 'jobs.tsv'
    jobs.write_text(
        '# audio\tshape\tstyle\toutput\n'
        '\n'
        f'{SPEECH}\t{d}/shape.npy\t{d}/style.npy\t{tmp_path}/one.npz\n'
        f'{tmp_path}/missing.wav\t{d}/shape.npy\t{d}/style.npy\t{tmp_path}/two.npz\n'
        f'{SPEECH}\t{d}/shape.npy\t{d}/motion.npz\t{tmp_path}/out/three.npz\t{tmp_path}/three.svg\n'
        f'{SPEECH}\t{d}/shape.npy\t{d}/style.npy\n'
        '   # indented comment\r\n'
        f'{SPEECH}\t{d}/shape.npy\t{d}/style.npy\t{tmp_path}/four.npz\r\n')
    r = run(GEN, '-m', MODEL, '--batch', jobs, '-n', '2', '--seed', '3')
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert any(f'jobs.tsv:4:' in l and 'missing.wav' in l for l in lines), r.stderr
    assert any(f'jobs.tsv:6:' in l and 'fields' in l for l in lines), r.stderr
    assert any('2 of 5' in l for l in lines), r.stderr
    assert len(lines) == 3 and all(l.startswith('dpt-generate: ') for l in lines), r.stderr
    for name in ('one', 'out/three', 'four'):
        for i in range(2):
            check_coef(tmp_path / f'{name}_{i:03d}.npz', data['F'], data['shape'])
    assert not list(tmp_path.glob('two*'))
    ET.parse(tmp_path / 'three.svg')
    # same seed, same settings: the batch equals single runs
    generate(data, tmp_path / 'single.npz', '-n', '2', '--seed', '3')
    np.testing.assert_array_equal(np.load(tmp_path / 'single_001.npz')['exp'], np.load(tmp_path / 'four_001.npz')['exp'])
    # all good: exit 0, silent
    jobs.write_text(f'{SPEECH}\t{d}/shape.npy\t-\t{tmp_path}/five.csv\n')
    r = run(GEN, '-m', MODEL, '--batch', jobs, '--cfg-cond', 'audio')
    assert r.returncode == 0 and r.stderr == '', r.stderr
    assert (tmp_path / 'five.csv').exists()


# ------------------------------------------------------------------------------------------------
# progress bar

def run_on_pty(args):
    """Run with stderr on a pseudo-terminal; return (exit status, what it printed there)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([str(a) for a in args], stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b''
    while True:
        r, _, _ = select.select([master], [], [], 60)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return p.wait(timeout=60), out.decode(errors='replace')


def test_progress_bar(data, tmp_path):
    common = [GEN, '-m', MODEL, '-a', SPEECH, '-c', data['dir'] / 'shape.npy', '-s', data['dir'] / 'style.npy']
    rc, shown = run_on_pty(common + ['-o', tmp_path / 'a.npz'])
    assert rc == 0
    assert 'ETA' in shown and 'elapsed' in shown and 'window' in shown and 'step' in shown, shown
    assert '100%' in shown
    rc, shown = run_on_pty(common + ['-o', tmp_path / 'b.npz', '--quiet'])
    assert rc == 0 and shown == '', shown
    r = run(*(common + ['-o', tmp_path / 'c.npz']))         # not a terminal: nothing
    assert r.returncode == 0 and r.stderr == ''
    np.testing.assert_array_equal(np.load(tmp_path / 'a.npz')['exp'], np.load(tmp_path / 'c.npz')['exp'])


def test_timings_line_and_same_bits(data, tmp_path):
    """--timings prints one line of where the time went (windows × steps forwards) and, with the encoder
    run apart, gives the same bits as without it."""
    import re
    info = model_info()
    generate(data, tmp_path / 'a.npz', '--steps', '4', '-q')
    r = generate(data, tmp_path / 'b.npz', '--steps', '4', '-q', '--timings')
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith('timings:')]
    assert len(lines) == 1, r.stderr
    m = re.fullmatch(r'timings: model load ([\d.]+) s, audio decoding ([\d.]+) s, audio encoder ([\d.]+) s, '
                     r'sampling ([\d.]+) s \((\d+) forwards, ([\d.]+) ms each\), outputs ([\d.]+) s', lines[0])
    assert m, lines[0]
    n_frames = len(np.load(tmp_path / 'a.npz')['exp'])
    windows = -(-n_frames // int(info['n_motions']))
    assert int(m.group(5)) == windows * 4
    a, b = np.load(tmp_path / 'a.npz'), np.load(tmp_path / 'b.npz')
    for k in a.files:
        assert a[k].tobytes() == b[k].tobytes(), k
