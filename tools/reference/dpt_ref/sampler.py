"""Diffusion schedule, classifier-free guidance, reverse loop and windowed generation [spec §7, §8].

schedule(kind, T)                 the five buffers of upstream's DiffusionSchedule, float32 (T+1,)
Noise(seed=…) / Noise(replay=…)   the standard-normal source, recording or replaying draws
cfg_inputs(model, ...)            the stacked guidance entries of DiffTalkingHead.sample (§7.2)
sample(model, ...)                DiffTalkingHead.sample for one window (§7.3–7.4)
infer_coeffs(model, ...)          Demo.infer_coeffs: windows, carry-over, trimming, de-normalisation (§8)
"""

import math

import numpy as np
import torch

from .common import RefError


# ------------------------------------------------------------------------------------------------
# Schedule [§7.1]

def schedule(kind, T, beta_1=1e-4, beta_T=0.02, s=0.008):
    if T < 1:
        raise RefError(f'n_diff_steps must be ≥ 1, not {T}')
    if kind == 'linear':
        betas = torch.linspace(beta_1, beta_T, T)
    elif kind == 'quadratic':
        betas = torch.linspace(beta_1 ** 0.5, beta_T ** 0.5, T) ** 2
    elif kind == 'sigmoid':
        betas = torch.sigmoid(torch.linspace(-5, 5, T)) * (beta_T - beta_1) + beta_1
    elif kind == 'cosine':
        x = torch.linspace(0, T, T + 1)
        abar = torch.cos(((x / T) + s) / (1 + s) * math.pi * 0.5) ** 2
        abar = abar / abar[0]
        betas = torch.clip(1 - (abar[1:] / abar[:-1]), 0.0001, 0.999)
    else:
        raise RefError(f'unknown diffusion schedule {kind!r} (linear, quadratic, sigmoid, cosine)')
    betas = torch.cat([torch.zeros(1), betas], 0)
    alphas = 1 - betas
    log_a = torch.log(alphas)
    for i in range(1, T + 1):                      # sequential float32 running sum
        log_a[i] += log_a[i - 1]
    alpha_bars = log_a.exp()
    sigmas_flex = torch.sqrt(betas)
    inflex = torch.zeros_like(sigmas_flex)
    for i in range(1, T + 1):
        inflex[i] = ((1 - alpha_bars[i - 1]) / (1 - alpha_bars[i])) * betas[i]
    return dict(betas=betas, alphas=alphas, alpha_bars=alpha_bars, sigmas_flex=sigmas_flex,
                sigmas_inflex=torch.sqrt(inflex))


# ------------------------------------------------------------------------------------------------
# Standard-normal draws [§7.5]

class Noise:
    """Draws of standard-normal tensors in the sampler's order. Either from a torch CPU generator seeded
    with `seed` (the same stream as torch.manual_seed(seed) + torch.randn), recorded; or replayed from a
    flat float32 array (`replay`), raising when it runs out."""

    def __init__(self, seed=None, replay=None):
        self.gen = None
        self.replay = None
        if replay is not None:
            self.replay = np.ascontiguousarray(np.asarray(replay, np.float32).reshape(-1))
        else:
            self.gen = torch.Generator().manual_seed(int(seed or 0))
        self.pos = 0
        self.draws = []

    def skip_uniform(self, n):
        """Consume n scalar uniform draws (torch.rand([])) without recording them: transformers 4.44's
        HuBERT / wav2vec2 encoder draws one per layer for its LayerDrop check even in eval mode, from the
        global generator, before the sampler's first draw. Skipping them makes `seed` reproduce a demo run
        after torch.manual_seed(seed) exactly. No effect when replaying."""
        if self.gen is not None:
            for _ in range(n):
                torch.rand([], generator=self.gen)

    def randn(self, shape):
        n = int(np.prod(shape))
        if self.replay is not None:
            if self.pos + n > len(self.replay):
                raise RefError(f'noise file exhausted: a draw of {n} values needs values '
                               f'{self.pos}…{self.pos + n - 1}, the file has {len(self.replay)}')
            x = torch.from_numpy(self.replay[self.pos:self.pos + n].copy()).view(*shape)
        else:
            x = torch.randn(*shape, generator=self.gen)
        self.pos += n
        self.draws.append(x.reshape(-1).clone())
        return x

    def recorded(self):
        if not self.draws:
            return np.zeros(0, np.float32)
        return torch.cat(self.draws).numpy()


