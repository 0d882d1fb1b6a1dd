#!/usr/bin/env python3
"""Random-initialised DiffPoseTalk checkpoints in exactly the official on-disk formats.

Writes, into OUT_DIR (spec §1.2–§1.4):

* ``denoiser.pt``      ``{'args': Namespace, 'model': OrderedDict state dict, 'iter': int}`` as main_dpt.py saves it
* ``style_encoder.pt`` ``{'args': Namespace, 'encoder': OrderedDict state dict, 'iter': int}`` as main_se.py saves it
                       (not written with ``no_style``)
* ``stats_train.npz``  float32 ``{shape,exp,pose}_{mean,std,max,min}`` as the dataset script writes it

Every value is a deterministic function of (seed, tensor name, tensor shape): each tensor gets its own
generator, so the two weight-norm spellings, the legacy argument names etc. change nothing but what they
must. Every parameter is non-trivial (norm gains ≠ 1, biases ≠ 0, …) so a port that ignores one fails its
parity test, and the scales keep activations O(1) through all layers at official size.

The audio encoder is transformers' HubertModel / Wav2Vec2Model built from a config (official: the
hubert-base-ls960 / wav2vec2-base architecture, spec §4.1; tiny: 32 wide, 2 layers), so its keys are
exactly what transformers produces. With torch < 2.1 its weight norm is saved as ``weight_g``/``weight_v``
(``wn_spelling='old'``); ``wn_spelling='new'`` renames them to ``parametrizations.weight.original0/1`` as
torch ≥ 2.1 saves them.

Use as a library::

    from make_checkpoints import make_checkpoints
    paths = make_checkpoints('build/testdata/x', size='tiny', seed=0, no_head_pose=True)
    paths['denoiser'], paths['style_encoder'], paths['stats']

or from the command line::

    .venv/bin/python tools/reference/make_checkpoints.py OUT_DIR [--size tiny] [--seed 0] [--no-head-pose] ...

``build_checkpoints(...)`` returns the three objects without writing them (for tests that corrupt them).
"""

import argparse
import collections
import hashlib
import math
import sys
from pathlib import Path, PosixPath

import numpy as np
import torch
import torch.nn as nn

from dpt_ref.sampler import schedule as dpt_schedule  # tools/reference/ is on sys.path

# --------------------------------------------------------------------------------------------------------
# Sizes and options

SIZES = {
    'official': dict(
        feature_dim=512, n_heads=8, n_layers=8, mlp_ratio=4, n_motions=100, n_prev_motions=10, d_style=128,
        n_diff_steps=500,
        se=dict(feature_dim=128, n_heads=4, n_layers=4, mlp_ratio=4, n_motions=100),
        audio=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                   conv_dim=(512,) * 7, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16),
    ),
    'tiny': dict(
        feature_dim=32, n_heads=4, n_layers=2, mlp_ratio=2, n_motions=20, n_prev_motions=5, d_style=16,
        n_diff_steps=10,
        se=dict(feature_dim=16, n_heads=2, n_layers=2, mlp_ratio=2, n_motions=20),
        audio=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                   conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
    ),
}

# Architecture values shared by hubert-base-ls960 and wav2vec2-base (spec §4.1).
AUDIO_COMMON = dict(conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_bias=False,
                    feat_extract_norm='group', feat_extract_activation='gelu', feat_proj_layer_norm=True,
                    do_stable_layer_norm=False, hidden_act='gelu', layer_norm_eps=1e-5, mask_time_prob=0.05)

# Keyword options of make_checkpoints / build_checkpoints and their defaults (None = depends on size/style).
DEFAULTS = dict(
    no_head_pose=False,
    audio_model='hubert',          # hubert | wav2vec2
    no_style=False,                # denoiser trained without a style encoder
    n_diff_steps=None,             # official 500, tiny 10
    diff_schedule='cosine',        # linear | quadratic | sigmoid | cosine
    target='sample',               # sample | noise
    cfg_mode='incremental',        # incremental | independent
    guiding_conditions=None,       # 'audio,style' (with style) or 'audio' (without)
    use_indicator=True,            # the README's training command sets --use_indicator
    align_mask_width=1,
    sinusoidal_pe=False,           # args.no_use_learnable_pe
    pad_mode='zero',               # zero | replicate
    wn_spelling='old',             # old: weight_g/weight_v, new: parametrizations.weight.original0/1
    legacy_args=False,             # use_alignment_mask / predict_head_pose / use_learnable_pe
    iter=None,                     # the checkpoints' 'iter' (denoiser 110000, style encoder 26000)
)

