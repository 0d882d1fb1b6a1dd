"""Atomic outputs under failures the other tests do not make: a full disk (a file-size limit, so the
temporary file's writes fail with EFBIG) and a device as the destination (/dev/full: ENOSPC;
/dev/null), and Ctrl-C (SIGINT) in the middle of a run. Every failure must be one line naming the
output, leave no temporary ('.NAME.tmp-...') behind and leave an existing good output as it was;
a device must still be that device afterwards (before the fix, a rename replaced it by a regular
file, which as root would have replaced the machine's /dev/full).
"""
import os
import resource
import signal
import stat
import subprocess
import time

import numpy as np
import pytest

import helpers

GEN = str(helpers.BUILD / 'dpt-generate')
STYLE = str(helpers.BUILD / 'dpt-style')
MESH = str(helpers.BUILD / 'dpt-mesh')
INFO = str(helpers.BUILD / 'dpt-info')
MODEL = str(helpers.ROOT / 'weights' / 'demo-tiny.dpt')
SPEECH = str(helpers.ROOT / 'examples' / 'data' / 'speech.flac')
SHAPE = str(helpers.ROOT / 'examples' / 'data' / 'shape.npy')
# an 8-vertex FLAME file (tests/fuzz/make_corpus.py): rendering it is cheap, so clips can be long
FLAME = str(helpers.ROOT / 'tests' / 'fuzz' / 'corpus' / 'flame' / 'flame.dpt')
COMMON = ['-m', MODEL, '-a', SPEECH, '-c', SHAPE, '--cfg-cond', 'audio', '--steps', '2']


def run(prog, *args, limit=None, **kw):
    def preexec():
        if limit is not None:   # "the disk is full" after `limit` bytes of any file
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run([prog] + [str(a) for a in args], capture_output=True, text=True,
                          preexec_fn=preexec, **kw)


def leftovers(d):
    return sorted(p.name for p in d.rglob('*') if '.tmp-' in p.name)


def snapshot(d):
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob('*')) if p.is_file()}


def one_line_failure(r, *words):
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def coef_file(path, frames, seed=1):
    rng = np.random.default_rng(seed)
    np.savez(path, exp=rng.normal(0, 0.5, (frames, 50)).astype(np.float32),
             pose=rng.normal(0, 0.1, (frames, 6)).astype(np.float32), shape=np.zeros(100, np.float32))


# ---- a full disk ---------------------------------------------------------------------------------

def test_disk_full_keeps_good_outputs(tmp_path):
    """Every output kind written by the programs, first for real, then again with writes failing past
    100 bytes: each run fails naming its output, and the first run's files are untouched."""
    out = tmp_path / 'out'
    coef_file(tmp_path / 'c.npz', 8)
    motion = tmp_path / 'motion.npz'
    coef_file(motion, 40)
    runs = [(GEN, *COMMON, '-o', out / 'coef.npz', '--plot', out / 'plot.svg'),
            (GEN, *COMMON, '-o', out / 'coef.csv'),
            (GEN, *COMMON, '-o', out / 'coef.json'),
            (GEN, *COMMON, '-o', out / 'coef', '--format', 'npy'),
            (GEN, *COMMON, '--save-audio-features', out / 'feats.npy'),
            (STYLE, '-m', MODEL, '-c', motion, '-o', out / 'style.npy'),
            (INFO, MODEL, '--dump', 'stats.exp_mean', '--npy', out / 'tensor.npy'),
            (INFO, MODEL, '--dump-all', out / 'tensors'),
            (MESH, '-f', FLAME, '-c', tmp_path / 'c.npz', '--vertices', out / 'v.npy', '--obj', out / 'obj',
             '--frames', out / 'frames', '--size', '32x32'),
            (MESH, '-f', FLAME, '-c', tmp_path / 'c.npz', '--video', out / 'v.mp4', '--size', '32x32')]
    for args in runs:
        r = run(*args)
        assert r.returncode == 0, (args, r.stderr)
    good = snapshot(out)
    assert len(good) >= 150 and not leftovers(out)
    coef_file(tmp_path / 'c.npz', 8, seed=2)   # what would be written now differs
    coef_file(motion, 40, seed=2)
    for args in runs:
        r = run(*args, *(['--seed', '9'] if args[0] == GEN else []), limit=100)
        line = one_line_failure(r)
        assert str(out) in line and '.tmp-' not in line, line
        assert any(w in line for w in ('File too large', 'ffmpeg failed', 'write')), line
        assert snapshot(out) == good, args
        assert not leftovers(out), (args, leftovers(out))


# ---- devices as outputs ----------------------------------------------------------------------------

