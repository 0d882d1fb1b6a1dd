"""Audio encoder (spec §3–4): C (build/tests/harness_hubert) against the PyTorch reference of upstream's
demo path for the whole clip (normalise, window-pad, extract_audio_feature with transformers'
HubertModel / Wav2Vec2Model).

Criterion (issue 3): audio features within 1e-4 × max|ref| (max absolute difference), official-size
random weights, clips of 1.00 s, 4.00 s (one window), 9.37 s (a padded last window) and 31 s, for both
hubert-base and wav2vec2-base. Tiny models cover the edge cases quickly: n_pad ≤ 0 (the conv output then
has 2·L_tot + 1 frames and is really resampled), a length that is not a multiple of 640 samples,
replicate padding, silence (the 1e-5 epsilon path), a long clip whose attention runs in several query
blocks and whose conv stack runs in many chunks.

Run with `pytest -s` to see the measured errors; they are also in every assertion message.
"""

import numpy as np
import pytest

import helpers_hubert as hh

TOL = 1e-4
AUDIO_MODELS = ['hubert', 'wav2vec2']
# make_checkpoints draws every tensor from (seed, name) and both encoders share their key names, so the
# wav2vec2 set uses another seed to get weights of its own
SEED = {'hubert': 0, 'wav2vec2': 1}

# name → number of 16 kHz samples
OFFICIAL_CLIPS = {'1.00s': 16000, '4.00s': 64000, '9.37s': 149920, '31s': 496000}
STAGE_CLIP = '9.37s'          # official clip whose intermediate stages are compared too

# tiny models: n_motions 20 → one window = 12800 samples
TINY_CLIPS = {
    '1.00s': 16000,
    'not_multiple_of_640': 7777,     # one window, 5023 zero samples appended
    'n_pad_le_0': 26100,             # clip_len 40 = 2 windows, n_pad = −500: no padding, C = 81 → 80
    'n_pad_eq_0': 25600,             # exactly two windows
    'padded_last_window': 149920,    # 9.37 s, 12 windows, conv stack in several chunks
}

pytestmark = pytest.mark.skipif(not hh.HARNESS.exists(), reason=f'{hh.HARNESS} not built')


def report(case, errs):
    line = f'{case}: ' + ', '.join(f'{k} {v:.2e}' for k, v in errs.items())
    print('\n' + line)
    return line


def compare_stages(got, ref, case, names):
    errs = {k: hh.max_rel_err(got[k], ref[k]) for k in names}
    line = report(case, errs)
    bad = {k: v for k, v in errs.items() if not v <= TOL}
    assert not bad, f'{line} (limit {TOL:g} × max|ref|)'
    return errs


# ------------------------------------------------------------------------------------------------
# Official size

@pytest.mark.parametrize('name', list(OFFICIAL_CLIPS))
@pytest.mark.parametrize('audio_model', AUDIO_MODELS)
def test_official_audio_features(audio_model, name, tmp_path):
    model, ck = hh.cached_model('official', audio_model, seed=SEED[audio_model])
    x = hh.clip(OFFICIAL_CLIPS[name], seed=len(name))
    stages = name == STAGE_CLIP
    ref = hh.reference(ck['denoiser'], x, stages=stages)
    got, _ = hh.run_harness(model, x, tmp_path, threads=2, stages=stages)
    assert got['audio_feat'].shape == ref['audio_feat'].shape
    names = ['audio_feat']
    if stages:
        names = ['padded', 'pad_audio', 'conv', 'feature_projection', 'encoder_ln', 'last_hidden_state',
                 'audio_feat']
    compare_stages(got, ref, f'official {audio_model} {name} (frames {got["audio_feat"].shape[0]})', names)


# ------------------------------------------------------------------------------------------------
# Tiny models

@pytest.mark.parametrize('name', list(TINY_CLIPS))
@pytest.mark.parametrize('audio_model', AUDIO_MODELS)
def test_tiny_all_stages(audio_model, name, tmp_path):
    model, ck = hh.cached_model('tiny', audio_model, seed=SEED[audio_model])
    x = hh.clip(TINY_CLIPS[name], seed=3)
    ref = hh.reference(ck['denoiser'], x)
    got, _ = hh.run_harness(model, x, tmp_path, threads=2)
    for k in hh.STAGES:
        assert got[k].shape == ref[k].shape, (k, got[k].shape, ref[k].shape)
    compare_stages(got, ref, f'tiny {audio_model} {name}', ['padded'] + list(hh.STAGES))


def test_tiny_n_pad_le_0_really_resamples(tmp_path):
    """n_pad ≤ 0 leaves extra samples: the conv output has one frame more than 2·L_tot."""
    model, ck = hh.cached_model('tiny', 'hubert')
    got, _ = hh.run_harness(model, hh.clip(TINY_CLIPS['n_pad_le_0'], seed=3), tmp_path)
    L = got['audio_feat'].shape[0]
    assert got['conv'].shape[0] == 2 * L + 1
    assert got['extract_features'].shape[0] == 2 * L


