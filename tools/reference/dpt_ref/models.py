"""Denoiser, full model container and style encoder with upstream's semantics [spec §1, §5, §6], and
their loading from the official checkpoint files.

load_model(path)      → Model: the demo's loading (args wrapped with the legacy lookup, the stored
                        `denoising_net.TE.pe` dropped and the table recomputed, load_state_dict(strict=False))
                        plus a KeyReport of what strict loading would have complained about.
load_style_encoder(p) → StyleModel: extract_style.py's loading (plain Namespace, encoder strict=False).
"""

import argparse
import pathlib

import numpy as np
import torch
import torch.nn as nn

from . import encoder as audio_enc
from .common import LegacyArgs, RefError, SinusoidPE, alignment_mask

MODEL_ARGS = ('target', 'guiding_conditions', 'cfg_mode', 'n_diff_steps', 'diff_schedule', 'rot_repr',
              'no_head_pose', 'style_enc_ckpt', 'd_style', 'audio_model', 'architecture', 'align_mask_width',
              'no_use_learnable_pe', 'use_indicator', 'feature_dim', 'n_heads', 'n_layers', 'mlp_ratio',
              'n_motions', 'n_prev_motions', 'fps', 'pad_mode')
SE_ARGS = ('rot_repr', 'no_head_pose', 'feature_dim', 'n_heads', 'n_layers', 'mlp_ratio', 'n_motions', 'fps')


class KeyReport:
    """What load_state_dict(strict=False) silently accepted. `ok` is False on any missing or unexpected
    key other than the ones upstream's loader itself drops."""

    def __init__(self, missing, unexpected, notes=()):
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.notes = list(notes)

    @property
    def ok(self):
        return not self.missing and not self.unexpected

    def as_dict(self):
        return dict(missing=self.missing, unexpected=self.unexpected, notes=self.notes, ok=self.ok)

    def message(self, what):
        parts = []
        if self.missing:
            parts.append(f'{len(self.missing)} missing key(s) (e.g. {", ".join(self.missing[:3])})')
        if self.unexpected:
            parts.append(f'{len(self.unexpected)} unexpected key(s) (e.g. {", ".join(self.unexpected[:3])})')
        return f'{what}: ' + '; '.join(parts)


def _load_pickle(path, what):
    path = pathlib.Path(path)
    if not path.exists():
        raise RefError(f'{path}: no such file')
    try:
        obj = torch.load(str(path), map_location='cpu')
    except Exception as e:                                   # noqa: BLE001 — any unpickling failure
        raise RefError(f'{path}: not a PyTorch checkpoint ({type(e).__name__}: {e})')
    if not isinstance(obj, dict):
        raise RefError(f'{path}: expected a dict checkpoint ({what}), found {type(obj).__name__}')
    return obj


def motion_dim(args):
    if args.rot_repr != 'aa':
        raise RefError(f'unsupported rot_repr {args.rot_repr!r} (only aa)')
    return 50 + (1 if args.no_head_pose else 4)


# ------------------------------------------------------------------------------------------------
# Denoiser [§6]