# ------------------------------------------------------------------------------------------------
# Guidance entries [§7.2]

def resolve_cfg(model, cfg_mode=None, cfg_cond=None, cfg_scale=1.15):
    """(mode, conditions, scales) as DiffTalkingHead.sample resolves them: defaults from the model,
    only audio/style kept, a scalar scale replicated, conditions+scales sorted audio → style."""
    if cfg_mode is None:
        cfg_mode = model.cfg_mode
    if cfg_mode not in ('incremental', 'independent'):
        raise RefError(f'unknown cfg_mode {cfg_mode!r}')
    if cfg_cond is None:
        cfg_cond = model.guiding_conditions
    cfg_cond = [c for c in cfg_cond if c in ('audio', 'style')]
    if not isinstance(cfg_scale, (list, tuple)):
        cfg_scale = [cfg_scale] * len(cfg_cond)
    if len(cfg_scale) != len(cfg_cond):
        raise RefError(f'{len(cfg_cond)} guidance condition(s) but {len(cfg_scale)} scale(s)')
    if cfg_cond:
        pairs = sorted(zip(cfg_cond, cfg_scale), key=lambda p: ['audio', 'style'].index(p[0]))
        cfg_cond, cfg_scale = [p[0] for p in pairs], [float(p[1]) for p in pairs]
    for c in cfg_cond:
        if not hasattr(model, f'null_{c}_feat'):
            raise RefError(f'guidance on {c} needs null_{c}_feat, which this model does not have '
                           f'(guiding_conditions = {model.args.guiding_conditions!r})')
    return cfg_mode, list(cfg_cond), list(cfg_scale)


def cfg_inputs(model, af, shape_feat, style_feat, pm, pa, ind, cfg_mode, cfg_cond):
    """Stacked inputs for one denoiser call with all entries (entry-major): dict of tensors
    af (nE·N, L, D), pf (nE·N, 1, dp), pm, pa, ind (or None), and n_entries."""
    N = af.shape[0]
    if 'style' in cfg_cond and (not model.use_style or style_feat is None):
        raise RefError('style guidance needs a style vector on a model that uses style')
    if model.use_style:
        if style_feat is None:
            if not hasattr(model, 'null_style_feat'):
                raise RefError('no style vector given and the model has no null_style_feat')
            style_feat = model.null_style_feat.expand(N, -1, -1)
    elif style_feat is not None:
        raise RefError('this model does not take a style vector')
    if shape_feat.ndim == 2:
        shape_feat = shape_feat.unsqueeze(1)
    if style_feat is not None and style_feat.ndim == 2:
        style_feat = style_feat.unsqueeze(1)
    af_null = model.null_audio_feat.expand(N, model.L, -1) if 'audio' in cfg_cond else af
    if 'style' in cfg_cond:
        pf_null = torch.cat([shape_feat, model.null_style_feat.expand(N, -1, -1)], -1)
    elif model.use_style:
        pf_null = torch.cat([shape_feat, style_feat], -1)
    else:
        pf_null = shape_feat
    A, P = [af_null], [pf_null]
    for c in cfg_cond:
        if c == 'audio':
            A.append(af)
            P.append(pf_null)
        else:
            A.append(af_null if cfg_mode == 'independent' else af)
            P.append(torch.cat([shape_feat, style_feat], -1))
    n = len(A)
    return dict(af=torch.cat(A, 0), pf=torch.cat(P, 0), pm=torch.cat([pm] * n, 0), pa=torch.cat([pa] * n, 0),
                ind=torch.cat([ind] * n, 0) if ind is not None else None, n_entries=n)


def threshold(R, L, N_rows, dynamic_threshold):
    """Dynamic thresholding on raw stacked outputs R (rows, S, dm) [§7.4]."""
    ratio, lo, hi = dynamic_threshold
    q = torch.quantile(R[:, -L:].reshape(N_rows, -1).abs(), ratio, dim=1)
    q = torch.clamp(q, min=lo, max=hi)[..., None, None]
    return torch.clamp(R, min=-q, max=q)


def combine(R, n_entries, L, cfg_mode, cfg_scale):
    """CFG combination of the chunks of R, with upstream's in-place accumulation into chunk 0
    (independent mode therefore works sequentially, §7.3 step 4)."""
    chunks = R.chunk(n_entries)
    out = chunks[0][:, -L:]
    for i in range(n_entries - 1):
        ref = chunks[0] if cfg_mode == 'independent' else chunks[i]
        out += cfg_scale[i] * (chunks[i + 1][:, -L:] - ref[:, -L:])
    return out