SCHEDULES = ('linear', 'quadratic', 'sigmoid', 'cosine')


def _resolve(size, options):
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f'unknown option(s): {", ".join(sorted(unknown))}')
    if size not in SIZES:
        raise ValueError(f'size must be one of {", ".join(SIZES)}, not {size!r}')
    o = dict(DEFAULTS)
    o.update(options)
    if o['n_diff_steps'] is None:
        o['n_diff_steps'] = SIZES[size]['n_diff_steps']
    if o['guiding_conditions'] is None:
        o['guiding_conditions'] = 'audio' if o['no_style'] else 'audio,style'
    checks = [('audio_model', ('hubert', 'wav2vec2')), ('diff_schedule', SCHEDULES), ('target', ('sample', 'noise')),
              ('cfg_mode', ('incremental', 'independent')), ('pad_mode', ('zero', 'replicate')),
              ('wn_spelling', ('old', 'new'))]
    for name, allowed in checks:
        if o[name] not in allowed:
            raise ValueError(f'{name} must be one of {", ".join(allowed)}, not {o[name]!r}')
    conds = [c for c in o['guiding_conditions'].split(',') if c] if o['guiding_conditions'] else []
    if 'style' in conds and o['no_style']:
        # DiffTalkingHead refuses this combination ("Cannot use style guiding without enabling it").
        raise ValueError('guiding condition "style" needs a style encoder (no_style is set)')
    if o['legacy_args'] and o['align_mask_width'] not in (0, 1):
        raise ValueError('legacy args (use_alignment_mask) can only express align_mask_width 0 or 1')
    if o['n_diff_steps'] < 1:
        raise ValueError('n_diff_steps must be ≥ 1')
    return o


# --------------------------------------------------------------------------------------------------------
# Deterministic tables (spec §2.8, §6, §7.1), float32 torch ops in the reference order.

def sinusoid_table(d, max_len):
    """pe(d, max_len) of spec §2.8 as a (1, max_len, d) float32 tensor."""
    pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)                  # (max_len, 1)
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))  # (d/2,)
    angle = pos * freq                                                             # rounded to float32
    table = torch.zeros(max_len, d, dtype=torch.float32)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table.unsqueeze(0)


def alignment_mask(n_frames, width):
    """Bool (1+S, S) cross-attention mask of spec §6, True = blocked (None if width ≤ 0)."""
    if width <= 0:
        return None
    e = width - 1
    blocked = torch.ones(n_frames + 1, n_frames, dtype=torch.bool)
    blocked[0, :] = False                              # person token sees every memory position
    for q in range(n_frames):                          # row q+1 = sequence frame q
        blocked[q + 1, max(0, q - e):min(n_frames, q + e + 1)] = False
    return blocked


def diffusion_schedule(n_steps, mode):
    """{betas, alphas, alpha_bars, sigmas_flex, sigmas_inflex}, each float32 (T+1,), spec §7.1: the
    reference's own schedule (one copy), stored in the checkpoint as upstream's buffers."""
    return dpt_schedule(mode, n_steps)


# --------------------------------------------------------------------------------------------------------
# Module skeletons: they exist only to produce the official state-dict keys, order and _metadata.

class _Sinusoid(nn.Module):
    def __init__(self, d, max_len):
        super().__init__()
        self.register_buffer('pe', sinusoid_table(d, max_len))


