#!/usr/bin/env python3
"""Write the fuzz seed corpora under tests/fuzz/corpus/<target>/ (committed; small).

    .venv/bin/python tests/fuzz/make_corpus.py

Seeds are small valid (and a few near-valid) inputs of each format, so that the fuzzers start
past the magic numbers: .dpt containers, a FLAME file of 8 vertices, .npy/.npz of the layouts
the programs read, short audio files in the containers libsndfile decodes, batch files and
option lists, PNG and JPEG textures. Regenerating gives the same bytes (fixed seeds), except for the audio encoders'
own metadata."""

import io
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / 'tests' / 'fuzz' / 'corpus'
sys.path.insert(0, str(ROOT / 'tools'))
sys.path.insert(0, str(ROOT / 'tools' / 'reference'))
import export  # noqa: E402
import make_flame  # noqa: E402


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def dpt_bytes(meta, tensors):
    with tempfile.TemporaryDirectory() as t:
        p = pathlib.Path(t) / 'x.dpt'
        export.write_dpt(p, meta, tensors)
        return p.read_bytes()


def npz_wrap_seeds():
    """Odd first byte: the rest is one .npy that fuzz_npz.c wraps in a zip (1: stored, 3: deflated)."""
    def npy(a):
        b = io.BytesIO()
        np.save(b, a)
        return b.getvalue()
    put('npz', 'wrap-stored-f64', b'\x01' + npy(np.arange(6, dtype=np.float64).reshape(2, 3) / 7))
    put('npz', 'wrap-deflated-f32', b'\x03' + npy(np.linspace(-1, 1, 4, dtype=np.float32)))
    put('npz', 'wrap-stored-0d', b'\x01' + npy(np.float32(2.0)))


def image_seeds():
    """PNG and JPEG seeds of the kinds a texture can be: RGB, grey, grey+alpha, RGBA, palette,
    16-bit, interlaced; baseline, progressive and grey JPEG."""
    from PIL import Image
    rng = np.random.default_rng(3)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8), 'RGB')
    for name, im, kw in (('rgb.png', rgb, {}), ('grey.png', rgb.convert('L'), {}),
                         ('grey-alpha.png', rgb.convert('LA'), {}), ('rgba.png', rgb.convert('RGBA'), {}),
                         ('palette.png', rgb.convert('P'), {}), ('interlaced.png', rgb, {'interlace': 1}),
                         ('grey16.png', Image.fromarray((np.arange(30).reshape(6, 5) * 2000).astype(np.uint16)), {})):
        b = io.BytesIO()
        im.save(b, 'PNG', **kw)
        put('image', name, b.getvalue())
    for name, im, kw in (('rgb.jpg', rgb, {}), ('progressive.jpg', rgb, {'progressive': True}),
                         ('grey.jpg', rgb.convert('L'), {})):
        b = io.BytesIO()
        im.save(b, 'JPEG', quality=90, **kw)
        put('image', name, b.getvalue())