def update(model, x, out, t, z, flexibility=0.0):
    s = model.diffusion_sched
    alpha, abar, abar_prev = s.alphas[t], s.alpha_bars[t], s.alpha_bars[t - 1]
    sigma = s.sigma(t, flexibility)
    if model.target == 'noise':
        c0 = 1 / torch.sqrt(alpha)
        c1 = (1 - alpha) / torch.sqrt(1 - abar)
        return c0 * (x - c1 * out) + sigma * z
    c0 = (1 - abar_prev) * torch.sqrt(alpha) / (1 - abar)
    c1 = (1 - alpha) * torch.sqrt(abar_prev) / (1 - abar)
    return c0 * x + c1 * out + sigma * z


def strided_timesteps(T, S):
    """libdpt's S-step subsequence of a T-step model (not upstream): [0, τ_1, …, τ_S], τ_k = ⌈k·T/S⌉."""
    if not 1 <= S <= T:
        raise RefError(f'steps must be in 1..{T}, got {S}')
    return [0] + [-(-k * T // S) for k in range(1, S + 1)]


def ddim_update(model, x, out, t, s, z, eta):
    """libdpt's strided DDIM step t → s (not upstream; README "Fewer steps"), float32 like the C code."""
    ab = model.diffusion_sched.alpha_bars
    ab_t, ab_s = ab[t], ab[s]
    if model.target == 'noise':
        eps = out
        x0 = (x - torch.sqrt(1 - ab_t) * eps) / torch.sqrt(ab_t)
    else:
        x0 = out
        eps = (x - torch.sqrt(ab_t) * x0) / torch.sqrt(1 - ab_t)
    sigma = eta * torch.sqrt((1 - ab_s) / (1 - ab_t)) * torch.sqrt(1 - ab_t / ab_s)
    c_eps = torch.sqrt(torch.clamp(1 - ab_s - sigma * sigma, min=0))
    return torch.sqrt(ab_s) * x0 + c_eps * eps + sigma * z


@torch.no_grad()
def sample(model, af, shape_feat, style_feat, noise, pm=None, pa=None, x_T=None, ind=None, cfg_mode=None,
           cfg_cond=None, cfg_scale=1.15, flexibility=0.0, dynamic_threshold=None, on_step=None,
           steps=None, eta=0.0):
    """DiffTalkingHead.sample on precomputed window features af (N, L, D). Returns (x_0, x_T, af).
    `on_step(t, stacked, R, x_prev)` is called after every step when given. `steps` fewer than the
    model's T switches to libdpt's strided DDIM sampler with `eta` (draws as the full schedule: one
    per step but the last)."""
    N = af.shape[0]
    if af.ndim != 3 or af.shape[1] != model.L:
        raise RefError(f'audio features must be (N, {model.L}, D), got {tuple(af.shape)}')
    cfg_mode, cfg_cond, cfg_scale = resolve_cfg(model, cfg_mode, cfg_cond, cfg_scale)
    if pm is None:
        pm = model.start_motion_feat.expand(N, -1, -1)
    if pa is None:
        pa = model.start_audio_feat.expand(N, -1, -1)
    if x_T is None:
        x_T = noise.randn((N, model.L, model.dm))
    st = cfg_inputs(model, af, shape_feat, style_feat, pm, pa, ind, cfg_mode, cfg_cond)
    n_e = st['n_entries']
    x = x_T
    T = model.diffusion_sched.T
    S = T if not steps else steps
    if S != T and flexibility:
        raise RefError('flexibility applies to the full schedule only')
    tseq = strided_timesteps(T, S)
    for k in range(S, 0, -1):
        t = tseq[k]
        z = noise.randn(tuple(x_T.shape)) if k > 1 else torch.zeros_like(x_T)
        t_batch = torch.tensor([t] * N)
        R = model.denoising_net(torch.cat([x] * n_e, 0), st['af'], st['pf'], st['pm'], st['pa'],
                                torch.cat([t_batch] * n_e, 0), st['ind'])
        if dynamic_threshold:
            R = threshold(R, model.L, N * n_e, dynamic_threshold)
        R_raw = R.clone() if on_step else None
        out = combine(R, n_e, model.L, cfg_mode, cfg_scale)
        if S == T:
            x_new = update(model, x, out, t, z, flexibility)
        else:
            x_new = ddim_update(model, x, out, t, tseq[k - 1], z, eta)
        if on_step:
            on_step(t, st, R_raw, x_new)
        x = x_new
    return x, x_T, af


# ------------------------------------------------------------------------------------------------
# Windowed generation and output [§8]

def normalise_shape(model, stats, shape):
    shape = torch.as_tensor(np.asarray(shape)).float()
    if shape.ndim > 2:
        raise RefError(f'shape coefficients must be 1-D or 2-D, got shape {tuple(shape.shape)}')
    if shape.ndim == 2:
        shape = shape[0]
    if shape.shape != (100,):
        raise RefError(f'shape vector must have 100 values, got {tuple(shape.shape)}')
    return shape.clone(), (shape - stats['shape_mean']) / stats['shape_std']


def coef_dict(motion, stats, with_global_pose):
    """utils.get_coef_dict(motion, None, stats, with_global_pose, 'aa'): {'exp', 'pose'}."""
    d = {'exp': motion[..., :50]}
    if with_global_pose:
        d['pose'] = motion[..., 50:]
    else:
        d['pose'] = torch.cat([torch.zeros_like(motion[..., :3]), motion[..., -1:]], -1)
    d['pose'] = torch.cat([d['pose'], torch.zeros_like(motion[..., :2])], -1)
    d = {k: d[k] * stats[f'{k}_std'] + stats[f'{k}_mean'] for k in d}
    if not with_global_pose:
        d['pose'][..., :3] = 0
    return d


@torch.no_grad()
def infer_coeffs(model, stats, audio_feat, layout, shape, style=None, n_repetitions=1, noise=None,
                 cfg_mode=None, cfg_cond=None, cfg_scale=1.15, dynamic_threshold=None, flexibility=0.0,
                 on_window=None, steps=None, eta=0.0):
    """Demo.infer_coeffs from the whole clip's audio features (1, L_tot, D) and the window layout.
    Returns dict exp (N, F, 50), pose (N, F, 6), shape (N, F, 100), motion (N, F, dm) (normalised)."""
    if n_repetitions < 1:
        raise RefError(f'n_repetitions must be ≥ 1, not {n_repetitions}')
    N, L, Lp = n_repetitions, model.L, model.Lp
    n_sub, n_pad_frames = layout['n_sub'], layout['n_pad_frames']
    if audio_feat.ndim == 2:
        audio_feat = audio_feat.unsqueeze(0)
    if audio_feat.shape[1] != L * n_sub or audio_feat.shape[2] != model.D:
        raise RefError(f'audio features have shape {tuple(audio_feat.shape[1:])}, expected ({L * n_sub}, {model.D})')
    original_shape, shape_n = normalise_shape(model, stats, shape)
    shape_n = shape_n.unsqueeze(0).expand(N, -1)
    style_feat = None
    if style is not None:
        if not model.use_style:
            raise RefError('this model does not take a style vector')
        style_feat = torch.as_tensor(np.asarray(style)).float()
        if style_feat.ndim != 1 or style_feat.shape[0] != model.args.d_style:
            raise RefError(f'style vector must be ({model.args.d_style},), got {tuple(style_feat.shape)}')
        style_feat = style_feat.unsqueeze(0).expand(N, -1)
    noise = noise or Noise(seed=0)
    out, pm, pa, x_T = [], None, None, None
    for w in range(n_sub):
        s, e = w * L, w * L + L
        ind = torch.ones((N, L)) if model.args.use_indicator else None
        if ind is not None and w == n_sub - 1 and n_pad_frames > 0:
            ind[:, -n_pad_frames:] = 0
        af = audio_feat[:, s:e].expand(N, -1, -1)
        x0, x_T, af_used = sample(model, af, shape_n, style_feat, noise, pm, pa, x_T, ind, cfg_mode, cfg_cond,
                                  cfg_scale, flexibility, dynamic_threshold, steps=steps, eta=eta)
        pm = x0[:, -Lp:].clone()
        pa = af_used[:, -Lp:]
        m = x0
        if w == n_sub - 1 and n_pad_frames > 0:
            m = m[:, :-n_pad_frames]
        if on_window:
            on_window(w, x0)
        out.append(m)
    motion = torch.cat(out, 1)
    d = coef_dict(motion, stats, not model.args.no_head_pose)
    d['shape'] = original_shape[None, None].expand(N, motion.shape[1], -1)
    d['motion'] = motion
    return d