class _Denoiser(nn.Module):
    def __init__(self, D, heads, layers, ratio, L, Lp, T, dm, dp, use_indicator, learnable_pe, mask_width):
        super().__init__()
        S = L + Lp
        self.TE = _Sinusoid(D, T + 1)
        self.diff_step_map = nn.Sequential(nn.Linear(D, D), nn.GELU(), nn.Linear(D, D))
        self.PE = nn.Parameter(torch.zeros(1, 1 + S, D)) if learnable_pe else _Sinusoid(D, 600)
        self.person_proj = nn.Linear(dp, D)
        self.feature_proj = nn.Linear(dm + (1 if use_indicator else 0), D)
        layer = nn.TransformerDecoderLayer(d_model=D, nhead=heads, dim_feedforward=ratio * D,
                                           activation='gelu', batch_first=True)
        self.transformer = nn.TransformerDecoder(layer, num_layers=layers)
        mask = alignment_mask(S, mask_width)
        if mask is not None:
            self.register_buffer('alignment_mask', mask)
        self.motion_dec = nn.Sequential(nn.Linear(D, D // 2), nn.GELU(), nn.Linear(D // 2, dm))


class _Schedule(nn.Module):
    def __init__(self, T, mode):
        super().__init__()
        for name, value in diffusion_schedule(T, mode).items():
            self.register_buffer(name, value)


class _DiffTalkingHead(nn.Module):
    def __init__(self, audio_encoder, D, Lp, dm, d_style, conds, denoiser, schedule):
        super().__init__()
        self.audio_encoder = audio_encoder
        self.audio_feature_map = nn.Linear(audio_encoder.config.hidden_size, D)
        self.start_audio_feat = nn.Parameter(torch.zeros(1, Lp, D))
        self.start_motion_feat = nn.Parameter(torch.zeros(1, Lp, dm))
        self.denoising_net = denoiser
        self.diffusion_sched = schedule
        if 'style' in conds:
            self.null_style_feat = nn.Parameter(torch.zeros(1, 1, d_style))
        if 'audio' in conds:
            self.null_audio_feat = nn.Parameter(torch.zeros(1, 1, D))


def _style_encoder_module(Ds, heads, layers, ratio, din):
    layer = nn.TransformerEncoderLayer(d_model=Ds, nhead=heads, dim_feedforward=ratio * Ds,
                                       activation='gelu', batch_first=True)
    return nn.ModuleDict({'motion_proj': nn.Linear(din, Ds),
                          'transformer': nn.TransformerEncoder(layer, num_layers=layers)})


def _audio_encoder(size, audio_model):
    import transformers
    cfg = dict(AUDIO_COMMON)
    cfg.update(SIZES[size]['audio'])
    if audio_model == 'hubert':
        return transformers.HubertModel(transformers.HubertConfig(**cfg))
    return transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**cfg))


# --------------------------------------------------------------------------------------------------------
# Deterministic random values

def _generator(seed, name):
    digest = hashlib.sha256(f'{seed}/{name}'.encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], 'little') & ((1 << 63) - 1))


def _uniform(g, shape, bound):
    return (torch.rand(shape, generator=g, dtype=torch.float32) * 2 - 1) * bound


def _normal(g, shape, std=1.0):
    return torch.randn(shape, generator=g, dtype=torch.float32) * std