def main():
    rng = np.random.default_rng(0)
    # .dpt: containers with every value type and both dtypes (not models: the loader's container
    # checks, then the model checks refusing them)
    put('dpt', 'container.dpt', dpt_bytes(
        {'kind': 'model', 'format_version': 1, 'audio_model': 'hubert', 'feature_dim': 8,
         'fps': 25.0, 'n_layers': '1,2,3'},
        [('a.weight', rng.standard_normal((4, 3)).astype(np.float32)),
         ('b', rng.standard_normal((2,)).astype(np.float16)),
         ('c.bias', rng.standard_normal((1, 2, 2, 3)).astype(np.float32))]))
    put('dpt', 'empty.dpt', dpt_bytes({}, []))
    # FLAME: a tiny synthetic model in the official pickle form, converted as users do
    make_flame.SIZES['fuzz'] = dict(n_vertices=8, n_faces=6)
    with tempfile.TemporaryDirectory() as t:
        t = pathlib.Path(t)
        arrays = make_flame.flame_arrays('fuzz', seed=1)
        make_flame.write_flame_pickle(t / 'f.pkl', arrays, '2020')
        make_flame.write_uv(t / 'uv.npz', arrays['f'].shape[0], seed=1)
        for name, extra in (('flame.dpt', []), ('flame-uv.dpt', ['--uv', str(t / 'uv.npz')])):
            subprocess.run([sys.executable, str(ROOT / 'tools' / 'export.py'), '--flame', str(t / 'f.pkl'),
                            *extra, '-o', str(t / name)], check=True, stdout=subprocess.DEVNULL)
            put('flame', name, (t / name).read_bytes())
    # .npy
    def npy(a, version=None):
        b = io.BytesIO()
        if version:
            np.lib.format.write_array(b, a, version=version)
        else:
            np.save(b, a)
        return b.getvalue()
    put('npy', 'f32-1d.npy', npy(rng.standard_normal(100).astype(np.float32)))
    put('npy', 'f64-2d.npy', npy(rng.standard_normal((3, 56))))
    put('npy', 'f32-0d.npy', npy(np.float32(1.5)))
    put('npy', 'f32-4d-v2.npy', npy(rng.standard_normal((1, 2, 2, 3)).astype(np.float32), (2, 0)))
    put('npy', 'f32-v3.npy', npy(rng.standard_normal((2, 2)).astype(np.float32), (3, 0)))
    put('npy', 'fortran.npy', npy(np.asfortranarray(rng.standard_normal((2, 3)).astype(np.float32))))
    put('npy', 'int32.npy', npy(np.arange(6, dtype=np.int32)))
    put('npy', 'f32-big-endian.npy', npy(np.arange(4, dtype='>f4')))
    # .npz: as dpt-generate writes and upstream's --save_coef does (stored and deflated)
    coef = {'exp': rng.standard_normal((2, 50)).astype(np.float32),
            'pose': rng.standard_normal((2, 6)).astype(np.float32),
            'shape': rng.standard_normal((2, 100)).astype(np.float32)}
    for name, fn in (('stored.npz', np.savez), ('deflated.npz', np.savez_compressed)):
        b = io.BytesIO()
        fn(b, **coef)
        put('npz', name, b.getvalue())
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w') as z:
        z.writestr('a.npy', npy(np.zeros(3, np.float64)))
        z.writestr('notes.txt', 'x')
    put('npz', 'mixed.npz', b.getvalue())
    npz_wrap_seeds()
    # audio: short clips in the containers libsndfile decodes
    import soundfile as sf
    t = np.arange(800) / 8000.0
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    for name, fmt, sub, rate, ch in (('pcm16.wav', 'WAV', 'PCM_16', 8000, 1),
                                     ('float-stereo.wav', 'WAV', 'FLOAT', 22050, 2),
                                     ('pcm24.flac', 'FLAC', 'PCM_24', 16000, 1),
                                     ('vorbis.ogg', 'OGG', 'VORBIS', 16000, 1),
                                     ('pcm16.aiff', 'AIFF', 'PCM_16', 44100, 1),
                                     ('ulaw.au', 'AU', 'ULAW', 8000, 1)):
        x = tone if ch == 1 else np.stack([tone, -tone], 1)
        b = io.BytesIO()
        sf.write(b, x, rate, format=fmt, subtype=sub)
        put('audio', name, b.getvalue())
    # batch jobs
    put('batch', 'jobs.tsv', b'# audio\tshape\tstyle\toutput\tplot\n'
        b'a.wav\tshape.npy\t-\tout/a.npz\n\nb.flac\tc.npz\tstyle.npy\tout/b.npz\tout/b.svg\r\n'
        b'bad line without tabs\n  c.wav \t s.npy\t-\t o.npz \n')
    # option lists (one argument per line)
    put('args', 'long.txt', b'-m\nx.dpt\n--n-repetitions=3\n--scale_audio\n1.15\n--seed\n18446744073709551615\n'
        b'--size\n640x480\n--format\nnpz\n--no-head\nfile')
    put('args', 'short.txt', b'-n\n0x10\n-sa\n-1e-3\n--steps\n25\n-f\njson\n--\n-h')
    put('args', 'bad.txt', b'--size\n0x0\n-n\n99999999999999999999\n--sa\nnan\n--model')
    image_seeds()


if __name__ == '__main__':
    main()
