"""dpt-stream: the stream API behind a shell pipe. Frames equal dpt-generate --no-context-audio-feat
bit for bit (JSON floats written with 9 significant digits round-trip float32), whatever the input
path (file, s16le or f32le on stdin); EOF mid-sample, NaN samples, Ctrl-C and bad options."""
import json
import signal
import subprocess
import time

import numpy as np
import pytest

import helpers

STREAM = str(helpers.BUILD / 'dpt-stream')
GEN = str(helpers.BUILD / 'dpt-generate')
MODEL = str(helpers.ROOT / 'weights' / 'demo-tiny.dpt')
SHAPE = str(helpers.ROOT / 'examples' / 'data' / 'shape.npy')
BASE = ['-m', MODEL, '-c', SHAPE, '--cfg-cond', 'audio', '--seed', '4']


def speech16k(tmp_path, seconds=9.3):
    """A 16 kHz float32 clip (a few windows of the demo model, the last one padded) and its WAV."""
    import soundfile
    t = np.arange(int(16000 * seconds)) / 16000
    rng = np.random.default_rng(1)
    x = (0.3 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 1.3 * t) + 0.02 * rng.standard_normal(t.size))
    x = x.astype(np.float32)
    wav = tmp_path / 'speech.wav'
    soundfile.write(str(wav), x, 16000, subtype='FLOAT')
    return x, wav


def frames(text):
    rows = [json.loads(line) for line in text.splitlines()]
    assert [r['frame'] for r in rows] == list(range(len(rows)))
    return (np.array([r['exp'] for r in rows], np.float32).reshape(-1, 50),
            np.array([r['pose'] for r in rows], np.float32).reshape(-1, 6), rows)