def _randomise(module, seed, prefix=''):
    """Overwrite every parameter of `module` in place; buffers (tables, masks, schedules) stay computed.

    Rules by module type: LayerNorm/GroupNorm gains 1 + 0.1·N, shifts 0.1·N; Linear and attention
    projections U(±1/√fan_in) with biases U(±max(1/√fan_in, 0.1)); Conv1d N(0, (gain/√fan_in)²) with gain 1.5
    after the first layer (GELU follows each); weight-norm direction N(0,1), magnitude U(1, 3);
    free parameters N(0,1) (PE N(0, 0.5²), masked_spec_embed U(0,1)). Raises on any parameter no rule covers.
    """
    done = set()

    def put(mod_name, pname, value):
        full = f'{mod_name}.{pname}' if mod_name else pname
        param = getattr(module.get_submodule(mod_name) if mod_name else module, pname)
        assert value.shape == param.shape, (full, value.shape, param.shape)
        with torch.no_grad():
            param.copy_(value)
        done.add(full)

    def gen(mod_name, pname):
        # weight-norm tensors are always named in the old spelling here, so both spellings carry equal values
        return _generator(seed, prefix + (f'{mod_name}.{pname}' if mod_name else pname))

    def bias_bound(fan_in):
        return max(1.0 / math.sqrt(fan_in), 0.1)

    for mname, m in module.named_modules():
        own = dict(m.named_parameters(recurse=False))
        if not own:
            continue
        if isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
            put(mname, 'weight', 1 + 0.1 * _normal(gen(mname, 'weight'), own['weight'].shape))
            put(mname, 'bias', 0.1 * _normal(gen(mname, 'bias'), own['bias'].shape))
        elif isinstance(m, nn.Linear):
            fan_in = m.in_features
            put(mname, 'weight', _uniform(gen(mname, 'weight'), m.weight.shape, 1 / math.sqrt(fan_in)))
            if m.bias is not None:
                put(mname, 'bias', _uniform(gen(mname, 'bias'), m.bias.shape, bias_bound(fan_in)))
        elif isinstance(m, nn.MultiheadAttention):
            fan_in = m.embed_dim
            put(mname, 'in_proj_weight', _uniform(gen(mname, 'in_proj_weight'), m.in_proj_weight.shape,
                                                  1 / math.sqrt(fan_in)))
            put(mname, 'in_proj_bias', _uniform(gen(mname, 'in_proj_bias'), m.in_proj_bias.shape,
                                                bias_bound(fan_in)))
        elif type(m).__name__ == 'ParametrizationList':
            # torch ≥ 2.1 weight norm: original0 = g, original1 = v of the conv two levels up
            conv = mname.rsplit('.parametrizations.', 1)[0]
            put(mname, 'original1', _normal(gen(conv, 'weight_v'), own['original1'].shape))
            put(mname, 'original0', 1 + 2 * torch.rand(own['original0'].shape, generator=gen(conv, 'weight_g')))
        elif isinstance(m, nn.Conv1d):
            if 'weight_g' in own:                       # torch < 2.1 weight norm, dim=2: g (1,1,K), v (O,I/groups,K)
                put(mname, 'weight_v', _normal(gen(mname, 'weight_v'), own['weight_v'].shape))
                put(mname, 'weight_g', 1 + 2 * torch.rand(own['weight_g'].shape, generator=gen(mname, 'weight_g')))
            elif 'weight' in own:
                w = own['weight']
                fan_in = w.shape[1] * w.shape[2]
                gain = 1.0 if w.shape[1] == 1 else 1.5
                put(mname, 'weight', _normal(gen(mname, 'weight'), w.shape, gain / math.sqrt(fan_in)))
            if m.bias is not None:
                put(mname, 'bias', 0.1 * _normal(gen(mname, 'bias'), m.bias.shape))
        else:
            for pname, p in own.items():
                if pname == 'masked_spec_embed':
                    value = torch.rand(p.shape, generator=gen(mname, pname))
                elif pname == 'PE':
                    value = _normal(gen(mname, pname), p.shape, 0.5)
                else:                                   # start_*_feat, null_*_feat
                    value = _normal(gen(mname, pname), p.shape)
                put(mname, pname, value)
    missing = {n for n, _ in module.named_parameters()} - done
    if missing:
        raise RuntimeError(f'no initialisation rule for: {", ".join(sorted(missing))}')


# --------------------------------------------------------------------------------------------------------
# args Namespaces (field order as the upstream parsers produce them)

def _dpt_args(size, o):
    z = SIZES[size]
    use_style = not o['no_style']
    se_dir = 'head-L4H4-T0.1-BS32/checkpoints/iter_0026000.pt' if not o['no_head_pose'] \
        else 'L4H4-T0.1-BS32/checkpoints/iter_0034000.pt'
    a = collections.OrderedDict()
    a['mode'] = 'train'
    a['iter'] = 100000
    a['data_root'] = PosixPath('datasets/HDTF_TFHP/lmdb')
    a['stats_file'] = PosixPath('stats_train.npz')
    a['batch_size'] = 16
    a['num_workers'] = 4
    a['target'] = o['target']
    a['guiding_conditions'] = o['guiding_conditions']
    a['cfg_mode'] = o['cfg_mode']
    a['n_diff_steps'] = o['n_diff_steps']
    a['diff_schedule'] = o['diff_schedule']
    a['rot_repr'] = 'aa'
    if o['legacy_args']:
        a['predict_head_pose'] = not o['no_head_pose']
    else:
        a['no_head_pose'] = o['no_head_pose']
    a['style_enc_ckpt'] = PosixPath('experiments/SE') / se_dir if use_style else None
    a['d_style'] = z['d_style']
    a['audio_model'] = o['audio_model']
    a['architecture'] = 'decoder'
    if o['legacy_args']:
        a['use_alignment_mask'] = o['align_mask_width'] > 0
        a['use_learnable_pe'] = not o['sinusoidal_pe']
    else:
        a['align_mask_width'] = o['align_mask_width']
        a['no_use_learnable_pe'] = o['sinusoidal_pe']
    a['use_indicator'] = o['use_indicator']
    for k in ('feature_dim', 'n_heads', 'n_layers', 'mlp_ratio', 'n_motions', 'n_prev_motions'):
        a[k] = z[k]
    a['fps'] = 25
    a['pad_mode'] = o['pad_mode']
    a['exp_name'] = ('' if o['no_head_pose'] else 'head-') + ('SA-' if use_style else '') + o['audio_model'] + '-WM'
    a.update(max_iter=200000, lr=0.0001, gradient_accumulation_steps=1, scheduler='None', criterion='l2',
             l_vert=2e6, l_vel=1e7, l_smooth=1e5, l_head_angle=0.05, l_head_vel=5, l_head_smooth=0.5,
             l_head_trans=0.5, no_constrain_prev=False, use_context_audio_feat=False, trunc_prob1=0.3,
             trunc_prob2=0.4, save_iter=10000, val_iter=5000, log_iter=50, log_smooth_win=50)
    return argparse.Namespace(**a)


