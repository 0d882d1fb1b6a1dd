#!/usr/bin/env python3
"""How far dpt-stream's chunk modes are from offline generation, on recordings of speech.

For each audio file: offline dpt-generate (whole-clip audio features, upstream's default) and
offline --no-context-audio-feat, then dpt-stream -a FILE --chunk-frames k (k = 25, 50, 100 by
default; --norm clip, so that the audio normalisation is the offline one). Every run uses the same
seed and strided DDIM with eta 0 (--steps, default 25): the only draw that reaches the output is
x_T, which every mode draws first, so the distances measure the chunking, not different noise.
Prints per file and mode: mean and max |Δ| of exp (50) and pose (6: head and jaw rotation), and the
correlation of the jaw-opening trace (pose[:, 3]).

The figures in README were made with upstream's demo recordings (DiffPoseTalk's
demo/input/audio/*.wav|flac; not part of this repository) on the official-size random-weight
checkpoint of the tests: a faithful computation, not a judgement of motion quality.

usage: tools/stream_distance.py [-m MODEL.dpt] [--steps N] [--chunks 25,50,100] [--context-frames N]
                                [--json OUT] AUDIO...
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / 'tests' / 'python'), str(ROOT / 'tools'), str(ROOT / 'tools' / 'reference')]
os.environ.setdefault('DPT_BUILD', 'build')

import numpy as np  # noqa: E402

import helpers  # noqa: E402


def official_model():
    import test_dpt_info as tdi
    return tdi.cached_export(helpers.cached_checkpoints('official', 0), 'f32')


def stream_frames(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f'{cmd[0]}: {p.stderr.strip()}')
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    return (np.array([r['exp'] for r in rows], np.float32).reshape(-1, 50),
            np.array([r['pose'] for r in rows], np.float32).reshape(-1, 6))


def distance(a, b):
    (ea, pa), (eb, pb) = a, b
    n = min(len(ea), len(eb))
    ea, pa, eb, pb = ea[:n], pa[:n], eb[:n], pb[:n]
    jaw = float(np.corrcoef(pa[:, 3], pb[:, 3])[0, 1]) if n > 2 else float('nan')
    return dict(frames=n, exp_mean=float(np.abs(ea - eb).mean()), exp_max=float(np.abs(ea - eb).max()),
                pose_mean=float(np.abs(pa - pb).mean()), pose_max=float(np.abs(pa - pb).max()), jaw_corr=jaw,
                exp_scale=float(np.abs(eb).mean()), jaw_scale=float(pb[:, 3].std()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('audio', nargs='+')
    ap.add_argument('-m', '--model')
    ap.add_argument('--steps', type=int, default=25)
    ap.add_argument('--chunks', default='25,50,100')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--context-frames', type=int, help="dpt-stream's left audio context (default: its own)")
    ap.add_argument('--json')
    args = ap.parse_args()
    model = args.model or official_model()
    d_style = helpers.model_d_style(model)
    results = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = pathlib.Path(td)
        shape = tmp / 'shape.npy'
        np.save(shape, np.zeros(100, np.float32))
        common = ['-m', str(model), '-c', str(shape), '--steps', str(args.steps), '--threads', str(args.threads),
                  '--seed', '0', '-q']
        if d_style:
            np.save(tmp / 'style.npy', (0.5 * np.random.default_rng(1).standard_normal(d_style)).astype(np.float32))
            common += ['-s', str(tmp / 'style.npy')]
        for path in args.audio:
            name = pathlib.Path(path).name
            off = {}
            for mode, extra in (('offline', []), ('offline_no_context', ['--no-context-audio-feat'])):
                out = tmp / f'{mode}.npz'
                subprocess.run([str(helpers.BUILD / 'dpt-generate'), *common, '-a', path, '-o', str(out), *extra],
                               check=True)
                z = np.load(out)
                off[mode] = (z['exp'][0] if z['exp'].ndim == 3 else z['exp'], z['pose'][0] if z['pose'].ndim == 3
                             else z['pose'])
            results[name] = {'no_context_vs_offline': distance(off['offline_no_context'], off['offline'])}
            for k in (int(c) for c in args.chunks.split(',')):
                ctx = [] if args.context_frames is None else ['--context-frames', str(args.context_frames)]
                s = stream_frames([str(helpers.BUILD / 'dpt-stream'), *common, '-a', path, '--chunk-frames', str(k),
                                   *ctx])
                results[name][f'chunk{k}_vs_offline'] = distance(s, off['offline'])
                results[name][f'chunk{k}_vs_no_context'] = distance(s, off['offline_no_context'])
            for key, d in results[name].items():
                print(f'{name:24s} {key:24s} frames {d["frames"]:4d}  exp |d| mean {d["exp_mean"]:.4f} max '
                      f'{d["exp_max"]:.3f} (mean |exp| {d["exp_scale"]:.3f})  pose |d| mean {d["pose_mean"]:.4f} '
                      f'max {d["pose_max"]:.3f}  jaw corr {d["jaw_corr"]:.3f}', flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + '\n')


if __name__ == '__main__':
    main()
