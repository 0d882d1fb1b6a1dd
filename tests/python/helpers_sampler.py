"""Helpers of the style-encoder / denoiser / sampler parity tests (test_denoiser_parity.py,
test_sampler_parity.py).

* cached_model(size, **options): random checkpoints (helpers.cached_checkpoints) exported to a .dpt,
  cached under TESTDATA/dpt-<key>/model.dpt (the same key as helpers_hubert.cached_model: shared cache).
* harness(*args): run build/tests/harness_denoiser, return its stdout (raises with stderr on failure).
* Reference computations (PyTorch, upstream semantics), each cached under TESTDATA/<kind>-<key>/:
  ref_style, ref_denoise, ref_schedule, ref_generate. They use tools/reference/run_reference.py when it
  exists (see tools/reference/README.md) and the local implementation below otherwise.
* max_rel_err(c, ref): max|c − ref| / max|ref|.
"""

import json
import math
import pathlib
import subprocess
import sys

import numpy as np

import helpers

HARNESS = helpers.BUILD / 'tests' / 'harness_denoiser'
RUN_REFERENCE = helpers.ROOT / 'tools' / 'reference' / 'run_reference.py'
EXPORT = helpers.ROOT / 'tools' / 'export.py'


def max_rel_err(c, ref):
    c, ref = np.asarray(c, np.float64), np.asarray(ref, np.float64)
    assert c.shape == ref.shape, (c.shape, ref.shape)
    scale = np.abs(ref).max()
    return float(np.abs(c - ref).max() / (scale if scale > 0 else 1.0))


def cached_model(size='tiny', seed=0, **options):
    """(path of the exported .dpt, checkpoint paths dict)."""
    ck = helpers.cached_checkpoints(size, seed, **options)

    def build(tmp):
        cmd = [helpers.PYTHON, str(EXPORT), '--dpt', str(ck['denoiser']), '--stats', str(ck['stats']),
               '-o', str(tmp / 'model.dpt')]
        if ck['style_encoder']:
            cmd += ['--style-encoder', str(ck['style_encoder'])]
        subprocess.run(cmd, check=True, capture_output=True)

    d = helpers.cached_dir('dpt', dict(ckpt=ck['dir'].name), build, sources=[EXPORT])
    return d / 'model.dpt', ck