@pytest.fixture
def devices(tmp_path):
    """A full and a null device: made with mknod in tmp_path when root (so that a program that would
    replace its output replaces only these), else the system's /dev/full and /dev/null."""
    if os.geteuid() == 0:
        d = tmp_path / 'dev'
        d.mkdir()
        os.mknod(d / 'full', 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        os.mknod(d / 'null', 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        return d / 'full', d / 'null'
    return os.path.realpath('/dev/full'), os.path.realpath('/dev/null')


def is_chr(p):
    return stat.S_ISCHR(os.stat(p).st_mode)


def test_device_outputs_are_written_in_place(devices, tmp_path):
    full, null = devices
    coef_file(tmp_path / 'c.npz', 4)
    # (dpt-style appends '.npy' to its output name, as np.save does, and dpt-generate -o replaces
    # the extension, as upstream: their outputs are never the device itself)
    cases = [(GEN, *COMMON, '-o', tmp_path / 'a.npz', '--plot', '{}'),
             (GEN, *COMMON, '--save-audio-features', '{}'),
             (MESH, '-f', FLAME, '-c', tmp_path / 'c.npz', '--vertices', '{}')]
    for args in cases:
        r = run(*[full if a == '{}' else a for a in args])
        one_line_failure(r, str(full), 'No space left on device')
        assert is_chr(full), 'the device was replaced'
        r = run(*[null if a == '{}' else a for a in args])
        assert r.returncode == 0, r.stderr
        assert is_chr(null), 'the device was replaced'
    assert not leftovers(tmp_path)


# ---- Ctrl-C ----------------------------------------------------------------------------------------

def wait_for(pred, proc, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


@pytest.mark.parametrize('kind', ['video', 'frames'])
def test_sigint_while_writing_keeps_the_good_output(kind, tmp_path):
    """SIGINT while dpt-mesh renders a long clip into an existing good output: one line, exit 1, the
    temporary removed, the good output as it was."""
    coef_file(tmp_path / 'short.npz', 3)
    coef_file(tmp_path / 'long.npz', 3000, seed=2)
    opt, dest = ('--video', tmp_path / 'v.mp4') if kind == 'video' else ('--frames', tmp_path / 'fr')
    r = run(MESH, '-f', FLAME, '-c', tmp_path / 'short.npz', opt, dest, '--size', '64x64')
    assert r.returncode == 0, r.stderr
    good = snapshot(tmp_path)
    p = subprocess.Popen([MESH, '-f', FLAME, '-c', str(tmp_path / 'long.npz'), opt, str(dest), '--size', '128x128'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # the temporary exists and is being written
        started = wait_for(lambda: any(q.is_file() and q.stat().st_size > 0 for q in tmp_path.rglob('*.tmp-*'))
                           or any(q.is_dir() and any(q.iterdir()) for q in tmp_path.glob('.*.tmp-*')), p)
        assert started, 'the run ended before its temporary output appeared'
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=60)[1]
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1, (p.returncode, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'interrupted' in lines[0], err
    assert snapshot(tmp_path) == good
    assert not leftovers(tmp_path)


def test_sigint_during_a_batch(tmp_path):
    """SIGINT during dpt-generate --batch: the job being run and those after it are not written (an
    existing file at a later job's output stays as it was), those done before are complete."""
    n = 40
    jobs = tmp_path / 'jobs.tsv'
    jobs.write_text(''.join(f'{SPEECH}\t{SHAPE}\t-\t{tmp_path}/j{i:02d}.npz\n' for i in range(n)))
    last = tmp_path / f'j{n - 1:02d}_000.npz'
    last.write_bytes(b'the good old output')
    p = subprocess.Popen([GEN, '-m', MODEL, '--batch', str(jobs), '--cfg-cond', 'audio', '-n', '8'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: (tmp_path / 'j01_007.npz').exists(), p), 'the batch ended too early'
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=120)[1]
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 1, err
    assert 'interrupted' in err, err
    done = sorted(q.name for q in tmp_path.glob('j*_000.npz') if q != last)
    assert 2 <= len(done) < n - 1, done
    for q in tmp_path.glob('j*_0*.npz'):
        if q == last:
            continue
        z = np.load(q)
        assert z['exp'].shape[1] == 50 and np.isfinite(z['exp']).all()
    assert last.read_bytes() == b'the good old output'
    assert not leftovers(tmp_path)


def test_cut_mp4_is_refused(tmp_path):
    """ffmpeg exits 0 after EFBIG while writing the trailer (measured with ffmpeg 5.1: limits of 1-10
    kB on this clip): the cut file must be refused, not renamed into place."""
    coef_file(tmp_path / 'c.npz', 50)
    dest = tmp_path / 'o.mp4'
    r = run(MESH, '-f', FLAME, '-c', tmp_path / 'c.npz', '--video', dest, '--size', '64x64', limit=5000)
    line = one_line_failure(r, str(dest), 'incomplete file')
    assert '.tmp-' not in line, line
    assert not dest.exists() and not leftovers(tmp_path)
    r = run(MESH, '-f', FLAME, '-c', tmp_path / 'c.npz', '--video', dest, '--size', '64x64')
    assert r.returncode == 0, r.stderr
    assert dest.stat().st_size > 5000
