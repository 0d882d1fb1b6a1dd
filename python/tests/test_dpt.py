"""The installed dpt package: version, CLI bit-identity, the PyTorch reference, errors, cancellation,
threads, streams, FLAME and rendering. Needs the repository's build (dpt-generate & co.) and its
.venv (reference, exporter); see conftest.py."""
import importlib.metadata
import os
import re
import resource
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

import dpt
from conftest import BUILD, DEMO_MODEL, REF_PYTHON, ROOT, SPEECH

TOL = 1e-3     # the parity bound of the sampler tests (tests/python/test_sampler_parity.py)


def cli(prog, *args):
    r = subprocess.run([str(BUILD / prog)] + [str(a) for a in args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


# ------------------------------------------------------------------------------------------------
# the package itself

def test_installed_not_imported_from_the_source_tree():
    here = os.path.realpath(dpt.__file__)
    assert not here.startswith(os.path.realpath(ROOT / 'python')), here
    assert 'site-packages' in here
    assert os.path.exists(os.path.join(os.path.dirname(here), 'py.typed'))


def test_version_is_the_library_version():
    text = (ROOT / 'include' / 'dpt.h').read_text()
    header = '.'.join(re.search(rf'^#define DPT_VERSION_{k} (\d+)', text, re.M).group(1)
                      for k in ('MAJOR', 'MINOR', 'PATCH'))
    assert dpt.__version__ == header
    assert dpt.library_version() == header
    assert importlib.metadata.version('dpt') == header
    assert f'libdpt {header}' in cli('dpt-generate', '--version').stdout


def test_docstrings_and_signatures():
    for obj, words in ((dpt.Model.generate, ['n_repetitions', 'no_context_audio_feat', 'noise', 'cfg_cond']),
                       (dpt.Model.encode_audio, ['features']), (dpt.Model.stream, ['push']),
                       (dpt.Flame.vertices, ['vertices']), (dpt.Renderer, ['texture'])):
        assert obj.__doc__ and all(w in obj.__doc__ for w in words), obj
    assert dpt.Model.generate.__annotations__['return'] is not None


def test_info_matches_dpt_info(model):
    info = model.info
    text = cli('dpt-info', DEMO_MODEL).stdout
    m = re.search(r'n_motions (\d+), n_prev_motions (\d+), fps (\d+)', text)
    assert (info['n_motions'], info['n_prev_motions'], info['fps']) == tuple(int(x) for x in m.groups())
    assert f"{info['n_params_total']} total" in text
    assert f"d_style {info['d_style']}" in text and f"{info['n_diff_steps']} steps" in text
    assert info['audio_model'] == 'hubert' and info['path'] == str(DEMO_MODEL)
    assert model.meta and all(isinstance(k, str) for k in model.meta)


# ------------------------------------------------------------------------------------------------
# bit-identical to dpt-generate

def cli_generate(tmp_path, audio, shape, style, args, n):
    np.save(tmp_path / 'shape.npy', shape)
    cmd = ['-m', DEMO_MODEL, '-a', audio, '-c', tmp_path / 'shape.npy', '-o', tmp_path / 'out.npz', '-q',
           '--threads', '2'] + args
    if style is not None:
        cmd += ['-s', style]
    cli('dpt-generate', *cmd)
    names = ['out.npz'] if n == 1 else [f'out_{i:03d}.npz' for i in range(n)]
    zs = [np.load(tmp_path / f) for f in names]
    return {k: np.stack([z[k] for z in zs]) for k in ('exp', 'pose', 'shape')}


CASES = {
    'seeded-N2-style-vector': (dict(seed=3, n_repetitions=2), ['--seed', '3', '-n', '2'], 'vector'),
    'guidance-ddim-dt-nohead': (dict(cfg_mode='independent', cfg_cond='audio', scale_audio=1.4,
                                     dynamic_threshold_ratio=0.9, dt_min=1.2, dt_max=3.0, steps=7, eta=0.5,
                                     no_head=True, seed=11),
                                ['--cfg-mode', 'independent', '--cfg-cond', 'audio', '-sa', '1.4', '-dtr', '0.9',
                                 '--dt-min', '1.2', '--dt-max', '3.0', '--steps', '7', '--eta', '0.5', '--no-head',
                                 '--seed', '11'], None),
    'no-context-motion-style': (dict(no_context_audio_feat=True, scale_style=2.0, seed=5, style_start=3),
                                ['--no-context-audio-feat', '-ss', '2.0', '--seed', '5', '--style-start', '3'],
                                'motion'),
    'replayed-noise-flexibility': (dict(flexibility=0.5, cfg_cond=['audio', 'style'], threads=1),
                                   ['--flexibility', '0.5', '--cfg-cond', 'audio,style'], 'vector'),
}


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('audio_kind', ['file', 'array'])
def test_generate_equals_cli(model, case, audio_kind, tmp_path):
    opts, args, style_kind = CASES[case]
    rng = np.random.default_rng(7)
    shape = rng.normal(0, 1, (3, 100)).astype(np.float32)          # (frames, 100): the first row is used
    style = None
    if style_kind == 'vector':
        style = tmp_path / 'style.npy'
        np.save(style, rng.normal(0, 0.5, 16).astype(np.float32))
    elif style_kind == 'motion':
        style = tmp_path / 'motion.npz'
        np.savez(style, exp=rng.normal(0, 1, (40, 50)).astype(np.float32),
                 pose=rng.normal(0, 0.1, (40, 6)).astype(np.float32))
    opts = dict(opts)
    if case.startswith('replayed'):
        draws = rng.standard_normal(2_000_000).astype(np.float32)
        np.save(tmp_path / 'draws.npy', draws)
        args = args + ['--noise-from', tmp_path / 'draws.npy']
        opts['noise'] = draws
    if audio_kind == 'file':
        audio_cli = audio_py = SPEECH
    else:
        audio_py = dpt.load_audio(SPEECH)                            # what dpt-generate decodes
        audio_cli = tmp_path / 'speech.npy'
        np.save(audio_cli, audio_py)
    ref = cli_generate(tmp_path, audio_cli, shape, style, args, opts.get('n_repetitions', 1))
    style_py = style
    if style_kind == 'motion':                                       # a motion dict, not the file
        z = np.load(style)
        style_py = {'exp': z['exp'], 'pose': z['pose']}
    if 'noise' in opts:
        with pytest.warns(UserWarning, match='draws left unused'):
            out = model.generate(audio_py, shape, style_py, **opts)
    else:
        out = model.generate(audio_py, shape, style_py, **opts)
    assert set(out) == {'exp', 'pose', 'shape'}
    n, L = ref['exp'].shape[:2]
    assert out['exp'].shape == (n, L, 50) and out['pose'].shape == (n, L, 6) and out['shape'].shape == (n, L, 100)
    for k in ('exp', 'pose', 'shape'):
        assert out[k].dtype == np.float32
        assert np.array_equal(out[k], ref[k]), (case, k, np.abs(out[k] - ref[k]).max())
    assert np.array_equal(out['shape'][0, 0], shape[0])
    if opts.get('no_head'):
        assert not out['pose'][..., :3].any() and out['pose'][..., 3:].any()


def test_encode_and_style_equal_cli(model, tmp_path):
    np.save(tmp_path / 'shape.npy', np.zeros(100, np.float32))
    for windows in (False, True):
        extra = ['--no-context-audio-feat'] if windows else []
        cli('dpt-generate', '-m', DEMO_MODEL, '-a', SPEECH, '--save-audio-features', tmp_path / 'f.npy', *extra)
        feats = model.encode_audio(SPEECH, no_context_audio_feat=windows)
        assert feats.shape == (feats.shape[0], model.info['feature_dim']) and feats.dtype == np.float32
        assert np.array_equal(feats, np.load(tmp_path / 'f.npy'))
    # generation from cached features = generation from the audio
    n = dpt.load_audio(SPEECH).size
    a = model.generate(SPEECH, np.zeros(100), cfg_cond='audio', seed=2)
    b = model.generate_from_features(model.encode_audio(SPEECH), n, np.zeros(100), cfg_cond='audio', seed=2)
    assert np.array_equal(a['exp'], b['exp']) and np.array_equal(a['pose'], b['pose'])
    # style extraction = dpt-style
    rng = np.random.default_rng(1)
    exp, pose = rng.normal(0, 1, (30, 50)).astype(np.float32), rng.normal(0, 0.1, (30, 6)).astype(np.float32)
    np.savez(tmp_path / 'clip.npz', exp=exp, pose=pose)
    cli('dpt-style', '-m', DEMO_MODEL, '-c', tmp_path / 'clip.npz', '-o', tmp_path / 's.npy', '--start', '4')
    s = model.extract_style(exp, pose, start=4)
    assert s.shape == (16,) and np.array_equal(s, np.load(tmp_path / 's.npy'))
    assert not np.array_equal(s, model.extract_style(exp, pose, start=0))


def test_resampled_arrays_equal_decoded_files(model, tmp_path):
    """(n, channels) int16-valued samples at 8 kHz with sample_rate= = the same WAV decoded by the
    library (and by dpt-generate): one resampler, the same bits."""
    import wave
    a = dpt.load_audio(SPEECH)
    x = (np.clip(a[::2], -1, 1) * 32000).astype(np.int16)
    pcm = np.stack([x, (x // 2)], axis=1)
    with wave.open(str(tmp_path / 'a.wav'), 'wb') as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    kw = dict(cfg_cond='audio', seed=5)
    from_array = model.generate(pcm / 32768.0, np.zeros(100), sample_rate=8000, **kw)
    ref = cli_generate(tmp_path, tmp_path / 'a.wav', np.zeros(100, np.float32), None,
                       ['--cfg-cond', 'audio', '--seed', '5'], 1)
    assert from_array['exp'].shape[1] == ref['exp'].shape[1] == model.generate(a, np.zeros(100), **kw)['exp'].shape[1]
    assert np.array_equal(from_array['exp'], ref['exp']) and np.array_equal(from_array['pose'], ref['pose'])


def test_thread_counts_and_concurrent_calls_same_bits(model):
    kw = dict(cfg_cond='audio', seed=9, n_repetitions=2)
    base = model.generate(SPEECH, np.zeros(100), **kw)
    # a file read instead of mapped is not prepacked (DEVELOPERS.md): other GEMM paths, last bits only
    unmapped = [dpt.Model(DEMO_MODEL, mmap=False, threads=t).generate(SPEECH, np.zeros(100), **kw) for t in (1, 2)]
    assert np.array_equal(unmapped[0]['exp'], unmapped[1]['exp'])
    assert np.abs(unmapped[0]['exp'] - base['exp']).max() <= 1e-5 * np.abs(base['exp']).max()
    one = model.generate(SPEECH, np.zeros(100), threads=1, **kw)
    assert np.array_equal(base['exp'], one['exp'])
    other = dpt.Model(DEMO_MODEL, threads=3).generate(SPEECH, np.zeros(100), **kw)
    assert np.array_equal(base['exp'], other['exp'])
    outs = [None] * 4

    def run(i):
        outs[i] = model.generate(SPEECH, np.zeros(100), **kw)    # the model's state is taken by one of them
    ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert all(o is not None and np.array_equal(o['exp'], base['exp']) for o in outs)


def test_arrays_used_in_place_or_converted_once(model):
    a = dpt.load_audio(SPEECH)
    assert dpt._audio(a, 16000) is a                                  # float32 1-D: no copy
    strided = np.repeat(a, 2)[::2]                                    # not contiguous: converted
    assert not strided.flags.c_contiguous
    f64 = a.astype(np.float64)
    kw = dict(cfg_cond='audio', seed=1)
    ref = model.generate(a, np.zeros(100, np.float32), **kw)
    for audio in (strided, f64, a.tolist()):
        assert np.array_equal(model.generate(audio, np.zeros(100, np.float64), **kw)['exp'], ref['exp'])
    # (n, channels) at another rate goes through the library's resampler, as dpt-generate's
    st = np.stack([a, a], axis=1)
    assert np.array_equal(dpt._audio(st, 16000), a)
    r = dpt._audio(a[:16000 * 2], 8000)
    assert r.shape == (64000,)


# ------------------------------------------------------------------------------------------------
# the PyTorch reference

def test_reference_parity(tmp_path):
    """Tiny model at the official format: the reference's features and Demo.infer_coeffs (N = 2,
    recorded draws) vs the package (its own audio encoder; the replayed draws)."""
    case = tmp_path / 'ref.npz'
    r = subprocess.run([REF_PYTHON, str(ROOT / 'python' / 'tests' / 'reference_case.py'), str(case)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    z = np.load(case)
    m = dpt.Model(str(z['model']), threads=2)
    feats = m.encode_audio(z['samples'])
    ef = np.abs(feats - z['feats']).max() / np.abs(z['feats']).max()
    assert ef <= 1e-4, ef
    out = m.generate(z['samples'], z['shape'], z['style'], n_repetitions=2, noise=z['draws'])
    e1 = np.abs(out['exp'] - z['exp']).max() / np.abs(z['exp']).max()
    e2 = np.abs(out['pose'] - z['pose']).max() / np.abs(z['pose']).max()
    print(f'package vs reference: features {ef:.2e}, exp {e1:.2e}, pose {e2:.2e}')
    assert out['exp'].shape == z['exp'].shape and e1 <= TOL and e2 <= TOL
    assert np.array_equal(out['shape'], np.broadcast_to(z['shape'], out['shape'].shape))


# ------------------------------------------------------------------------------------------------
# errors

def test_load_errors(tmp_path):
    with pytest.raises(dpt.FileError) as e:
        dpt.Model(tmp_path / 'missing.dpt')
    assert 'missing.dpt' in str(e.value) and e.value.status == 2 and isinstance(e.value, OSError)
    (tmp_path / 'junk.dpt').write_bytes(b'not a model at all' * 10)
    with pytest.raises(dpt.FormatError) as e:
        dpt.Model(tmp_path / 'junk.dpt')
    assert 'junk.dpt' in str(e.value) and len(str(e.value).splitlines()) == 1
    with pytest.raises(dpt.FileError, match='nothing.wav'):
        dpt.load_audio(tmp_path / 'nothing.wav')
    (tmp_path / 'noise.wav').write_bytes(b'RIFF....WAVEfmt garbage' * 4)
    with pytest.raises(dpt.AudioError, match='noise.wav'):
        dpt.load_audio(tmp_path / 'noise.wav')
    with pytest.raises(ValueError, match='threads'):
        dpt.Model(DEMO_MODEL, threads=-1)


BAD = [
    # (description, generate kwargs, exception, words in the message)
    ('shape of 99 values', dict(shape=np.zeros(99)), dpt.InvalidArgumentError, ['shape', '100', '(99,)']),
    ('NaN in shape', dict(shape=np.full(100, np.nan)), dpt.InvalidArgumentError, ['shape', 'NaN']),
    ('complex shape', dict(shape=np.zeros(100, complex)), dpt.InvalidArgumentError, ['shape', 'complex']),
    ('style of wrong length', dict(style=np.zeros(7)), dpt.InvalidArgumentError, ['style', '16', '(7,)']),
    ('Inf in style', dict(style=np.full(16, np.inf)), dpt.InvalidArgumentError, ['style', 'NaN or Inf']),
    ('motion dict without pose', dict(style={'exp': np.zeros((30, 50))}), dpt.InvalidArgumentError, ['pose']),
    ('style start outside', dict(style={'exp': np.zeros((30, 50)), 'pose': np.zeros((30, 6))}, style_start=30),
     dpt.InvalidArgumentError, ['start frame 30', '30 frames']),
    ('n_repetitions 0', dict(n_repetitions=0), dpt.InvalidArgumentError, ['n_repetitions']),
    ('unknown cfg mode', dict(cfg_mode='sideways'), dpt.InvalidArgumentError, ['cfg_mode', 'sideways']),
    ('unknown condition', dict(cfg_cond='audio,pitch'), dpt.InvalidArgumentError, ['cfg_cond', 'pitch']),
    ('dt ratio above 1', dict(dynamic_threshold_ratio=1.5), dpt.InvalidArgumentError, ['threshold']),
    ('eta with the full schedule out of range', dict(eta=-1.0, steps=5), dpt.InvalidArgumentError, ['eta']),
    ('style guidance without a style', dict(style=None, cfg_cond='style'), dpt.InvalidArgumentError, ['style']),
    ('draws run out', dict(noise=np.zeros(10, np.float32)), dpt.NoiseError, ['noise']),
    ('NaN audio', dict(audio=np.full(16000, np.nan, np.float32)), dpt.InvalidArgumentError, ['NaN']),
    ('2-D shape of the wrong width', dict(shape=np.zeros((4, 50))), dpt.InvalidArgumentError, ['(4, 50)']),
    ('audio of three dimensions', dict(audio=np.zeros((2, 2, 2))), dpt.InvalidArgumentError, ['audio']),
    ('string samples', dict(audio=np.array(['a', 'b'])), dpt.InvalidArgumentError, ['audio', 'dtype']),
    ('negative seed', dict(seed=-1), dpt.InvalidArgumentError, ['seed']),
    ('missing audio file', dict(audio='/nonexistent/speech.wav'), dpt.FileError, ['/nonexistent/speech.wav']),
    ('missing style file', dict(style='/nonexistent/style.npy'), dpt.FileError, ['/nonexistent/style.npy']),
]


@pytest.mark.parametrize('case', range(len(BAD)), ids=[b[0] for b in BAD])
def test_generate_bad_input(model, case):
    what, kw, exc, words = BAD[case]
    kw = dict(kw)
    args = dict(audio=np.zeros(8000, np.float32), shape=np.zeros(100), style=np.zeros(16))
    for k in ('audio', 'shape', 'style'):
        if k in kw:
            args[k] = kw.pop(k)
    with pytest.raises(exc) as e:
        model.generate(args['audio'], args['shape'], args['style'], **kw)
    msg = str(e.value)
    assert len(msg.splitlines()) == 1, msg
    for w in words:
        assert w in msg, (what, msg)
    assert isinstance(e.value, dpt.Error)


def test_wrong_option_names_and_types(model):
    with pytest.raises(TypeError, match='n_repetition'):
        model.generate(SPEECH, np.zeros(100), n_repetition=2)
    with pytest.raises(TypeError, match='seed'):
        model.generate(SPEECH, np.zeros(100), seed='7')
    with pytest.raises(dpt.InvalidArgumentError, match='exp'):
        model.extract_style(np.zeros((10, 49)), np.zeros((10, 6)))
    with pytest.raises(dpt.InvalidArgumentError, match="'exp' has 10 frames but 'pose' 9"):
        model.extract_style(np.zeros((10, 50)), np.zeros((9, 6)))
    with pytest.raises(dpt.InvalidArgumentError, match='features'):
        model.generate_from_features(np.zeros((10, 7)), 16000, np.zeros(100))
    # the library's own message when the features do not fit the clip
    with pytest.raises(dpt.InvalidArgumentError, match='frames'):
        model.generate_from_features(np.zeros((10, 32)), 160000, np.zeros(100), cfg_cond='audio')


# ------------------------------------------------------------------------------------------------
# cancellation and the GIL

LONG = dict(n_repetitions=16, cfg_cond='audio', seed=4)


def long_clip():
    return np.random.default_rng(0).standard_normal(16000 * 30).astype(np.float32) * 0.1


def rss_kib():
    with open('/proc/self/status') as f:
        return int(next(l for l in f if l.startswith('VmRSS')).split()[1])


def test_progress_callback_cancels_and_errors_propagate(model):
    calls = []

    def progress(w, nw, s, ns):
        calls.append((w, nw, s, ns))
        return len(calls) >= 3
    with pytest.raises(dpt.CancelledError) as e:
        model.generate(SPEECH, np.zeros(100), cfg_cond='audio', progress=progress)
    assert e.value.status == 8 and 'cancelled' in str(e.value)
    assert len(calls) == 3 and calls[0][2] == 1 and calls[0][3] == model.info['n_diff_steps']
    seen = []
    model.generate(SPEECH, np.zeros(100), cfg_cond='audio', progress=lambda *a: seen.append(a))
    n_win = seen[0][1]
    assert len(seen) == n_win * model.info['n_diff_steps'] and seen[-1] == (n_win - 1, n_win, 10, 10)

    def boom(*a):
        raise ZeroDivisionError('from the callback')
    with pytest.raises(ZeroDivisionError, match='from the callback'):
        model.generate(SPEECH, np.zeros(100), cfg_cond='audio', progress=boom)


def test_ctrl_c_cancels_a_long_generation(model):
    a = long_clip()
    kw = dict(LONG)
    while True:                                    # long enough to be interrupted in the middle
        t0 = time.perf_counter()
        full = model.generate(a, np.zeros(100), **kw)
        t_full = time.perf_counter() - t0
        if t_full > 1.0 or kw['n_repetitions'] >= 1024:
            break
        kw['n_repetitions'] *= 2
    assert t_full > 1.0, t_full
    rss0 = None
    for i in range(6):
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        t0 = time.perf_counter()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            model.generate(a, np.zeros(100), **kw)
        took = time.perf_counter() - t0
        timer.join()
        assert took < 0.3 + 0.5 * t_full, (took, t_full)
        if i == 1:
            rss0 = rss_kib()                           # after the first cancellations' one-time allocations
    assert rss_kib() - rss0 < 20000, (rss0, rss_kib())   # no per-cancellation leak of results or buffers
    again = model.generate(a, np.zeros(100), **kw)     # the model and its threads are intact
    assert np.array_equal(again['exp'], full['exp'])


def test_gil_released_during_compute(model):
    """A Python thread keeps running while the library encodes (no callback there)."""
    a = long_clip()
    t0 = time.perf_counter()
    model.encode_audio(a, threads=1)
    while time.perf_counter() - t0 < 0.4 and a.size < 16000 * 3600 // 4:   # long enough on this machine
        a = np.concatenate([a, a])
        t0 = time.perf_counter()
        model.encode_audio(a, threads=1)
    ticks = [0]
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks[0] += 1
    t = threading.Thread(target=count)
    t.start()
    try:
        t0 = time.perf_counter()
        before = ticks[0]
        model.encode_audio(a, threads=1)
        spent = time.perf_counter() - t0
        during = ticks[0] - before
    finally:
        done.set()
        t.join()
    assert spent > 0.2 and during > 10000, (spent, during)


# ------------------------------------------------------------------------------------------------
# streams

def test_stream_equals_offline_no_context(model):
    audio = dpt.load_audio(SPEECH)
    shape = np.random.default_rng(3).normal(0, 1, 100).astype(np.float32)
    style = np.random.default_rng(4).normal(0, 0.5, 16).astype(np.float32)
    off = model.generate(audio, shape, style, no_context_audio_feat=True, seed=6)
    mean, std = dpt.audio_stats(audio)
    s = model.stream(shape, style, norm='fixed', norm_mean=mean, norm_std=std, seed=6, threads=2)
    assert s.threads == 2
    got, pos, rng = [], 0, np.random.default_rng(5)
    while pos < audio.size:                         # pushes of random sizes, pulls in between
        n = int(rng.integers(1, 9000))
        s.push(audio[pos:pos + n])
        pos += n
        got.append(s.pull())
    assert s.info['samples_pushed'] == audio.size and not s.info['flushed']
    s.flush()
    got.append(s.drain())
    assert s.info['finished']
    exp = np.concatenate([g['exp'] for g in got])
    pose = np.concatenate([g['pose'] for g in got])
    assert np.array_equal(exp, off['exp'][0]) and np.array_equal(pose, off['pose'][0])
    with pytest.raises(dpt.InvalidArgumentError, match='flush'):
        s.push(audio[:100])
    s.reset()                                        # a second utterance: the same frames again
    assert s.info['samples_pushed'] == 0
    s.push(audio)
    s.flush()
    part = s.pull(max_frames=7)
    assert part['exp'].shape == (7, 50)
    rest = s.drain()
    assert np.array_equal(np.concatenate([part['exp'], rest['exp']]), off['exp'][0])
    s.reset()
    with pytest.raises(dpt.InvalidArgumentError, match='NaN'):
        s.push(np.full(10, np.nan, np.float32))
    assert s.info['samples_pushed'] == 0                 # refused whole
    with pytest.raises(dpt.UnsupportedError, match='n_repetitions must be 1'):
        model.stream(shape, style, n_repetitions=2)
    with pytest.raises(dpt.InvalidArgumentError, match='norm'):
        model.stream(shape, style, norm='sometimes')


def stream_frames(s, audio, seed):
    """Push audio in random pieces, pulling in between, then flush and drain: (exp, pose)."""
    got, pos, rng = [], 0, np.random.default_rng(seed)
    while pos < audio.size:
        n = int(rng.integers(1, 5000))
        s.push(audio[pos:pos + n])
        pos += n
        got.append(s.pull())
    s.flush()
    got.append(s.drain())
    return np.concatenate([g['exp'] for g in got]), np.concatenate([g['pose'] for g in got])


@pytest.mark.parametrize('chunk,context,replay', [(5, None, False), (7, 3, True), (0, None, True)])
def test_stream_equals_dpt_stream(model, chunk, context, replay, tmp_path):
    """Low-latency chunks (and window mode with replayed draws) = dpt-stream's JSON frames, bit for bit
    (%.9g round-trips float32)."""
    import json
    rng = np.random.default_rng(8)
    shape, style = rng.normal(0, 1, 100).astype(np.float32), rng.normal(0, 0.5, 16).astype(np.float32)
    np.save(tmp_path / 'shape.npy', shape)
    np.save(tmp_path / 'style.npy', style)
    args = ['-m', DEMO_MODEL, '-c', tmp_path / 'shape.npy', '-s', tmp_path / 'style.npy', '-a', SPEECH,
            '--chunk-frames', chunk, '--seed', 4, '--threads', 2, '-q']
    opts = dict(seed=4)
    if context is not None:
        args += ['--context-frames', context]
    if replay:
        draws = rng.standard_normal(3_000_000).astype(np.float32)
        np.save(tmp_path / 'draws.npy', draws)
        args += ['--noise-from', tmp_path / 'draws.npy']
        opts['noise'] = draws
    lines = [json.loads(l) for l in cli('dpt-stream', *args).stdout.splitlines()]
    ref_exp = np.array([l['exp'] for l in lines], np.float32)
    ref_pose = np.array([l['pose'] for l in lines], np.float32)
    audio = dpt.load_audio(SPEECH)
    mean, std = dpt.audio_stats(audio)                 # dpt-stream -a: --norm clip
    s = model.stream(shape, style, chunk_frames=chunk, context_frames=context, norm_mean=mean, norm_std=std,
                     threads=2, **opts)
    info = s.info
    L = model.info['n_motions']
    assert info['chunk_frames'] == (chunk or L)
    assert info['context_frames'] == (context if context is not None else (L - chunk if chunk else 0))
    exp, pose = stream_frames(s, audio, 1)
    assert exp.shape == ref_exp.shape and [l['frame'] for l in lines] == list(range(len(lines)))
    assert np.array_equal(exp, ref_exp) and np.array_equal(pose, ref_pose)
    if replay:
        used = s.info['draws_used']
        assert 0 < used < draws.size
        s.reset()                                       # the draws start over: the same frames again
        assert s.info['draws_used'] == 0
        exp2, _ = stream_frames(s, audio, 2)
        assert np.array_equal(exp2, exp) and s.info['draws_used'] == used
    if chunk:
        off = model.generate(audio, shape, style, no_context_audio_feat=True, seed=4)
        assert not np.array_equal(exp, off['exp'][0])   # an approximation of offline, not offline
    with pytest.raises(dpt.InvalidArgumentError):
        model.stream(shape, style, chunk_frames=L + 1)


def test_stream_ctrl_c_during_pull(model):
    audio = long_clip()[:16000 * 9]
    slow = [True]
    s = model.stream(np.zeros(100), cfg_cond='audio', seed=2,
                     progress=lambda *a: time.sleep(0.05) if slow[0] else None)
    s.push(audio[:16000 * 4])
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        s.pull()
    timer.join()
    # the stream is usable again after a reset: the same frames as offline
    slow[0] = False
    s.reset()
    s.push(audio)
    s.flush()
    got = s.drain()
    mean, std = dpt.audio_stats(audio)
    s2 = model.stream(np.zeros(100), cfg_cond='audio', seed=2, norm_mean=mean, norm_std=std)
    s2.push(audio)
    s2.flush()
    off = model.generate(audio, np.zeros(100), cfg_cond='audio', seed=2, no_context_audio_feat=True)
    assert np.array_equal(s2.drain()['exp'], off['exp'][0])
    assert got['exp'].shape == off['exp'][0].shape     # fixed norm 0/1 here: same frames, other values


# ------------------------------------------------------------------------------------------------
# FLAME and rendering

def test_flame_vertices_and_frames_equal_dpt_mesh(model, standin, tmp_path):
    f = dpt.Flame(standin['dpt'], threads=2)
    info = f.info
    assert info['n_vertices'] == 5041 and info['has_uv'] and f.faces.shape == (info['n_faces'], 3)
    vt, ft = f.uv
    assert vt.shape == (info['n_uv'], 2) and ft.shape == f.faces.shape
    out = model.generate(SPEECH, np.random.default_rng(1).normal(0, 1, 100), cfg_cond='audio', seed=1,
                         n_repetitions=2)
    rep = {k: v[1][:6] for k, v in out.items()}
    np.savez(tmp_path / 'c.npz', **rep)
    cli('dpt-mesh', '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--vertices', tmp_path / 'v.npy',
        '--frames', tmp_path / 'png', '--size', '64x48', '--threads', '2', '-q')
    v = f.vertices(rep)
    assert v.shape == (6, 5041, 3) and v.dtype == np.float32
    assert np.array_equal(v, np.load(tmp_path / 'v.npy'))
    both = f.vertices({k: x[:, :6] for k, x in out.items()})        # the repetition axis kept
    assert both.shape == (2, 6, 5041, 3) and np.array_equal(both[1], v)
    assert np.array_equal(dpt.Flame(standin['dpt'], threads=1).vertices(rep), v)
    assert np.array_equal(f.vertices(rep, threads=3), v)
    nohead = f.vertices(rep, no_head=True)
    assert not np.array_equal(nohead, v)
    frames = list(f.frames(rep, width=64, height=48, chunk=4))
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    for i, fr in enumerate(frames):
        assert np.array_equal(fr, dpt.read_image(tmp_path / 'png' / f'{i:06d}.png'))
    assert (frames[0] != 255).any()                  # a head, not just the white background
    assert np.array_equal(f.renderer(64, 48, threads=1).render(v[2]), f.renderer(64, 48, threads=2).render(v[2]))
    r = f.renderer(64, 48, black_bg=True)
    assert np.array_equal(r.render(v).shape, (6, 48, 64, 3)) and r.render(v[0])[0, 0].tolist() == [0, 0, 0]
    with pytest.raises(dpt.InvalidArgumentError, match='NaN'):
        r.render(np.full((5041, 3), np.nan, np.float32))
    with pytest.raises(dpt.InvalidArgumentError, match='vertices'):
        r.render(np.zeros((10, 3), np.float32))
    with pytest.raises(dpt.InvalidArgumentError, match='shape'):
        f.vertices(exp=rep['exp'], pose=rep['pose'], shape=np.zeros(99))
    with pytest.raises(dpt.UnsupportedError, match='demo-tiny'):
        dpt.Flame(DEMO_MODEL)


def write_png(path, rgb):
    """A minimal RGB PNG (zlib, no filter) for the texture test."""
    import struct
    import zlib
    h, w, _ = rgb.shape
    raw = b''.join(b'\0' + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
                     chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def test_textured_frames_equal_dpt_mesh(model, standin, tmp_path):
    y, x = np.mgrid[0:32, 0:48]
    tex = np.stack([x * 5, y * 7, (x + y) * 3], axis=-1).astype(np.uint8)
    write_png(tmp_path / 'tex.png', tex)
    assert np.array_equal(dpt.read_image(tmp_path / 'tex.png'), tex)
    out = model.generate(SPEECH, np.zeros(100), cfg_cond='audio', seed=3)
    rep = {k: v[0][:3] for k, v in out.items()}
    np.savez(tmp_path / 'c.npz', **rep)
    cli('dpt-mesh', '-f', standin['dpt'], '-c', tmp_path / 'c.npz', '--frames', tmp_path / 'png', '--size', '40x40',
        '--tex', tmp_path / 'tex.png', '--supersample', '2', '--no-head', '-q')
    f = dpt.Flame(standin['dpt'])
    for texture in (tmp_path / 'tex.png', tex):
        frames = list(f.frames(rep, width=40, height=40, texture=texture, supersample=2, no_head=True))
        for i, fr in enumerate(frames):
            assert np.array_equal(fr, dpt.read_image(tmp_path / 'png' / f'{i:06d}.png'))
    plain = next(f.frames(rep, width=40, height=40, supersample=2, no_head=True))
    assert not np.array_equal(plain, frames[0])
    with pytest.raises(dpt.InvalidArgumentError, match='texture'):
        f.renderer(40, 40, texture=np.zeros((4, 4), np.uint8))
    with pytest.raises(dpt.FileError, match='nope.png'):
        f.renderer(40, 40, texture=tmp_path / 'nope.png')


def test_readme_example(standin):
    """The README's example runs as written (the stand-in head in place of make demo's) and prints
    what its comment says."""
    text = (ROOT / 'README.md').read_text()
    block = text.split('## Python package', 1)[1].split('```python\n', 1)[1].split('```', 1)[0]
    assert len(block.strip().splitlines()) == 5
    code = block.replace("'build/demo/standin-head.dpt'", repr(str(standin['dpt'])))
    r = subprocess.run([os.sys.executable, '-c', code + '\nprint(verts.shape)\n'], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    printed = r.stdout.splitlines()
    want = re.search(r'print\(.*\)\s+# (.*)', block).group(1)
    assert printed[0] == want, (printed, want)
    assert printed[1] == '(144, 5041, 3)'


def test_stream_with_a_callback_cycle_is_collected(model):
    import gc
    import weakref
    holder = {}
    s = model.stream(np.zeros(100), cfg_cond='audio', progress=lambda *a: holder['s'].info and None)
    holder['s'] = s                                  # stream → callback → holder → stream
    s.push(np.zeros(16000 * 5, np.float32))
    assert s.pull()['exp'].shape == (model.info['n_motions'], 50)
    ref = weakref.ref(s)
    del s, holder
    gc.collect()
    assert ref() is None


def test_tensors_equal_dpt_info(model, tmp_path):
    listing = cli('dpt-info', DEMO_MODEL, '--tensors').stdout.splitlines()
    ts = model.tensors
    assert len(ts) == len(listing) == model.info['n_tensors']
    for t, line in zip(ts, listing):
        name, dtype, shape = line.split(None, 2)
        assert (t['name'], t['dtype']) == (name, {'f32': 'float32', 'f16': 'float16'}[dtype])
        assert tuple(t['shape']) == tuple(int(x) for x in re.findall(r'\d+', shape))
    name = ts[10]['name']
    cli('dpt-info', DEMO_MODEL, '--dump', name, '--npy', tmp_path / 't.npy')
    v = model.tensor(name)
    assert v.shape == tuple(ts[10]['shape']) and np.array_equal(v, np.load(tmp_path / 't.npy'))
    with pytest.raises(dpt.InvalidArgumentError, match="tensor 'nope'"):
        model.tensor('nope')


def test_library_warnings_are_python_warnings(model):
    rng = np.random.default_rng(0)
    exp, pose = rng.normal(0, 1, (30, 50)), rng.normal(0, 0.1, (30, 6))
    with pytest.warns(dpt.LibraryWarning, match='frames'):
        short = model.extract_style(exp, pose, start=25)          # 5 of n_motions = 20 frames
    assert short.shape == (16,) and np.isfinite(short).all()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')                            # a full clip warns nothing
        model.extract_style(exp, pose, start=0)


def test_file_inputs_as_dpt_generate_reads_them(model, tmp_path):
    """shape/style/noise given as files: .npy, .npz keys, motion clips; bad files named in the error."""
    rng = np.random.default_rng(2)
    shape, style = rng.normal(0, 1, 100).astype(np.float32), rng.normal(0, 0.5, 16).astype(np.float32)
    np.savez(tmp_path / 'shape.npz', shape=shape[None].repeat(4, 0))
    np.savez(tmp_path / 'style.npz', style=style)
    np.save(tmp_path / 'draws.npy', rng.standard_normal(500_000).astype(np.float32))
    kw = dict(seed=1)
    a = model.generate(SPEECH, tmp_path / 'shape.npz', tmp_path / 'style.npz', **kw)
    b = model.generate(SPEECH, shape, style, **kw)
    assert np.array_equal(a['exp'], b['exp'])
    with pytest.warns(UserWarning, match='unused'):
        c = model.generate(SPEECH, shape, style, noise=str(tmp_path / 'draws.npy'))
    with pytest.warns(UserWarning, match='unused'):
        d = model.generate(SPEECH, shape, style, noise=np.load(tmp_path / 'draws.npy').reshape(1000, 500))
    assert np.array_equal(c['exp'], d['exp']) and not np.array_equal(c['exp'], b['exp'])
    np.savez(tmp_path / 'other.npz', coef=shape)
    with pytest.raises(dpt.FormatError, match=r"other.npz: no array 'shape' \(it has coef\)"):
        model.generate(SPEECH, tmp_path / 'other.npz')
    (tmp_path / 'text.npy').write_text('hello')
    with pytest.raises(dpt.FormatError, match='text.npy: not a .npy or .npz'):
        model.generate(SPEECH, shape, tmp_path / 'text.npy')
    with pytest.raises(dpt.InvalidArgumentError, match='other.npz: the draws are a .npy'):
        model.generate(SPEECH, shape, style, noise=tmp_path / 'other.npz')


def test_stub_of_the_extension_matches_it():
    """dpt/_dpt.pyi (installed) names exactly what the extension defines."""
    from dpt import _dpt
    stub = open(os.path.join(os.path.dirname(dpt.__file__), '_dpt.pyi')).read()
    cls = None
    names = []
    for line in stub.splitlines():
        m = re.match(r'( {0}| {4})(?:def|class) (\w+)|( {0}| {4})(\w+):', line)   # not continuation lines
        if not m or line.lstrip().startswith('#'):
            continue
        indent, name = (m.group(1), m.group(2)) if m.group(2) else (m.group(3), m.group(4))
        if not indent:
            cls = name if line.startswith('class ') else None
            names.append((None, name))
        elif cls:
            names.append((cls, name))
    assert len(names) > 40
    for owner, name in names:
        assert hasattr(getattr(_dpt, owner) if owner else _dpt, name), (owner, name)
    public = {n for n in dir(_dpt) if not n.startswith('__')}
    assert public == {n for o, n in names if o is None}


@pytest.mark.parametrize('name,code', [('bf16', 1), ('int8', 2), ('f16', 3)])
def test_precision_equals_cli(tmp_path, name, code):
    """Model(precision=name) gives dpt-generate --precision name's bits; bf16 and int8 differ from
    f32 (the demo model is float32, so f16 rounds its weights and differs too)."""
    m = dpt.Model(DEMO_MODEL, threads=2, precision=name)
    assert m.info['precision'] == code and m.info['precision_name'].startswith(name)
    shape = np.zeros(100, np.float32)
    ref = cli_generate(tmp_path, SPEECH, shape, None, ['--cfg-cond', 'audio', '--seed', '2', '--precision', name], 1)
    out = m.generate(SPEECH, shape, cfg_cond='audio', seed=2)
    np.testing.assert_array_equal(out['exp'], ref['exp'])
    np.testing.assert_array_equal(out['pose'], ref['pose'])
    f32 = dpt.Model(DEMO_MODEL, threads=2).generate(SPEECH, shape, cfg_cond='audio', seed=2)
    assert not np.array_equal(f32['exp'], out['exp'])


def test_unknown_precision_named():
    with pytest.raises(dpt.InvalidArgumentError, match="precision: 'f8'"):
        dpt.Model(DEMO_MODEL, precision='f8')
