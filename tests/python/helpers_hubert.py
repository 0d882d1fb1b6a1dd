"""Helpers of the audio-encoder parity tests (test_hubert_parity.py).

* cached_model(size, audio_model, ...): checkpoints (helpers.cached_checkpoints) exported to a .dpt,
  cached under TESTDATA/dpt-<key>/model.dpt.
* clip(n_samples, seed, kind): deterministic 16 kHz test audio ('speechy' noise bursts + tones, or 'zeros').
* reference(ckpt, samples, ...): the PyTorch reference of upstream's demo path for the whole clip
  (normalise, window-pad, extract_audio_feature), with the intermediate stages, cached under
  TESTDATA/hubert-ref-<key>/. Uses tools/reference/run_reference.py `audio-features` when it exists
  (stages from local_reference otherwise).
* run_harness(model, samples, out_dir, threads): build/tests/harness_hubert, returns the stage arrays.
* max_rel_err(c, ref): max|c − ref| / max|ref|.

Every tensor is time-major (T, C) like the harness writes it: PyTorch's (1, C, T) stages are transposed.
"""

import hashlib
import math
import pathlib
import subprocess

import numpy as np

import helpers

STAGES = ('pad_audio', 'conv', 'extract_features', 'feature_projection', 'pos_conv', 'encoder_ln',
          'last_hidden_state', 'back_resample', 'audio_feat')
HARNESS = helpers.BUILD / 'tests' / 'harness_hubert'
RUN_REFERENCE = helpers.ROOT / 'tools' / 'reference' / 'run_reference.py'


def cached_model(size='tiny', audio_model='hubert', seed=0, **options):
    """Path of a .dpt exported from cached random checkpoints."""
    if audio_model != 'hubert':          # the default: share the cache with the other tests
        options = dict(options, audio_model=audio_model)
    ck = helpers.cached_checkpoints(size, seed, **options)
    export = helpers.ROOT / 'tools' / 'export.py'

    def build(tmp):
        cmd = [helpers.PYTHON, str(export), '--dpt', str(ck['denoiser']), '--stats', str(ck['stats']),
               '-o', str(tmp / 'model.dpt')]
        if ck['style_encoder']:
            cmd += ['--style-encoder', str(ck['style_encoder'])]
        subprocess.run(cmd, check=True, capture_output=True)

    d = helpers.cached_dir('dpt', dict(ckpt=ck['dir'].name), build, sources=[export])
    return d / 'model.dpt', ck


def clip(n_samples, seed=0, kind='speechy'):
    """float32 16 kHz samples, deterministic. 'speechy': amplitude-modulated noise plus a few tones
    with a DC offset (exercises the mean/std normalisation); 'zeros': silence."""
    if kind == 'zeros':
        return np.zeros(n_samples, np.float32)
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 16000.0
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t + rng.uniform(0, 6)) ** 2
    x = 0.2 * env * rng.standard_normal(n_samples)
    for f in rng.uniform(90, 3000, size=4):
        x += 0.05 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
    return (x + 0.01).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Reference

def _prepare(a, fps, n_motions, replicate):
    """Demo.infer_coeffs' normalisation and window padding (spec §3), numpy/torch float32."""
    import torch
    a = torch.from_numpy(np.asarray(a, np.float32))
    a = (a - a.mean()) / (a.std() + 1e-5)          # torch.std: unbiased
    unit = 16000 / fps
    n_win = round(unit * n_motions)
    clip_len = int(len(a) / 16000 * fps)
    n_sub = 1 if clip_len <= n_motions else math.ceil(clip_len / n_motions)
    n_pad = n_win * n_sub - len(a)
    if n_pad > 0:
        fill = a[-1] if replicate else 0.0
        a = torch.cat([a, torch.full((n_pad,), float(fill))])
    return a, n_motions * n_sub