def _se_args(size, o):
    z = SIZES[size]['se']
    a = collections.OrderedDict()
    a['mode'] = 'train'
    a['iter'] = 100000
    a['rot_repr'] = 'aa'
    a['no_head_pose'] = o['no_head_pose']
    for k in ('feature_dim', 'n_heads', 'n_layers', 'mlp_ratio', 'n_motions'):
        a[k] = z[k]
    a['fps'] = 25
    a['data_root'] = PosixPath('datasets/HDTF_TFHP/lmdb')
    a['stats_file'] = PosixPath('stats_train.npz')
    a['batch_size'] = 32
    a['num_workers'] = 4
    a['exp_name'] = ('' if o['no_head_pose'] else 'head-') + 'L4H4-T0.1-BS32'
    a.update(max_iter=100000, lr=0.0001, temperature=0.1, save_iter=2000, val_iter=2000, log_iter=50,
             log_smooth_win=50)
    return argparse.Namespace(**a)


# --------------------------------------------------------------------------------------------------------

_WN_SPELLINGS = {'old': ('weight_g', 'weight_v'),
                 'new': ('parametrizations.weight.original0', 'parametrizations.weight.original1')}


def _respell_weight_norm(sd, spelling):
    """Rename the weight-norm keys to `spelling` ('old' as torch < 2.1 saves them, 'new' as torch ≥ 2.1 does)."""
    out = collections.OrderedDict()
    for k, v in sd.items():
        for src, dst in zip(_WN_SPELLINGS['new' if spelling == 'old' else 'old'], _WN_SPELLINGS[spelling]):
            if k.endswith('.' + src):
                k = k[:-len(src)] + dst
        out[k] = v
    meta = getattr(sd, '_metadata', None)
    if meta is not None:
        out._metadata = meta
    return out


def make_stats(seed):
    """Coefficient statistics dict (float32) like the dataset script's stats_train.npz."""
    rng = np.random.default_rng([seed, 0x5747])
    out = collections.OrderedDict()
    for name, n in (('shape', 100), ('exp', 50), ('pose', 6)):
        mean = rng.normal(0.0, 0.5, n).astype(np.float32)
        std = rng.uniform(0.5, 1.5, n).astype(np.float32)
        if name == 'pose':                             # jaw y/z are always zero in the data
            mean[4:6] = 0
            std[4:6] = 0
        out[f'{name}_mean'] = mean
        out[f'{name}_std'] = std
        out[f'{name}_max'] = (mean + 3 * std).astype(np.float32)
        out[f'{name}_min'] = (mean - 3 * std).astype(np.float32)
    return out