def test_tiny_replicate_padding(tmp_path):
    model, ck = hh.cached_model('tiny', 'hubert', pad_mode='replicate')
    x = hh.clip(TINY_CLIPS['not_multiple_of_640'], seed=5)
    ref = hh.reference(ck['denoiser'], x)
    got, _ = hh.run_harness(model, x, tmp_path)
    compare_stages(got, ref, 'tiny hubert replicate', ['padded', 'pad_audio', 'audio_feat'])


@pytest.mark.parametrize('audio_model', AUDIO_MODELS)
def test_tiny_silence_is_finite(audio_model, tmp_path):
    model, ck = hh.cached_model('tiny', audio_model, seed=SEED[audio_model])
    x = hh.clip(20000, kind='zeros')
    got, _ = hh.run_harness(model, x, tmp_path, stages=False)
    assert np.isfinite(got['audio_feat']).all()
    ref = hh.reference(ck['denoiser'], x)
    compare_stages(got, ref, f'tiny {audio_model} silence', ['audio_feat'])


def test_tiny_long_clip_blockwise_attention(tmp_path):
    """61 s: 3050 tokens, so the scores are computed in several query blocks (and many conv chunks)."""
    model, ck = hh.cached_model('tiny', 'wav2vec2', seed=SEED['wav2vec2'])
    x = hh.clip(61 * 16000, seed=7)
    ref = hh.reference(ck['denoiser'], x, stages=False)
    got, _ = hh.run_harness(model, x, tmp_path, stages=False)
    compare_stages(got, ref, 'tiny wav2vec2 61s', ['audio_feat'])


def test_public_api_equals_stage_path(tmp_path):
    """dpt_model_encode_audio (harness --no-stages) gives the same features as prepare + encode_ex, and the
    thread count changes nothing beyond BLAS summation order."""
    model, _ = hh.cached_model('tiny', 'hubert')
    x = hh.clip(40000, seed=11)
    a, _ = hh.run_harness(model, x, tmp_path / 'a', threads=2, stages=False)
    b, _ = hh.run_harness(model, x, tmp_path / 'b', threads=2, stages=True)
    c, _ = hh.run_harness(model, x, tmp_path / 'c', threads=1, stages=False)
    np.testing.assert_array_equal(a['audio_feat'], b['audio_feat'])
    assert hh.max_rel_err(c['audio_feat'], a['audio_feat']) <= 1e-6


def test_too_short_and_bad_input(tmp_path):
    model, _ = hh.cached_model('tiny', 'hubert')
    for name, x in [('empty', np.zeros(0, np.float32)), ('nan', np.full(16000, np.nan, np.float32))]:
        with pytest.raises(RuntimeError) as e:
            hh.run_harness(model, x, tmp_path / name, stages=False)
        assert 'harness_hubert failed (1)' in str(e.value), str(e.value)


def test_official_threads_same_bits(tmp_path):
    """At official size (where columns, channels, rows and heads really are split over the threads)
    the features at 1, 2 and 3 threads are the same bits."""
    model, _ = hh.cached_model('official', 'hubert', seed=SEED['hubert'])
    x = hh.clip(3 * 16000 + 123, seed=5)
    got = [hh.run_harness(model, x, tmp_path / str(t), threads=t, stages=False)[0]['audio_feat']
           for t in (1, 2, 3)]
    for t, f in zip((2, 3), got[1:]):
        assert f.tobytes() == got[0].tobytes(), f'1 vs {t} threads: features differ'


# bf16 / int8 audio features against the float32 reference, official size: every matrix product of
# the encoder in the reduced precision (linear layers and, prepacked, conv layers 1-6; conv layer 0,
# the normalisations, attention scores and the positional conv stay float32). Measured 2026-12-04
# on 10 s of synthetic audio: bf16 6.0e-3, int8 2.1e-2 of max|ref| (bf16 linears only: 4.3e-3).
LOW_PRECISION_TOL = {'bf16': 1e-2, 'int8': 4e-2}


@pytest.mark.parametrize('precision', ['bf16', 'int8'])
def test_official_low_precision_features(precision, tmp_path):
    """Features at bf16 / int8 are within the documented bound of the float32 reference, not equal to
    the float32 features, and the same bits at 1 and 2 threads."""
    model, ck = hh.cached_model('official', 'hubert', seed=SEED['hubert'])
    x = hh.clip(OFFICIAL_CLIPS[STAGE_CLIP], seed=len(STAGE_CLIP))
    ref = hh.reference(ck['denoiser'], x, stages=False)
    got = [hh.run_harness(model, x, tmp_path / f'{precision}{t}', threads=t, stages=False,
                          extra=('--precision', precision))[0]['audio_feat'] for t in (1, 2)]
    f32 = hh.run_harness(model, x, tmp_path / 'f32', threads=2, stages=False)[0]['audio_feat']
    err = hh.max_rel_err(got[0], ref['audio_feat'])
    report(f'official hubert {precision}', {'audio_feat': err})
    assert err <= LOW_PRECISION_TOL[precision], f'{precision}: {err:.2e} × max|ref|'
    assert not np.array_equal(got[0], f32)
    assert got[0].tobytes() == got[1].tobytes(), f'{precision}: 1 vs 2 threads differ'
