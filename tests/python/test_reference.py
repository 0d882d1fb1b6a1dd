"""Self-tests of the PyTorch reference (tools/reference/dpt_ref, run_reference.py), independent of the C
library: spec reference numbers, primitive identities, agreement with transformers' own forward,
draw recording/replay, legacy-args and weight-norm-spelling twins, key verification, CLI files.

Tiny checkpoints throughout; one official-size check (audio encoder against transformers' forward)."""

import argparse
import json
import math
import subprocess

import numpy as np
import pytest
import torch

import helpers
import dpt_ref
from dpt_ref import sampler as smp

RUN = helpers.ROOT / 'tools' / 'reference' / 'run_reference.py'


def run(*args, check=True):
    """run_reference.py main() in this process (the CLI's parsing and files without the interpreter
    start-up); returns an object with returncode and stderr."""
    import contextlib
    import io
    import types
    import run_reference
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_reference.main([str(a) for a in args])
    r = types.SimpleNamespace(returncode=code, stderr=err.getvalue())
    if check and r.returncode != 0:
        raise AssertionError(f'run_reference {args[0]} failed ({r.returncode}): {r.stderr.strip()}')
    return r


def run_process(*args):
    return subprocess.run([helpers.PYTHON, str(RUN)] + [str(a) for a in args], capture_output=True, text=True)