def offline(tmp_path, wav):
    out = tmp_path / 'offline.npz'
    r = subprocess.run([GEN, *BASE, '-a', wav, '--no-context-audio-feat', '-o', out, '-q'],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    z = np.load(out)
    return z['exp'], z['pose']


def test_file_equals_offline_no_context(tmp_path):
    x, wav = speech16k(tmp_path)
    r = subprocess.run([STREAM, *BASE, '-a', wav], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    exp, pose, rows = frames(r.stdout)
    e_ref, p_ref = offline(tmp_path, wav)
    assert exp.shape == e_ref.shape
    np.testing.assert_array_equal(exp, e_ref)
    np.testing.assert_array_equal(pose, p_ref)
    assert rows[25]['time'] == pytest.approx(1.0)
    assert 'real-time factor' in r.stderr and 'latency' in r.stderr


@pytest.mark.parametrize('fmt', ['f32le', 's16le'])
def test_stdin_pipe_equals_file(fmt, tmp_path):
    """The same samples through stdin (fixed normalisation on both sides) give the same frames."""
    import soundfile
    x, _ = speech16k(tmp_path)
    if fmt == 's16le':
        pcm = np.clip(np.round(x * 32768), -32768, 32767).astype('<i2')
        x = pcm.astype(np.float32) / 32768
    else:
        pcm = x.astype('<f4')
    wav = tmp_path / 'same.wav'
    soundfile.write(str(wav), x, 16000, subtype='FLOAT')
    norm = ['--norm', 'fixed:0.001,0.2']
    r1 = subprocess.run([STREAM, *BASE, *norm, '--format', fmt], input=pcm.tobytes(), capture_output=True)
    r2 = subprocess.run([STREAM, *BASE, *norm, '-a', wav], capture_output=True)
    assert r1.returncode == 0 and r2.returncode == 0, (r1.stderr, r2.stderr)
    e1, p1, _ = frames(r1.stdout.decode())
    e2, p2, _ = frames(r2.stdout.decode())
    assert len(e1) == int(len(x) / 16000 * 25)
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_array_equal(p1, p2)


def test_stdin_ends_mid_sample(tmp_path):
    x, _ = speech16k(tmp_path, 2.0)
    data = x.astype('<f4').tobytes() + b'\x01\x02'
    r = subprocess.run([STREAM, *BASE, '--format', 'f32le'], input=data, capture_output=True, text=False)
    assert r.returncode == 0, r.stderr
    assert b'not a whole sample' in r.stderr
    assert len(frames(r.stdout.decode())[0]) == 50


def test_nan_sample_keeps_frames_already_written(tmp_path):
    x, _ = speech16k(tmp_path, 9.0)
    x[16000 * 8] = np.nan                      # after the first two windows (4 s each)
    r = subprocess.run([STREAM, *BASE, '--format', 'f32le'], input=x.astype('<f4').tobytes(),
                       capture_output=True)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.count('\n') == 1 and 'NaN' in err
    assert len(frames(r.stdout.decode())[0]) == 200


def test_ctrl_c_flushes_the_last_frames(tmp_path):
    import threading
    x, _ = speech16k(tmp_path, 6.0)
    p = subprocess.Popen([STREAM, *BASE, '--format', 'f32le'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out = []
    reader = threading.Thread(target=lambda: out.append(p.stdout.read()))   # stdout never fills up
    reader.start()
    p.stdin.write(x.astype('<f4').tobytes())
    p.stdin.flush()
    time.sleep(1.5)                            # stdin stays open: the program waits for more audio
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
        reader.join(timeout=10)
        p.stdin.close()
    err = p.stderr.read()
    assert p.returncode == 0, err
    assert b'interrupted' in err
    assert len(frames(out[0].decode())[0]) == 150  # 6 s: one window and the padded rest


@pytest.mark.parametrize('args,words', [
    (['--norm', 'clip'], ['--norm clip', '-a']),
    (['--norm', 'fixed:1'], ['fixed:MEAN,STD']),
    (['--format', 's24le'], ['--format']),
    (['--chunk-frames', '25'], ['chunk_frames']),
    (['--realtime'], ['--realtime']),
])
def test_bad_options(args, words, tmp_path):
    r = subprocess.run([STREAM, *BASE, *args], input=b'', capture_output=True, text=False)
    assert r.returncode in (1, 2)
    err = r.stderr.decode()
    assert err.count('\n') == 1, err
    for w in words:
        assert w in err


def test_chunk_mode_over_a_pipe(tmp_path):
    """Low-latency mode behind a pipe: the first chunk's frames come out while stdin is still open
    (after 5 frames of audio, not a 20-frame window), then every frame of the clip, in order, as
    many as offline gives, the same as the file path."""
    import select
    x, wav = speech16k(tmp_path, 3.3)
    pcm = x.astype('<f4')
    args = [STREAM, *BASE, '--norm', 'fixed:0.001,0.2', '--chunk-frames', '5', '-q']
    p = subprocess.Popen([*args, '--format', 'f32le'], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write(pcm[:6 * 640].tobytes())   # 6 frames of audio: one chunk of 5 is complete
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], 60)
        assert ready, 'no frame 60 s after the first chunk of audio'
        first = p.stdout.readline()
        assert json.loads(first)['frame'] == 0
        p.stdin.write(pcm[6 * 640:].tobytes())
        p.stdin.close()
        rest, err = p.stdout.read(), p.stderr.read()
        assert p.wait(60) == 0, err
    finally:
        if p.poll() is None:
            p.kill()
    exp, pose, rows = frames(first.decode() + rest.decode())
    assert len(rows) == int(len(x) / 16000 * 25)
    r = subprocess.run([*args, '-a', wav], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    e2, p2, _ = frames(r.stdout)
    np.testing.assert_array_equal(exp, e2)
    np.testing.assert_array_equal(pose, p2)


@pytest.mark.parametrize('opt,value,msg', [('--chunk-frames', '21', 'chunk_frames: 21 out of range'),
                                           ('--context-frames', '5000', 'context-frames')])
def test_chunk_options_out_of_range(opt, value, msg, tmp_path):
    _, wav = speech16k(tmp_path, 1.0)
    r = subprocess.run([STREAM, *BASE, '-a', wav, opt, value], capture_output=True, text=True)
    assert r.returncode != 0 and r.stdout == ''
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