def build_checkpoints(size='official', seed=0, **options):
    """(denoiser dict, style-encoder dict or None, stats dict) without writing anything."""
    o = _resolve(size, options)
    z = SIZES[size]
    dm = 50 + (1 if o['no_head_pose'] else 4)
    use_style = not o['no_style']
    conds = [c for c in o['guiding_conditions'].split(',') if c in ('audio', 'style')]
    dpt_iter = o['iter'] if o['iter'] is not None else 110000
    se_iter = o['iter'] if o['iter'] is not None else 26000

    with torch.random.fork_rng(devices=[]):            # transformers' own init must not disturb the caller's RNG
        torch.manual_seed(seed)
        audio = _audio_encoder(size, o['audio_model'])
        denoiser = _Denoiser(z['feature_dim'], z['n_heads'], z['n_layers'], z['mlp_ratio'], z['n_motions'],
                             z['n_prev_motions'], o['n_diff_steps'], dm,
                             100 + (z['d_style'] if use_style else 0), o['use_indicator'],
                             not o['sinusoidal_pe'], o['align_mask_width'])
        model = _DiffTalkingHead(audio, z['feature_dim'], z['n_prev_motions'], dm, z['d_style'], conds, denoiser,
                                 _Schedule(o['n_diff_steps'], o['diff_schedule']))
        _randomise(model, seed)
        sd = model.state_dict()
        sd = _respell_weight_norm(sd, o['wn_spelling'])  # whatever this torch's weight norm produced
        dpt = {'args': _dpt_args(size, o), 'model': sd, 'iter': dpt_iter}

        se = None
        if use_style:
            s = z['se']
            enc = _style_encoder_module(s['feature_dim'], s['n_heads'], s['n_layers'], s['mlp_ratio'], dm)
            _randomise(enc, seed, prefix='style_encoder.')
            se = {'args': _se_args(size, o), 'encoder': enc.state_dict(), 'iter': se_iter}
    return dpt, se, make_stats(seed)


def make_checkpoints(out_dir, size='official', seed=0, **options):
    """Write denoiser.pt, style_encoder.pt (unless no_style) and stats_train.npz into out_dir.

    Returns {'denoiser': Path, 'style_encoder': Path or None, 'stats': Path}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dpt, se, stats = build_checkpoints(size, seed, **options)
    paths = {'denoiser': out / 'denoiser.pt', 'style_encoder': None, 'stats': out / 'stats_train.npz'}
    torch.save(dpt, paths['denoiser'])
    if se is not None:
        paths['style_encoder'] = out / 'style_encoder.pt'
        torch.save(se, paths['style_encoder'])
    elif (out / 'style_encoder.pt').exists():
        (out / 'style_encoder.pt').unlink()            # never leave a stale one next to a no-style denoiser
    np.savez(paths['stats'], **stats)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description='Write random-initialised DiffPoseTalk checkpoints '
                                            '(denoiser.pt, style_encoder.pt, stats_train.npz) in the official formats.')
    p.add_argument('out_dir', type=Path)
    p.add_argument('--size', choices=sorted(SIZES), default='official')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-head-pose', action='store_true')
    p.add_argument('--audio-model', choices=['hubert', 'wav2vec2'], default='hubert')
    p.add_argument('--no-style', action='store_true', help='denoiser trained without a style encoder')
    p.add_argument('--n-diff-steps', type=int, help='default: 500 official, 10 tiny')
    p.add_argument('--diff-schedule', choices=SCHEDULES, default='cosine')
    p.add_argument('--target', choices=['sample', 'noise'], default='sample')
    p.add_argument('--cfg-mode', choices=['incremental', 'independent'], default='incremental')
    p.add_argument('--guiding-conditions', help="default 'audio,style' ('audio' with --no-style)")
    p.add_argument('--no-indicator', action='store_true', help='use_indicator False')
    p.add_argument('--align-mask-width', type=int, default=1)
    p.add_argument('--sinusoidal-pe', action='store_true', help='no_use_learnable_pe True')
    p.add_argument('--pad-mode', choices=['zero', 'replicate'], default='zero')
    p.add_argument('--wn-spelling', choices=['old', 'new'], default='old')
    p.add_argument('--legacy-args', action='store_true',
                   help='write use_alignment_mask/predict_head_pose/use_learnable_pe instead of the new names')
    p.add_argument('--iter', type=int)
    a = p.parse_args(argv)
    options = dict(no_head_pose=a.no_head_pose, audio_model=a.audio_model, no_style=a.no_style,
                   n_diff_steps=a.n_diff_steps, diff_schedule=a.diff_schedule, target=a.target,
                   cfg_mode=a.cfg_mode, guiding_conditions=a.guiding_conditions, use_indicator=not a.no_indicator,
                   align_mask_width=a.align_mask_width, sinusoidal_pe=a.sinusoidal_pe, pad_mode=a.pad_mode,
                   wn_spelling=a.wn_spelling, legacy_args=a.legacy_args, iter=a.iter)
    try:
        paths = make_checkpoints(a.out_dir, a.size, a.seed, **options)
    except ValueError as e:
        print(f'make_checkpoints: {e}', file=sys.stderr)
        return 1
    for k, v in paths.items():
        if v is not None:
            print(f'{k}: {v}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