def clip(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000.0
    x = 0.2 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * rng.standard_normal(n) + 0.05 * np.sin(2 * np.pi * 220 * t)
    return (x + 0.01).astype(np.float32)


@pytest.fixture(scope='module')
def tiny():
    ck = helpers.cached_checkpoints('tiny', 0)
    model, report, args = dpt_ref.load_model(ck['denoiser'])
    assert report.ok, report.as_dict()
    return ck, model, args


@pytest.fixture(scope='module')
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp('ref-inputs')
    rng = np.random.default_rng(5)
    np.save(d / 'samples.npy', clip(16000 * 2 + 4321, 1))            # 2.27 s: 3 tiny windows, padded last
    np.save(d / 'shape.npy', rng.standard_normal(100).astype(np.float32))
    np.savez(d / 'motion.npz', exp=rng.standard_normal((60, 50)).astype(np.float32),
             pose=(0.2 * rng.standard_normal((60, 6))).astype(np.float32))
    return d


# ------------------------------------------------------------------------------------------------
# Schedules [§7.1]

def test_cosine_schedule_reference_values():
    s = dpt_ref.schedule('cosine', 500)
    assert all(v.dtype == torch.float32 and v.shape == (501,) for v in s.values())
    b, ab, sg = s['betas'].numpy(), s['alpha_bars'].numpy(), s['sigmas_inflex'].numpy()
    assert b[0] == 0 and ab[0] == 1 and sg[0] == 0
    assert b[1] == np.float32(1e-4) and b[500] == np.float32(0.999)              # clipped
    for got, want in ((b[2], 1.06811523e-4), (ab[250], 0.493837416), (ab[500], 9.71420544e-9),
                      (sg[2], 7.18687847e-3), (sg[500], 0.999495029)):
        assert abs(got - want) <= 2 * np.spacing(np.float32(want)), (got, want)
    np.testing.assert_array_equal(s['sigmas_flex'].numpy(), np.sqrt(b))


@pytest.mark.parametrize('kind', ['linear', 'quadratic', 'sigmoid', 'cosine'])
def test_schedules_consistent(kind):
    s32 = dpt_ref.schedule(kind, 50)
    np.testing.assert_array_equal(s32['alphas'].numpy(), np.float32(1) - s32['betas'].numpy())
    s = {k: v.numpy().astype(np.float64) for k, v in s32.items()}
    b = s['betas']
    if kind == 'linear':
        np.testing.assert_allclose(b[[1, 50]], [1e-4, 0.02], rtol=1e-6)
    np.testing.assert_allclose(s['alpha_bars'], np.cumprod(1 - b), rtol=1e-5)
    ab = s['alpha_bars']
    np.testing.assert_allclose(s['sigmas_inflex'][1:], np.sqrt((1 - ab[:-1]) / (1 - ab[1:]) * b[1:]), rtol=1e-5)


@pytest.mark.parametrize('kind', ['linear', 'cosine'])
def test_schedule_equals_checkpoint_buffers(kind, tmp_path):
    """make_checkpoints stores dpt_ref.schedule's buffers; the demo uses the stored ones."""
    ck = helpers.cached_checkpoints('tiny', 0, diff_schedule=kind, n_diff_steps=37)
    sd = torch.load(str(ck['denoiser']), map_location='cpu')['model']
    mine = dpt_ref.schedule(kind, 37)
    for k, v in mine.items():
        assert torch.equal(v, sd['diffusion_sched.' + k]), k
    run('schedule', '--ckpt', ck['denoiser'], '-o', tmp_path / 'c')
    run('schedule', '--kind', kind, '--T', 37, '-o', tmp_path / 'k')
    for k in mine:
        np.testing.assert_array_equal(np.load(tmp_path / 'c' / f'{k}.npy'), np.load(tmp_path / 'k' / f'{k}.npy'))


# ------------------------------------------------------------------------------------------------
# Primitives [§2]

def test_quantile_rank_example():
    """q = 0.99 over 5400 values: float32 rank 5345.0102539, not 5345.01 (§2.10); the threshold clips
    every frame of the row to it (§7.4)."""
    L, dm, S = 100, 54, 110
    vals = torch.arange(L * dm, dtype=torch.float32).view(L, dm)
    R = torch.zeros(1, S, dm)
    R[0, -L:] = vals
    R[0, 0, 0] = -1e6                                            # a previous-frame value, clipped too
    out = smp.threshold(R, L, 1, (0.99, 0.0, 1e9))
    s = float(out.max())
    rank = np.float32(0.99) * np.float32(L * dm - 1)
    assert rank == np.float32(5345.0102539) and abs(s - 5345.0102539) < 1e-3
    assert float(out[0, 0, 0]) == -s
    assert float(smp.threshold(R, L, 1, (0.99, 1.0, 4.0)).abs().max()) == 4.0        # clamped into [1, 4]


def test_interpolation_identities():
    x = torch.randn(1, 7, 40)
    assert torch.equal(dpt_ref.interp_time(x, 40), x)
    half = dpt_ref.interp_time(x, 20)
    torch.testing.assert_close(half, 0.5 * (x[..., 0::2] + x[..., 1::2]), rtol=0, atol=1e-6)


def test_sinusoid_table_and_forward_quirk():
    d, n = 16, 600
    pe = dpt_ref.sinusoid_table(d, n)[0].numpy().astype(np.float64)
    p = np.arange(n)[:, None]
    k = np.arange(0, d, 2)
    div = np.exp(k.astype(np.float32) * np.float32(-math.log(10000.0) / d)).astype(np.float64)
    np.testing.assert_allclose(pe[:, 0::2], np.sin(p * div), atol=2e-5)
    np.testing.assert_allclose(pe[:, 1::2], np.cos(p * div), atol=2e-5)
    m = dpt_ref.common.SinusoidPE(d)
    x = torch.zeros(2, 37, d)
    y = m(x)
    assert torch.equal(y, m.pe[:, 37].expand(2, 37, d))        # row pe[37] on every position


def test_alignment_mask():
    m = dpt_ref.alignment_mask(6, 1)
    assert m.shape == (7, 6) and m.dtype == torch.bool
    assert not m[0].any()
    assert torch.equal(~m[1:], torch.eye(6, dtype=torch.bool))
    m3 = dpt_ref.alignment_mask(6, 3)
    assert not m3[1, :3].any() and m3[1, 3:].all() and not m3[4, 1:6].any() and m3[4, 0]
    assert dpt_ref.alignment_mask(6, 0) is None


def test_pad_audio_double_reflect():
    n = 640 * 3
    x = torch.arange(n, dtype=torch.float32)[None]
    y = dpt_ref.pad_audio(x)[0].numpy()
    r = 20
    assert len(y) == n + 4 * r
    want_left = list(range(0, r + 1)) + list(range(r - 1, 0, -1))        # x0 … x20, x19 … x1
    assert y[:2 * r].tolist() == want_left and y[2 * r] == 0
    want_right = list(range(n - 2, n - 2 - r, -1)) + list(range(n - r, n))
    assert y[-2 * r:].tolist() == want_right and y[-2 * r - 1] == n - 1
    odd = dpt_ref.pad_audio(torch.zeros(1, 640 * 3 + 2))           # side = 39: r = 19, p = 1
    assert odd.shape[1] == 640 * 3 + 2 + 4 * 19 + 2


def test_window_layout():
    lay = dpt_ref.window_layout(18560)
    assert lay['clip_len'] == 28                                   # division first, then ×fps
    lay = dpt_ref.window_layout(64000 * 2 + 100)                   # clip_len 200 → 2 windows, n_pad < 0
    assert lay['n_sub'] == 2 and lay['n_pad'] == -100 and lay['n_pad_frames'] == 0 and lay['n_out'] == 200
    lay = dpt_ref.window_layout(64000 * 2 + 700)                   # clip_len 201 → 3 windows
    assert lay['n_sub'] == 3 and lay['n_pad_frames'] == math.ceil((64000 * 3 - 128700) / 640)
    assert lay['n_out'] == 300 - lay['n_pad_frames']


def test_normalise_and_padding():
    y = clip(12345)
    norm, padded, lay = dpt_ref.prepare(y, 25, 20, 'replicate')
    t = torch.from_numpy(y)
    torch.testing.assert_close(norm, (t - t.mean()) / (t.std(unbiased=True) + 1e-5), rtol=0, atol=0)
    assert padded.shape[0] == 12800 and torch.all(padded[12345:] == norm[-1])
    _, padded0, _ = dpt_ref.prepare(y, 25, 20, 'zero')
    assert torch.all(padded0[12345:] == 0)


def test_legacy_args_rules():
    L = dpt_ref.LegacyArgs
    a = L(argparse.Namespace(feature_dim=8))
    assert a.align_mask_width == 0 and a.no_head_pose is True and a.no_use_learnable_pe is True
    assert a.use_indicator is None and a.style_enc_ckpt is None
    a = L(argparse.Namespace(use_alignment_mask=True, predict_head_pose=True, use_learnable_pe=True))
    assert a.align_mask_width == 1 and a.no_head_pose is False and a.no_use_learnable_pe is False
    a = L(argparse.Namespace(use_alignment_mask=False, align_mask_width=3))
    assert a.align_mask_width == 3


def test_cfg_combination_orders():
    """Incremental: consecutive differences; independent: upstream's in-place sequential form (§7.3)."""
    r = torch.randn(3, 2, 5, 4)
    R = r.reshape(6, 5, 4)
    sa, ss = 1.15, 3.0
    inc = smp.combine(R.clone(), 3, 5, 'incremental', [sa, ss])
    torch.testing.assert_close(inc, r[0] + sa * (r[1] - r[0]) + ss * (r[2] - r[1]))
    ind = smp.combine(R.clone(), 3, 5, 'independent', [sa, ss])
    g1 = r[0] + sa * (r[1] - r[0])
    torch.testing.assert_close(ind, g1 + ss * (r[2] - g1))
    assert not torch.allclose(ind, r[0] + sa * (r[1] - r[0]) + ss * (r[2] - r[0]))


def test_coef_dict_layout():
    stats = {f'{k}_{s}': torch.rand(n) + (0.5 if s == 'std' else 0) for k, n in (('exp', 50), ('pose', 6))
             for s in ('mean', 'std')}
    m = torch.randn(2, 7, 51)
    d = smp.coef_dict(m, stats, with_global_pose=False)
    assert torch.all(d['pose'][..., :3] == 0)
    torch.testing.assert_close(d['pose'][..., 3], m[..., 50] * stats['pose_std'][3] + stats['pose_mean'][3])
    assert torch.all(d['pose'][..., 4:] == stats['pose_mean'][4:])
    m = torch.randn(2, 7, 54)
    d = smp.coef_dict(m, stats, with_global_pose=True)
    torch.testing.assert_close(d['pose'][..., :4], m[..., 50:] * stats['pose_std'][:4] + stats['pose_mean'][:4])


# ------------------------------------------------------------------------------------------------
# Audio front end and encoder [§3, §4]

def test_load_audio_librosa_rules(tmp_path):
    import soundfile as sf
    import soxr
    rng = np.random.default_rng(0)
    pcm = (rng.standard_normal(16000) * 3000).astype(np.int16)
    sf.write(tmp_path / 'a.wav', pcm, 16000, subtype='PCM_16')
    y, sr = dpt_ref.load_audio(tmp_path / 'a.wav')
    assert sr == 16000 and y.dtype == np.float32
    np.testing.assert_array_equal(y, pcm.astype(np.float32) / 32768)
    st = (0.3 * rng.standard_normal((44100 + 17, 2))).astype(np.float32)
    sf.write(tmp_path / 'b.flac', st, 44100, subtype='PCM_24')
    dec, _ = sf.read(tmp_path / 'b.flac', dtype='float32')
    y, sr = dpt_ref.load_audio(tmp_path / 'b.flac')
    n = math.ceil((44100 + 17) * 16000 / 44100)
    assert sr == 44100 and y.dtype == np.float32 and len(y) == n
    want = soxr.resample(dec.mean(axis=1, dtype=np.float32), 44100, 16000, quality='HQ')
    want = np.pad(want, (0, max(0, n - len(want))))[:n]
    np.testing.assert_array_equal(y, want)
    run('frontend', '--audio', tmp_path / 'b.flac', '--fps', 25, '--n-motions', 20, '-o', tmp_path / 'fe')
    lay = json.loads((tmp_path / 'fe' / 'layout.json').read_text())
    assert lay['native_rate'] == 44100 and lay['n_samples'] == n
    np.testing.assert_array_equal(np.load(tmp_path / 'fe' / 'samples16k.npy'), y)
    assert np.load(tmp_path / 'fe' / 'padded.npy').shape == (lay['n_padded'],)
    bad = run_process('frontend', '--audio', tmp_path / 'nope.wav', '-o', tmp_path / 'x')   # the real program
    assert bad.returncode == 1 and 'no such file' in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_raw_samples_resampled_like_files(tmp_path):
    import soundfile as sf
    y = (0.3 * np.random.default_rng(1).standard_normal(22050)).astype(np.float32)
    sf.write(tmp_path / 'c.wav', y, 22050, subtype='FLOAT')
    np.save(tmp_path / 'c.npy', y)
    run('frontend', '--audio', tmp_path / 'c.wav', '-o', tmp_path / 'f1')
    run('frontend', '--samples', tmp_path / 'c.npy', '--rate', 22050, '-o', tmp_path / 'f2')
    for k in ('samples16k', 'normalised', 'padded'):
        np.testing.assert_array_equal(np.load(tmp_path / 'f1' / f'{k}.npy'), np.load(tmp_path / 'f2' / f'{k}.npy'))


@pytest.mark.parametrize('audio_model', ['hubert', 'wav2vec2'])
def test_hidden_state_equals_transformers_forward(audio_model):
    """With n = 640·L_tot + 80 after pad_audio the conv stack gives exactly 2·L_tot frames, the
    truncation and interpolation are identities, and upstream's forward is transformers' own."""
    ck = helpers.cached_checkpoints('tiny', 0, **({} if audio_model == 'hubert' else {'audio_model': 'wav2vec2'}))
    model, report, args = dpt_ref.load_model(ck['denoiser'])
    assert report.ok
    _, padded, lay = dpt_ref.prepare(clip(16000 + 777), args.fps, args.n_motions, args.pad_mode)
    st = {}
    feat = model.extract_audio_feature(padded[None], lay['L_tot'], stages=st)
    x = dpt_ref.pad_audio(padded[None])
    ref = model.audio_encoder(x).last_hidden_state[0]
    assert st['conv'].shape[1] == 2 * lay['L_tot']
    assert torch.equal(st['extract_features'], st['conv'].T)
    torch.testing.assert_close(st['last_hidden_state'], ref, rtol=0, atol=1e-6)
    assert feat.shape == (1, lay['L_tot'], args.feature_dim)
    with_attn = model.extract_audio_feature(padded[None], lay['L_tot'], output_attentions=True)
    assert torch.equal(with_attn, feat)


def test_weight_norm_spellings_agree():
    a = helpers.cached_checkpoints('tiny', 0)
    b = helpers.cached_checkpoints('tiny', 0, wn_spelling='new')
    ma, ra, _ = dpt_ref.load_model(a['denoiser'])
    mb, rb, args = dpt_ref.load_model(b['denoiser'])
    assert ra.ok and rb.ok
    _, padded, lay = dpt_ref.prepare(clip(9000), args.fps, args.n_motions, args.pad_mode)
    assert torch.equal(ma.extract_audio_feature(padded[None], lay['L_tot']),
                       mb.extract_audio_feature(padded[None], lay['L_tot']))


def test_audio_features_cli_files(tiny, inputs, tmp_path):
    ck, model, args = tiny
    run('audio-features', '--ckpt', ck['denoiser'], '--samples', inputs / 'samples.npy', '-o', tmp_path)
    lay = json.loads((tmp_path / 'layout.json').read_text())
    n = len(np.load(inputs / 'samples.npy'))
    assert lay['n_samples'] == n and lay['L_tot'] == args.n_motions * lay['n_sub']
    Lt, H, D = lay['L_tot'], model.audio_encoder.config.hidden_size, args.feature_dim
    C0 = model.audio_encoder.config.conv_dim[-1]
    shapes = dict(samples16k=(n,), normalised=(n,), padded=(lay['n_padded'],), pad_audio=(lay['n_padded'] + 80,),
                  conv=(C0, 2 * Lt), extract_features=(2 * Lt, C0), feature_projection=(2 * Lt, H),
                  pos_conv=(2 * Lt, H), encoder_ln=(2 * Lt, H), last_hidden_state=(2 * Lt, H),
                  back_resample=(Lt, H), audio_feat=(Lt, D))
    for k, s in shapes.items():
        a = np.load(tmp_path / f'{k}.npy')
        assert a.shape == s and a.dtype == np.float32, (k, a.shape, s)
    lhs = np.load(tmp_path / 'last_hidden_state.npy')
    np.testing.assert_allclose(np.load(tmp_path / 'back_resample.npy'), 0.5 * (lhs[0::2] + lhs[1::2]), atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Loading

def test_key_verification(tmp_path, inputs):
    ck = helpers.cached_checkpoints('tiny', 0)
    obj = torch.load(str(ck['denoiser']), map_location='cpu')
    del obj['model']['denoising_net.motion_dec.0.bias']
    obj['model']['denoising_net.bogus'] = torch.zeros(3)
    torch.save(obj, tmp_path / 'bad.pt')
    _, report, _ = dpt_ref.load_model(tmp_path / 'bad.pt')
    assert report.missing == ['denoising_net.motion_dec.0.bias'] and report.unexpected == ['denoising_net.bogus']
    r = run('audio-features', '--ckpt', tmp_path / 'bad.pt', '--samples', inputs / 'samples.npy', '--no-stages',
            '-o', tmp_path / 'o', check=False)
    assert r.returncode == 1 and 'missing' in r.stderr and 'unexpected' in r.stderr
    r = run('audio-features', '--ckpt', tmp_path / 'bad.pt', '--samples', inputs / 'samples.npy', '--no-stages',
            '--allow-key-mismatch', '-o', tmp_path / 'o')
    assert 'warning' in r.stderr
    obj['model']['denoising_net.feature_proj.weight'] = torch.zeros(3, 3)
    torch.save(obj, tmp_path / 'bad2.pt')
    with pytest.raises(dpt_ref.RefError, match='shapes'):
        dpt_ref.load_model(tmp_path / 'bad2.pt')
    (tmp_path / 'junk.pt').write_bytes(b'not a checkpoint')
    r = run('info', '--ckpt', tmp_path / 'junk.pt', check=False)
    assert r.returncode == 1 and 'not a PyTorch checkpoint' in r.stderr


def test_te_table_recomputed(tmp_path):
    """The stored denoising_net.TE.pe is discarded (the demo pops it) and the table recomputed."""
    ck = helpers.cached_checkpoints('tiny', 0)
    obj = torch.load(str(ck['denoiser']), map_location='cpu')
    obj['model']['denoising_net.TE.pe'] = torch.full_like(obj['model']['denoising_net.TE.pe'], 7.0)
    torch.save(obj, tmp_path / 'te.pt')
    m, report, args = dpt_ref.load_model(tmp_path / 'te.pt')
    assert report.ok
    assert torch.equal(m.denoising_net.TE.pe, dpt_ref.sinusoid_table(args.feature_dim, args.n_diff_steps + 1))


# ------------------------------------------------------------------------------------------------
# Style encoder [§5]

def test_style_cli(tiny, inputs, tmp_path):
    ck, _, _ = tiny
    se, report = dpt_ref.load_style_encoder(ck['style_encoder'], ck['stats'])
    assert report.ok
    run('style', '--se', ck['style_encoder'], '--stats', ck['stats'], '--motion', inputs / 'motion.npz',
        '--start', 4, '-o', tmp_path / 's.npy')
    s = np.load(tmp_path / 's.npy')
    m = np.load(inputs / 'motion.npz')
    want, n = se.extract(m['exp'], m['pose'], 4)
    assert n == se.n_motions and s.shape == (se.args.feature_dim,) and np.array_equal(s, want)
    # by hand: normalise, drop jaw y/z, project, + pe[Tm], encoder, mean
    st = {k: v for k, v in dpt_ref.load_stats(ck['stats']).items()}
    e = (torch.from_numpy(m['exp'][4:4 + n]) - st['exp_mean']) / st['exp_std']
    p = (torch.from_numpy(m['pose'][4:4 + n]) - st['pose_mean']) / st['pose_std']
    x = torch.cat([e, p], -1)[:, :-2][None]
    h = se.enc.encoder['motion_proj'](x) + dpt_ref.sinusoid_table(se.args.feature_dim)[:, n]
    torch.testing.assert_close(torch.from_numpy(s), se.enc.encoder['transformer'](h).mean(1)[0], rtol=0, atol=1e-6)
    r = run('style', '--se', ck['style_encoder'], '--stats', ck['stats'], '--motion', inputs / 'motion.npz',
            '--start', 50, '-o', tmp_path / 'short.npy')
    assert 'warning' in r.stderr and np.load(tmp_path / 'short.npy').shape == s.shape
    r = run('style', '--se', ck['style_encoder'], '--stats', ck['stats'], '--motion', inputs / 'motion.npz',
            '--start', 60, '-o', tmp_path / 'none.npy', check=False)
    assert r.returncode == 1 and 'no motion frames' in r.stderr


# ------------------------------------------------------------------------------------------------
# Denoiser, CFG step, generation [§6–8]

def test_cfg_step_and_denoise_agree(tiny, inputs, tmp_path):
    ck, model, args = tiny
    run('audio-features', '--ckpt', ck['denoiser'], '--samples', inputs / 'samples.npy', '--no-stages',
        '-o', tmp_path / 'af')
    run('style', '--se', ck['style_encoder'], '--stats', ck['stats'], '--motion', inputs / 'motion.npz',
        '-o', tmp_path / 'style.npy')
    T = args.n_diff_steps
    run('cfg-step', '--ckpt', ck['denoiser'], '--stats', ck['stats'], '--audio-features', tmp_path / 'af' / 'audio_feat.npy',
        '--window', 1, '--shape', inputs / 'shape.npy', '--style', tmp_path / 'style.npy', '--n-rep', 2,
        '--t', f'1,{T // 2},{T}', '--n-pad-frames', 3, '--dtr', 0.95, '-o', tmp_path / 'cs')
    meta = json.loads((tmp_path / 'cs' / 'meta.json').read_text())
    assert meta['n_entries'] == 3 and meta['cfg_cond'] == ['audio', 'style']
    ins = dict(np.load(tmp_path / 'cs' / 'inputs.npz'))
    B, L, S = 6, args.n_motions, args.n_motions + args.n_prev_motions
    assert ins['x'].shape == (B, L, model.dm) and ins['pf'].shape == (B, 1, 100 + args.d_style)
    assert np.all(ins['ind'][:, -3:] == 0) and np.all(ins['ind'][:, :-3] == 1)
    af = np.load(tmp_path / 'af' / 'audio_feat.npy')[L:2 * L]
    null_a = model.null_audio_feat.numpy()[0, 0]
    assert np.all(ins['af'][:2] == null_a) and np.all(ins['af'][2:] == af)                 # entries 0 | 1, 2
    null_s = model.null_style_feat.numpy()[0, 0]
    assert np.all(ins['pf'][:4, 0, 100:] == null_s)
    assert np.array_equal(ins['pf'][4:, 0, 100:], np.repeat(np.load(tmp_path / 'style.npy')[None], 2, 0))
    for t in (1, T // 2, T):
        ins['t'] = np.full(B, t)
        np.savez(tmp_path / 'in.npz', **ins)
        run('denoise', '--ckpt', ck['denoiser'], '--inputs', tmp_path / 'in.npz', '-o', tmp_path / 'd.npy')
        raw = np.load(tmp_path / 'cs' / f'raw_t{t}.npy')
        assert raw.shape == (B, S, model.dm)
        assert np.array_equal(np.load(tmp_path / 'd.npy'), raw)
        th = torch.from_numpy(np.load(tmp_path / 'cs' / f'thresholded_t{t}.npy'))
        g = smp.combine(th.clone(), 3, L, 'incremental', [1.15, 3.0])
        assert np.array_equal(np.load(tmp_path / 'cs' / f'guided_t{t}.npy'), g.numpy())


def _generate(ck, inputs, out, *extra, check=True):
    return run('generate', '--ckpt', ck['denoiser'], '--stats', ck['stats'], '--samples', inputs / 'samples.npy',
               '--shape', inputs / 'shape.npy', '-o', out, *extra, check=check)


def test_generate_record_and_replay(tiny, inputs, tmp_path):
    ck, model, args = tiny
    extra = ('--style-motion', inputs / 'motion.npz', '--se', ck['style_encoder'], '--n-rep', 3, '--seed', 11)
    _generate(ck, inputs, tmp_path / 'a' / 'out', *extra, '--record-draws', tmp_path / 'draws.npy',
              '--save-audio-features', tmp_path / 'af.npy')
    info = json.loads((tmp_path / 'a' / 'out_info.json').read_text())
    lay = info['layout']
    N, L, dm, T = 3, args.n_motions, model.dm, args.n_diff_steps
    draws = np.load(tmp_path / 'draws.npy')
    assert lay['n_sub'] == 3 and lay['n_pad_frames'] > 0
    assert draws.shape == (N * L * dm * (1 + lay['n_sub'] * (T - 1)),)
    g = torch.Generator().manual_seed(11)                            # x_T from the seeded stream after the
    for _ in range(model.audio_encoder.config.num_hidden_layers):    # encoder's LayerDrop uniforms
        torch.rand([], generator=g)
    assert np.array_equal(draws[:N * L * dm], torch.randn(N, L, dm, generator=g).numpy().ravel())
    files = [tmp_path / 'a' / f'out_{i:03d}.npz' for i in range(N)]
    motion = np.load(tmp_path / 'a' / 'out_motion.npy')
    assert motion.shape == (N, lay['n_out'], dm)
    for f in files:
        z = np.load(f)
        assert z.files == ['exp', 'pose', 'shape']
        assert z['exp'].shape == (lay['n_out'], 50) and z['pose'].shape == (lay['n_out'], 6)
        assert np.all(z['shape'] == np.load(inputs / 'shape.npy'))
    # replay from file with precomputed features → identical; a different seed → different
    run('generate', '--ckpt', ck['denoiser'], '--stats', ck['stats'], '--audio-features', tmp_path / 'af.npy',
        '--n-samples', lay['n_samples'], '--shape', inputs / 'shape.npy', *extra[:4], '--n-rep', 3,
        '--noise-from', tmp_path / 'draws.npy', '-o', tmp_path / 'b' / 'out')
    for i in range(N):
        a, b = np.load(files[i]), np.load(tmp_path / 'b' / f'out_{i:03d}.npz')
        for k in a.files:
            assert np.array_equal(a[k], b[k]), k
    np.save(tmp_path / 'short.npy', draws[:-1])
    r = _generate(ck, inputs, tmp_path / 'c' / 'out', *extra, '--noise-from', tmp_path / 'short.npy', check=False)
    assert r.returncode == 1 and 'exhausted' in r.stderr


def test_generate_window_chain(tiny, inputs):
    """Windows by hand with sample(): x_T reused, pm/pa carried, padded frames trimmed (§8.2)."""
    ck, model, args = tiny
    stats = dpt_ref.load_stats(ck['stats'])
    _, padded, lay = dpt_ref.prepare(np.load(inputs / 'samples.npy'), args.fps, args.n_motions, args.pad_mode)
    af = model.extract_audio_feature(padded[None], lay['L_tot'])
    shape = np.load(inputs / 'shape.npy')
    d = smp.infer_coeffs(model, stats, af, lay, shape, None, 2, smp.Noise(seed=4), cfg_cond=['audio'])
    noise = smp.Noise(seed=4)
    _, sn = smp.normalise_shape(model, stats, shape)
    L, Lp = args.n_motions, args.n_prev_motions
    outs, pm, pa, xT = [], None, None, None
    for w in range(lay['n_sub']):
        ind = torch.ones(2, L)
        if w == lay['n_sub'] - 1:
            ind[:, L - lay['n_pad_frames']:] = 0
        a = af[:, w * L:(w + 1) * L].expand(2, -1, -1)
        x0, xT, _ = smp.sample(model, a, sn[None].expand(2, -1), None, noise, pm, pa, xT, ind, cfg_cond=['audio'])
        pm, pa = x0[:, -Lp:], a[:, -Lp:]
        outs.append(x0)
    M = torch.cat(outs, 1)[:, :lay['n_out']]
    assert torch.equal(d['motion'], M)


def test_legacy_args_twin(inputs, tmp_path):
    """A checkpoint with the legacy argument names generates exactly what its modern twin does."""
    outs = []
    for legacy in (False, True):
        ck = helpers.cached_checkpoints('tiny', 0, legacy_args=legacy)
        a = torch.load(str(ck['denoiser']), map_location='cpu')['args']
        assert ('use_alignment_mask' in vars(a)) == legacy
        out = tmp_path / f'l{int(legacy)}' / 'out'
        run('generate', '--ckpt', ck['denoiser'], '--stats', ck['stats'], '--samples', inputs / 'samples.npy',
            '--shape', inputs / 'shape.npy', '--seed', 2, '--dtr', 0.9, '--cfg-cond', 'audio', '-o', out)
        outs.append(np.load(out.with_suffix('.npz')))
    for k in ('exp', 'pose', 'shape'):
        assert np.array_equal(outs[0][k], outs[1][k]), k


@pytest.mark.parametrize('opts', [dict(no_head_pose=True, no_style=True), dict(sinusoidal_pe=True, target='noise',
                                  cfg_mode='independent', align_mask_width=0, use_indicator=False)])
def test_generate_variants_run(opts, inputs, tmp_path):
    ck = helpers.cached_checkpoints('tiny', 0, **opts)
    out = tmp_path / 'out'
    _generate(ck, inputs, out, '--seed', 1, '--cfg-cond', 'audio')
    z = np.load(out.with_suffix('.npz'))
    assert np.isfinite(z['exp']).all() and np.isfinite(z['pose']).all()
    if opts.get('no_head_pose'):
        assert np.all(z['pose'][:, :3] == 0)
        r = _generate(ck, inputs, tmp_path / 'x', '--style', inputs / 'shape.npy', check=False)
        assert r.returncode == 1 and 'style' in r.stderr


# ------------------------------------------------------------------------------------------------
# One official-size check

def test_official_audio_encoder_against_transformers(official_checkpoints):
    model, report, args = dpt_ref.load_model(official_checkpoints['denoiser'])
    assert report.ok
    cfg = model.audio_encoder.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size,
            cfg.num_conv_pos_embeddings, cfg.num_conv_pos_embedding_groups) == (768, 12, 12, 3072, 128, 16)
    assert model.dm == 54 and model.denoising_net.dp == 228
    _, padded, lay = dpt_ref.prepare(clip(16000), args.fps, args.n_motions, args.pad_mode)
    st = {}
    feat = model.extract_audio_feature(padded[None], lay['L_tot'], stages=st)
    ref = model.audio_encoder(dpt_ref.pad_audio(padded[None])).last_hidden_state[0]
    torch.testing.assert_close(st['last_hidden_state'], ref, rtol=0, atol=1e-5)
    assert feat.shape == (1, 100, 512) and torch.isfinite(feat).all()