class DenoisingNetwork(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.use_style = args.style_enc_ckpt is not None
        self.dm = motion_dim(args)
        self.dp = 100 + (args.d_style if self.use_style else 0)
        self.use_indicator = bool(args.use_indicator)
        if args.architecture != 'decoder':
            raise RefError(f'unsupported architecture {args.architecture!r} (only decoder)')
        D = self.D = args.feature_dim
        self.Lp, self.L = args.n_prev_motions, args.n_motions
        S = self.Lp + self.L
        self.learnable_pe = not args.no_use_learnable_pe
        self.TE = SinusoidPE(D, max_len=args.n_diff_steps + 1)
        self.diff_step_map = nn.Sequential(nn.Linear(D, D), nn.GELU(), nn.Linear(D, D))
        if self.learnable_pe:
            self.PE = nn.Parameter(torch.zeros(1, 1 + S, D))
        else:
            self.PE = SinusoidPE(D)
        self.person_proj = nn.Linear(self.dp, D)
        self.feature_proj = nn.Linear(self.dm + (1 if self.use_indicator else 0), D)
        layer = nn.TransformerDecoderLayer(d_model=D, nhead=args.n_heads, dim_feedforward=args.mlp_ratio * D,
                                           activation='gelu', batch_first=True)
        self.transformer = nn.TransformerDecoder(layer, num_layers=args.n_layers)
        mask = alignment_mask(S, args.align_mask_width)
        if mask is not None:
            self.register_buffer('alignment_mask', mask)
        else:
            self.alignment_mask = None
        self.motion_dec = nn.Sequential(nn.Linear(D, D // 2), nn.GELU(), nn.Linear(D // 2, self.dm))

    def forward(self, x, af, pf, pm, pa, t, ind=None):
        """x (B, L, dm), af (B, L, D), pf (B, 1, dp), pm (B, Lp, dm), pa (B, Lp, D), t (B,) int,
        ind (B, L) or None → (B, Lp+L, dm)."""
        e = self.diff_step_map(self.TE.pe[0, t]).unsqueeze(1)          # plain lookup, no quirk
        p = self.person_proj(pf) + e
        z = torch.cat([pm, x], 1)
        if self.use_indicator:
            if ind is None:
                raise RefError('this denoiser uses an indicator; none given')
            ii = torch.cat([torch.zeros(ind.shape[0], self.Lp, dtype=ind.dtype), ind], 1).unsqueeze(-1)
            z = torch.cat([z, ii], -1)
        u = torch.cat([p, self.feature_proj(z)], 1)
        u = u + self.PE if self.learnable_pe else self.PE(u)
        mem = torch.cat([pa, af], 1)
        y = self.transformer(u, mem, memory_mask=self.alignment_mask)
        return self.motion_dec(y[:, 1:])


class Schedule(nn.Module):
    """Buffers of upstream's DiffusionSchedule (values come from the checkpoint)."""

    NAMES = ('betas', 'alphas', 'alpha_bars', 'sigmas_flex', 'sigmas_inflex')

    def __init__(self, T, kind):
        super().__init__()
        from .sampler import schedule
        self.T = T
        for k, v in schedule(kind, T).items():
            self.register_buffer(k, v)

    def sigma(self, t, flexibility=0.0):
        return self.sigmas_flex[t] * flexibility + self.sigmas_inflex[t] * (1 - flexibility)


class Model(nn.Module):
    """DiffTalkingHead's inference parts with the same state-dict keys."""

    def __init__(self, args, audio_cfg, audio_heads=None):
        super().__init__()
        self.args = args
        a = args
        if a.audio_model not in ('hubert', 'wav2vec2'):
            raise RefError(f'unknown audio_model {a.audio_model!r}')
        self.target = a.target
        if self.target not in ('sample', 'noise'):
            raise RefError(f'unknown target {self.target!r}')
        self.use_style = a.style_enc_ckpt is not None
        self.dm = motion_dim(a)
        self.L, self.Lp, self.fps, self.D = a.n_motions, a.n_prev_motions, a.fps, a.feature_dim
        self.pad_mode = a.pad_mode
        self.cfg_mode = a.cfg_mode
        conds = a.guiding_conditions.split(',') if a.guiding_conditions else []
        self.guiding_conditions = [c for c in conds if c in ('style', 'audio')]
        if 'style' in self.guiding_conditions and not self.use_style:
            raise RefError('guiding condition "style" on a model without style (upstream: '
                           '"Cannot use style guiding without enabling it!")')
        self.audio_encoder = audio_enc.build(audio_cfg, a.audio_model)
        self.audio_feature_map = nn.Linear(self.audio_encoder.config.hidden_size, a.feature_dim)
        self.start_audio_feat = nn.Parameter(torch.zeros(1, self.Lp, a.feature_dim))
        self.start_motion_feat = nn.Parameter(torch.zeros(1, self.Lp, self.dm))
        self.denoising_net = DenoisingNetwork(a)
        self.diffusion_sched = Schedule(a.n_diff_steps, a.diff_schedule)
        if 'style' in self.guiding_conditions:
            self.null_style_feat = nn.Parameter(torch.zeros(1, 1, a.d_style))
        if 'audio' in self.guiding_conditions:
            self.null_audio_feat = nn.Parameter(torch.zeros(1, 1, a.feature_dim))

    def extract_audio_feature(self, audio, frame_num, stages=None, output_attentions=False):
        return audio_enc.extract_audio_feature(self.audio_encoder, self.audio_feature_map, audio, frame_num,
                                               self.fps, stages, output_attentions)


def load_model(path, audio_heads=None):
    """(Model in eval mode, KeyReport, args as LegacyArgs) from a denoiser checkpoint."""
    obj = _load_pickle(path, "{'args', 'model', 'iter'}")
    if 'args' not in obj or 'model' not in obj:
        raise RefError(f'{path}: not a denoiser checkpoint (keys {sorted(obj)}; expected args, model, iter)')
    if not isinstance(obj['args'], argparse.Namespace):
        raise RefError(f'{path}: args is a {type(obj["args"]).__name__}, not an argparse Namespace')
    args = LegacyArgs(obj['args'])
    sd = dict(obj['model'])
    notes = []
    if sd.pop('denoising_net.TE.pe', None) is None:
        notes.append('no denoising_net.TE.pe in the checkpoint (upstream demo would raise KeyError on pop)')
    for k in ('rot_repr', 'architecture', 'audio_model', 'feature_dim', 'n_heads', 'n_layers', 'mlp_ratio',
              'n_motions', 'n_prev_motions', 'fps', 'n_diff_steps', 'diff_schedule', 'target'):
        if getattr(args, k) is None:
            raise RefError(f'{path}: args has no {k}')
    if args.style_enc_ckpt is not None and args.d_style is None:
        raise RefError(f'{path}: args has style_enc_ckpt but no d_style')
    pre = 'audio_encoder.'
    audio_sd = {k[len(pre):]: v for k, v in sd.items() if k.startswith(pre)}
    cfg = audio_enc.infer_config(audio_sd, args.audio_model, audio_heads)
    model = Model(args, cfg, audio_heads)
    audio_sd, renamed = audio_enc.respell_weight_norm(audio_sd, model.audio_encoder)
    if renamed:
        notes.append('weight-norm keys renamed to this torch\'s spelling: ' + ', '.join(pre + k for k in renamed))
    sd = {k: v for k, v in sd.items() if not k.startswith(pre)}
    sd.update({pre + k: v for k, v in audio_sd.items()})
    own = model.state_dict()
    shape_errors = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
                    for k, v in sd.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if shape_errors:
        raise RefError(f'{path}: tensor shapes do not match the args: ' + '; '.join(shape_errors[:5]))
    res = model.load_state_dict(sd, strict=False)
    missing = [k for k in res.missing_keys if k != 'denoising_net.TE.pe']
    report = KeyReport(missing, res.unexpected_keys, notes)
    model.eval()
    return model, report, args


# ------------------------------------------------------------------------------------------------
# Style encoder [§5]

class StyleEncoder(nn.Module):
    def __init__(self, args):
        super().__init__()
        self.din = motion_dim(args)
        Ds = args.feature_dim
        layer = nn.TransformerEncoderLayer(d_model=Ds, nhead=args.n_heads, dim_feedforward=args.mlp_ratio * Ds,
                                           activation='gelu', batch_first=True)
        self.PE = SinusoidPE(Ds)
        self.encoder = nn.ModuleDict({'motion_proj': nn.Linear(self.din, Ds),
                                      'transformer': nn.TransformerEncoder(layer, num_layers=args.n_layers)})

    def forward(self, m):
        """m (B, Tm, din) → (B, Ds): projection, the pe[Tm] bias on every frame, encoder, mean over frames."""
        x = self.PE(self.encoder['motion_proj'](m))
        return self.encoder['transformer'](x).mean(dim=1)


class StyleModel:
    def __init__(self, enc, args, stats):
        self.enc, self.args, self.stats = enc, args, stats
        self.n_motions = args.n_motions
        self.no_head_pose = bool(args.no_head_pose)

    @torch.no_grad()
    def extract(self, exp, pose, start=0):
        """extract_style.py StyleExtractor.extract on arrays exp (T, 50), pose (T, 6): style (Ds,) float32.
        Returns (style, number of frames used)."""
        if start < 0:
            raise RefError(f'start frame must be ≥ 0, not {start}')
        end = start + self.n_motions
        coef = {'exp': torch.from_numpy(np.asarray(exp)[start:end]).float(),
                'pose': torch.from_numpy(np.asarray(pose)[start:end]).float()}
        n = coef['exp'].shape[0]
        if n == 0 or coef['pose'].shape[0] == 0:
            raise RefError(f'no motion frames at start frame {start} (file has {len(exp)} frames)')
        if coef['pose'].shape[0] != n:
            raise RefError(f'exp and pose have different frame counts ({len(exp)} vs {len(pose)})')
        if self.stats is not None:
            coef = {k: (coef[k] - self.stats[f'{k}_mean']) / self.stats[f'{k}_std'] for k in ('exp', 'pose')}
        if self.no_head_pose:
            m = torch.cat([coef['exp'], coef['pose'][:, 3:]], -1)
        else:
            m = torch.cat([coef['exp'], coef['pose']], -1)
        m = m[:, :-2]                                          # drop jaw y, z
        style = self.enc(m.unsqueeze(0))
        return style[0].numpy(), n


def load_stats(path):
    """stats_train.npz → {name: torch tensor} (dtype as stored, like the demo)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise RefError(f'{path}: no such file')
    try:
        d = dict(np.load(str(path)))
    except Exception as e:                                   # noqa: BLE001
        raise RefError(f'{path}: not an npz file ({e})')
    need = {'exp_mean': 50, 'exp_std': 50, 'pose_mean': 6, 'pose_std': 6, 'shape_mean': 100, 'shape_std': 100}
    for k, n in need.items():
        if k not in d:
            raise RefError(f'{path}: missing array {k}')
        if d[k].shape != (n,):
            raise RefError(f'{path}: {k} has shape {d[k].shape}, expected ({n},)')
    return {k: torch.from_numpy(v) for k, v in d.items()}


def load_style_encoder(path, stats_path):
    """(StyleModel, KeyReport) from a style-encoder checkpoint and the statistics file."""
    obj = _load_pickle(path, "{'args', 'encoder', 'iter'}")
    if 'args' not in obj or 'encoder' not in obj:
        raise RefError(f'{path}: not a style-encoder checkpoint (keys {sorted(obj)}; expected args, encoder, iter)')
    args = obj['args']
    for k in SE_ARGS[:-1]:
        if not hasattr(args, k):
            raise RefError(f'{path}: args has no {k}')
    se = StyleEncoder(args)
    sd = dict(obj['encoder'])
    own = se.encoder.state_dict()
    bad = [f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
           for k, v in sd.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if bad:
        raise RefError(f'{path}: tensor shapes do not match the args: ' + '; '.join(bad[:5]))
    res = se.encoder.load_state_dict(sd, strict=False)
    se.eval()
    stats = load_stats(stats_path) if stats_path is not None else None
    return StyleModel(se, args, stats), KeyReport(res.missing_keys, res.unexpected_keys)