def _pad_audio(audio, audio_unit=320, pad_threshold=80):
    """models/common.py pad_audio, on (1, n)."""
    import torch.nn.functional as F
    n = audio.shape[1]
    side = math.ceil((audio_unit * (n // audio_unit) + pad_threshold - n) / 2)
    if side >= 0:
        r, p = side // 2, side % 2
        if r > 0:
            audio = F.pad(audio, (r, r), mode='reflect')
            audio = F.pad(audio, (r, r), mode='reflect')
        if p > 0:
            audio = F.pad(audio, (1, 1), mode='replicate')
    return audio


def local_reference(ckpt, samples):
    """Upstream's whole-clip extract_audio_feature with transformers' HubertModel / Wav2Vec2Model,
    stage by stage. Returns {stage: array (T, C)}, plus 'padded' and 'frames'."""
    import torch
    import torch.nn.functional as F
    import make_checkpoints as mc
    ck = torch.load(str(ckpt), map_location='cpu')
    args, sd = ck['args'], ck['model']
    hidden = sd['audio_encoder.encoder.layer_norm.weight'].shape[0]
    size = 'official' if hidden == 768 else 'tiny'
    enc = mc._audio_encoder(size, args.audio_model)
    missing, unexpected = enc.load_state_dict(
        {k[len('audio_encoder.'):]: v for k, v in sd.items() if k.startswith('audio_encoder.')}, strict=False)
    assert not [k for k in missing if 'masked_spec_embed' not in k] and not unexpected, (missing, unexpected)
    enc.eval()
    fps, L = args.fps, args.n_motions
    out = {}
    with torch.no_grad():
        a, L_tot = _prepare(samples, fps, L, getattr(args, 'pad_mode', 'zero') == 'replicate')
        out['padded'] = a.numpy()
        x = _pad_audio(a[None])
        out['pad_audio'] = x[0].numpy()
        feat = enc.feature_extractor(x)                              # (1, 512, C)
        out['conv'] = feat[0].T.numpy()
        frame_num = 2 * L_tot
        feat = feat[:, :, :round(frame_num * 50 / fps)]
        feat = F.interpolate(feat, size=frame_num, align_corners=False, mode='linear').transpose(1, 2)
        out['extract_features'] = feat[0].numpy()
        hs = enc.feature_projection(feat)
        if isinstance(hs, tuple):                                    # wav2vec2 returns (h, normed)
            hs = hs[0]
        out['feature_projection'] = hs[0].numpy()
        pos = enc.encoder.pos_conv_embed(hs)
        out['pos_conv'] = pos[0].numpy()
        out['encoder_ln'] = enc.encoder.layer_norm(hs + pos)[0].numpy()
        hid = enc.encoder(hs, output_attentions=True).last_hidden_state
        out['last_hidden_state'] = hid[0].numpy()
        br = F.interpolate(hid.transpose(1, 2), size=L_tot, align_corners=False, mode='linear').transpose(1, 2)
        out['back_resample'] = br[0].numpy()
        out['audio_feat'] = F.linear(br, sd['audio_feature_map.weight'], sd['audio_feature_map.bias'])[0].numpy()
    out['frames'] = np.array(L_tot)
    return out


def reference(ckpt, samples, stages=True):
    """Cached reference arrays for (checkpoint, samples): {name: array}."""
    ckpt = pathlib.Path(ckpt)
    samples = np.asarray(samples, np.float32)
    h = hashlib.sha256(samples.tobytes()).hexdigest()[:16]
    params = dict(ckpt=ckpt.parent.name, samples=h, n=len(samples), stages=stages)

    def build(tmp):
        arrays = None
        if RUN_REFERENCE.exists() and not stages:
            np.save(tmp / 'samples.npy', samples)
            subprocess.run([helpers.PYTHON, str(RUN_REFERENCE), 'audio-features', '--ckpt', str(ckpt),
                            '--samples', str(tmp / 'samples.npy'), '-o', str(tmp / 'ref')],
                           check=True, capture_output=True)
            found = {p.stem: np.load(p) for p in (tmp / 'ref').glob('*.npy')}
            name = next((k for k in ('audio_feat', 'audio_features', 'features') if k in found), None)
            if name is None:
                raise RuntimeError(f'run_reference.py audio-features wrote {sorted(found)}; expected '
                                   f'audio_feat.npy (update helpers_hubert.reference)')
            feat = found[name]
            while feat.ndim > 2 and feat.shape[0] == 1:     # (1, L_tot, D) → (L_tot, D)
                feat = feat[0]
            arrays = {'audio_feat': feat}
        else:
            arrays = local_reference(ckpt, samples)
        for k, v in arrays.items():
            np.save(tmp / f'{k}.npy', v)

    d = helpers.cached_dir('hubert-ref', params, build, sources=[__file__])
    return {p.stem: np.load(p) for p in d.glob('*.npy')}


# ------------------------------------------------------------------------------------------------
# C side

def run_harness(model, samples, out_dir, threads=2, stages=True, extra=()):
    """Run harness_hubert on raw samples; returns ({name: array}, stdout)."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / 'samples.npy', np.asarray(samples, np.float32))
    cmd = [str(HARNESS), str(model), str(out_dir / 'samples.npy'), str(out_dir), '--threads', str(threads)]
    if not stages:
        cmd.append('--no-stages')
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f'harness_hubert failed ({r.returncode}): {r.stderr.strip()}')
    arrays = {p.stem: np.load(p) for p in out_dir.glob('*.npy') if p.stem != 'samples'}
    return arrays, r.stdout


def max_rel_err(c, ref):
    c = np.asarray(c, np.float64)
    ref = np.asarray(ref, np.float64)
    assert c.shape == ref.shape, (c.shape, ref.shape)
    scale = np.abs(ref).max()
    d = np.abs(c - ref).max()
    return d / scale if scale > 0 else d