def harness(*args, check=True):
    r = subprocess.run([str(HARNESS)] + [str(a) for a in args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f'harness_denoiser {args[0]} failed ({r.returncode}): {r.stderr.strip()}')
    return r


def parse_kv(stdout):
    out = {}
    for line in stdout.splitlines():
        k, _, v = line.partition(' ')
        out[k] = v
    return out


# ------------------------------------------------------------------------------------------------
# Local PyTorch reference: upstream's modules (torch.nn layers with the checkpoint's weights) and the
# sampling loop of DiffTalkingHead.sample / Demo.infer_coeffs, written from spec §5–§8.

def _torch():
    import torch
    torch.set_num_threads(2)
    return torch


def _sinusoid(d, max_len):
    import make_checkpoints as mc
    return mc.sinusoid_table(d, max_len)[0]


def _args_get(args, key):
    """NullableArgs lookup (spec §1.2 legacy names)."""
    d = vars(args)
    if key in d:
        return d[key]
    if key == 'align_mask_width':
        return 1 if d.get('use_alignment_mask') else 0
    if key == 'no_head_pose':
        return not d.get('predict_head_pose') if 'predict_head_pose' in d else True
    if key == 'no_use_learnable_pe':
        return not d.get('use_learnable_pe') if 'use_learnable_pe' in d else True
    return None


class LocalModel:
    """Denoiser + schedule + statistics (+ style encoder) of a checkpoint set."""

    def __init__(self, ck):
        torch = _torch()
        nn = torch.nn
        obj = torch.load(str(ck['denoiser']), map_location='cpu')
        a, sd = obj['args'], obj['model']
        self.a, self.sd = a, sd
        g = lambda k: _args_get(a, k)
        D = self.D = g('feature_dim')
        self.L, self.Lp, self.T = g('n_motions'), g('n_prev_motions'), g('n_diff_steps')
        self.dm = 50 + (1 if g('no_head_pose') else 4)
        self.no_head_pose = bool(g('no_head_pose'))
        self.use_ind = bool(g('use_indicator'))
        self.use_style = g('style_enc_ckpt') is not None
        self.target = g('target')
        self.cfg_mode = g('cfg_mode')
        conds = g('guiding_conditions')
        self.conds = [c for c in (conds.split(',') if conds else []) if c in ('audio', 'style')]
        self.step_map = nn.Sequential(nn.Linear(D, D), nn.GELU(), nn.Linear(D, D))
        dp = sd['denoising_net.person_proj.weight'].shape[1]
        self.dp = dp
        self.person_proj = nn.Linear(dp, D)
        self.feature_proj = nn.Linear(self.dm + (1 if self.use_ind else 0), D)
        layer = nn.TransformerDecoderLayer(d_model=D, nhead=g('n_heads'), dim_feedforward=g('mlp_ratio') * D,
                                           activation='gelu', batch_first=True)
        self.transformer = nn.TransformerDecoder(layer, num_layers=g('n_layers'))
        self.motion_dec = nn.Sequential(nn.Linear(D, D // 2), nn.GELU(), nn.Linear(D // 2, self.dm))
        for name, mod in (('diff_step_map', self.step_map), ('person_proj', self.person_proj),
                          ('feature_proj', self.feature_proj), ('transformer', self.transformer),
                          ('motion_dec', self.motion_dec)):
            pre = f'denoising_net.{name}.'
            mod.load_state_dict({k[len(pre):]: v for k, v in sd.items() if k.startswith(pre)})
            mod.eval()
        self.pe = sd['denoising_net.PE'] if 'denoising_net.PE' in sd else None
        self.pe_table = _sinusoid(D, 600)
        self.te = _sinusoid(D, self.T + 1)
        self.mask = sd.get('denoising_net.alignment_mask')
        self.sched = {k: sd['diffusion_sched.' + k] for k in
                      ('betas', 'alphas', 'alpha_bars', 'sigmas_flex', 'sigmas_inflex')}
        self.stats = {k: torch.from_numpy(v) for k, v in np.load(ck['stats']).items()}
        self.se = None
        if ck.get('style_encoder'):
            se = torch.load(str(ck['style_encoder']), map_location='cpu')
            sa, esd = se['args'], se['encoder']
            Ds = sa.feature_dim
            din = 50 + (1 if sa.no_head_pose else 4)
            enc_layer = nn.TransformerEncoderLayer(d_model=Ds, nhead=sa.n_heads, dim_feedforward=sa.mlp_ratio * Ds,
                                                   activation='gelu', batch_first=True)
            self.se = nn.ModuleDict({'motion_proj': nn.Linear(din, Ds),
                                     'transformer': nn.TransformerEncoder(enc_layer, num_layers=sa.n_layers)})
            self.se.load_state_dict(esd)
            self.se.eval()
            self.se_args = sa

    def denoise(self, x, af, pf, pm, pa, t, ind):
        """DenoisingNetwork.forward: (B, S, dm)."""
        torch = _torch()
        with torch.no_grad():
            e = self.step_map(self.te[t]).unsqueeze(1)
            p = self.person_proj(pf) + e
            z = torch.cat([pm, x], 1)
            if self.use_ind:
                ii = torch.cat([torch.zeros(ind.shape[0], self.Lp), ind], 1).unsqueeze(-1)
                z = torch.cat([z, ii], -1)
            u = torch.cat([p, self.feature_proj(z)], 1)
            u = u + self.pe if self.pe is not None else u + self.pe_table[u.shape[1]]
            y = self.transformer(u, torch.cat([pa, af], 1), memory_mask=self.mask)
            return self.motion_dec(y[:, 1:])

    def style(self, exp, pose, start):
        """extract_style.py: style vector (Ds,)."""
        torch = _torch()
        st, sa = self.stats, self.se_args
        n = sa.n_motions
        e = torch.from_numpy(np.asarray(exp[start:start + n], np.float32))
        p = torch.from_numpy(np.asarray(pose[start:start + n], np.float32))
        e = (e - st['exp_mean']) / st['exp_std']
        p = (p - st['pose_mean']) / st['pose_std']
        m = torch.cat([e, p], -1) if not sa.no_head_pose else torch.cat([e, p[:, 3:]], -1)
        m = m[:, :-2].unsqueeze(0)
        with torch.no_grad():
            x = self.se['motion_proj'](m)
            x = x + _sinusoid(x.shape[-1], 600)[x.shape[1]]
            x = self.se['transformer'](x)
        return x.mean(1)[0].numpy()


def _cfg_entries(lm, N, af, shape_n, style, cfg_cond, cfg_mode):
    """(audio (n_e·N, L, D), person (n_e·N, 1, dp)) as DiffTalkingHead.sample stacks them."""
    torch = _torch()
    sd = lm.sd
    sf = None
    if lm.use_style:
        sf = style.expand(N, 1, -1) if style is not None else sd['null_style_feat'].expand(N, -1, -1)
    af0 = sd['null_audio_feat'].expand(N, lm.L, -1) if 'audio' in cfg_cond else af
    if 'style' in cfg_cond:
        p0 = torch.cat([shape_n, sd['null_style_feat'].expand(N, -1, -1)], -1)
    else:
        p0 = torch.cat([shape_n, sf], -1) if lm.use_style else shape_n
    A, P = [af0], [p0]
    for c in cfg_cond:
        if c == 'audio':
            A.append(af)
            P.append(p0)
        else:
            A.append(af0 if cfg_mode == 'independent' else af)
            P.append(torch.cat([shape_n, sf], -1))
    return torch.cat(A), torch.cat(P), len(A)


def local_generate(lm, feats, n_samples, shape, style, N=1, cfg_mode=None, cfg_cond=None, scale_audio=1.15,
                   scale_style=3.0, dt=None, flexibility=0.0, seed=0):
    """Demo.infer_coeffs from precomputed audio features (L_tot, D): returns (exp, pose, draws)."""
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    draws = []

    def randn(shape_):
        x = torch.randn(*shape_, generator=gen)
        draws.append(x.flatten().clone())
        return x

    L, Lp, dm, T = lm.L, lm.Lp, lm.dm, lm.T
    cfg_mode = cfg_mode or lm.cfg_mode
    cfg_cond = lm.conds if cfg_cond is None else cfg_cond
    cfg_cond = sorted(cfg_cond, key=['audio', 'style'].index)
    sc = {'audio': scale_audio, 'style': scale_style}
    scales = [sc[c] for c in cfg_cond]
    fps = _args_get(lm.a, 'fps')
    unit = 16000 / fps
    clip_len = int(n_samples / 16000 * fps)
    n_sub = 1 if clip_len <= L else math.ceil(clip_len / L)
    n_pad = round(unit * L) * n_sub - n_samples
    n_pad_frames = math.ceil(n_pad / unit)
    feats = torch.from_numpy(np.asarray(feats, np.float32)).unsqueeze(0)
    assert feats.shape[1] == L * n_sub
    st = lm.stats
    shape_t = torch.from_numpy(np.asarray(shape, np.float32))
    shape_n = ((shape_t - st['shape_mean']) / st['shape_std']).unsqueeze(0).expand(N, -1).unsqueeze(1)
    style_t = torch.from_numpy(np.asarray(style, np.float32)).view(1, 1, -1) if style is not None else None
    s = lm.sched
    outs = []
    pm = lm.sd['start_motion_feat'].expand(N, -1, -1)
    pa = lm.sd['start_audio_feat'].expand(N, -1, -1)
    with torch.no_grad():
        for w in range(n_sub):
            ind = torch.ones(N, L) if lm.use_ind else None
            if ind is not None and w == n_sub - 1 and n_pad_frames > 0:
                ind[:, -n_pad_frames:] = 0
            af = feats[:, w * L:(w + 1) * L].expand(N, -1, -1)
            if w == 0:
                xT = randn((N, L, dm))
            A, P, ne = _cfg_entries(lm, N, af, shape_n, style_t, cfg_cond, cfg_mode)
            PM, PA = torch.cat([pm] * ne), torch.cat([pa] * ne)
            IND = torch.cat([ind] * ne) if ind is not None else None
            x = xT
            for t in range(T, 0, -1):
                z = randn((N, L, dm)) if t > 1 else torch.zeros(N, L, dm)
                al, ab, abp = s['alphas'][t], s['alpha_bars'][t], s['alpha_bars'][t - 1]
                sg = s['sigmas_flex'][t] * flexibility + s['sigmas_inflex'][t] * (1 - flexibility)
                R = lm.denoise(torch.cat([x] * ne), A, P, PM, PA, torch.tensor([t] * (N * ne)), IND)
                if dt:
                    q = torch.quantile(R[:, -L:].reshape(N * ne, -1).abs(), dt[0], dim=1)
                    q = torch.clamp(q, min=dt[1], max=dt[2])[..., None, None]
                    R = torch.clamp(R, min=-q, max=q)
                R = R.chunk(ne)
                tt = R[0][:, -L:]
                for i in range(ne - 1):
                    ref = R[0] if cfg_mode == 'independent' else R[i]
                    tt += scales[i] * (R[i + 1][:, -L:] - ref[:, -L:])
                if lm.target == 'noise':
                    x = 1 / torch.sqrt(al) * (x - (1 - al) / torch.sqrt(1 - ab) * tt) + sg * z
                else:
                    c0 = (1 - abp) * torch.sqrt(al) / (1 - ab)
                    c1 = (1 - al) * torch.sqrt(abp) / (1 - ab)
                    x = c0 * x + c1 * tt + sg * z
            pm = x[:, -Lp:].clone()
            pa = af[:, -Lp:]
            if w == n_sub - 1 and n_pad_frames > 0:
                x = x[:, :-n_pad_frames]
            outs.append(x)
    M = torch.cat(outs, 1)
    exp = M[..., :50] * st['exp_std'] + st['exp_mean']
    p4 = torch.cat([torch.zeros(*M.shape[:2], 3), M[..., 50:51]], -1) if lm.no_head_pose else M[..., 50:54]
    pose = torch.cat([p4, torch.zeros(*M.shape[:2], 2)], -1) * st['pose_std'] + st['pose_mean']
    if lm.no_head_pose:
        pose[..., :3] = 0
    return exp.numpy(), pose.numpy(), torch.cat(draws).numpy()


# ------------------------------------------------------------------------------------------------
# Cached reference computations

def _use_run_reference():
    return RUN_REFERENCE.exists()


def ref_cached(kind, params, build):
    """Directory TESTDATA/<kind>-<key>/ holding the reference outputs made by build(tmp)."""
    sources = [pathlib.Path(__file__)]
    if _use_run_reference():
        sources.append(RUN_REFERENCE)
    return helpers.cached_dir(kind, params, build, sources=sources)


_LOCAL = {}


def local_model(ck):
    key = str(ck['denoiser'])
    if key not in _LOCAL:
        _LOCAL[key] = LocalModel(ck)
    return _LOCAL[key]


def ref_denoise(ck, inputs):
    """DenoisingNetwork.forward on inputs {x, af, pf (B,1,dp), pm, pa, t, ind?}: (B, S, dm)."""
    torch = _torch()
    lm = local_model(ck)
    T = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
    return lm.denoise(T['x'], T['af'], T['pf'].view(T['x'].shape[0], 1, -1), T['pm'], T['pa'],
                      T['t'].long(), T.get('ind')).numpy()


def ref_style(ck, exp, pose, start):
    return local_model(ck).style(exp, pose, start)


def ref_schedule(kind, T):
    import make_checkpoints as mc
    return {k: v.numpy() for k, v in mc.diffusion_schedule(T, kind).items()}


def ref_generate(ck, feats, n_samples, shape, style, **opts):
    """(exp (N,F,50), pose (N,F,6), draws flat) — cached on disk for official-size runs."""
    params = dict(ckpt=ck['dir'].name, n_samples=n_samples, opts=opts,
                  feats=_digest(feats), shape=_digest(shape), style=_digest(style))

    def build(tmp):
        exp, pose, draws = local_generate(local_model(ck), feats, n_samples, shape, style, **opts)
        np.save(tmp / 'exp.npy', exp)
        np.save(tmp / 'pose.npy', pose)
        np.save(tmp / 'draws.npy', draws)

    d = ref_cached('gen-ref', params, build)
    return np.load(d / 'exp.npy'), np.load(d / 'pose.npy'), d / 'draws.npy'


def _digest(a):
    import hashlib
    if a is None:
        return None
    return hashlib.sha256(np.ascontiguousarray(a, np.float32).tobytes()).hexdigest()[:16]
