"""Reference outputs for the package's parity test, made by the repository's own PyTorch reference
(tests/python helpers, tools/reference/dpt_ref). Runs under the project's .venv (torch, transformers),
not under the package's test venv:  .venv/bin/python python/tests/reference_case.py OUT.npz [tiny|official]
(official: official sizes with n_diff_steps = 20, as tests/python's official sampler cases)

Writes OUT.npz: model (path of the tiny model's .dpt), samples (16 kHz clip, 3 windows, the last
padded), shape, style, feats (the reference's audio features), exp/pose (Demo.infer_coeffs with
n_repetitions 2 from those features) and draws (the standard-normal draws it consumed, in order).
Everything is cached under build/testdata by the helpers."""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests' / 'python'))

import numpy as np  # noqa: E402

import helpers_hubert  # noqa: E402
import helpers_sampler as hs  # noqa: E402


def main(out, size='tiny'):
    model, ck = hs.cached_model(size, **({'n_diff_steps': 20} if size == 'official' else {}))
    lm = hs.ref_model(ck)
    samples = helpers_hubert.clip(int(640 * 2.5 * lm.L) + 123, seed=4)       # 3 windows, the last padded
    feats = helpers_hubert.reference(ck['denoiser'], samples, stages=False)['audio_feat']
    shape = np.random.default_rng(2).normal(0, 1, 100).astype(np.float32)
    style = np.random.default_rng(3).normal(0, 0.5, lm.dp - 100).astype(np.float32)
    exp_r, pose_r, draws = hs.ref_generate(ck, feats, len(samples), shape, style, N=2)
    np.savez(out, model=str(model), samples=samples, shape=shape, style=style, feats=np.asarray(feats, np.float32),
             exp=exp_r, pose=pose_r, draws=np.load(draws))


if __name__ == '__main__':
    main(*sys.argv[1:])
