"""Helpers of the style-encoder / denoiser / sampler parity tests (test_denoiser_parity.py,
test_sampler_parity.py).

* cached_model(size, **options): random checkpoints (helpers.cached_checkpoints) exported to a .dpt,
  cached under TESTDATA/dpt-<key>/model.dpt (the same key as helpers_hubert.cached_model: shared cache).
* harness(*args): run build/tests/harness_denoiser, return its stdout (raises with stderr on failure).
* The PyTorch reference (tools/reference, README there): ref_model (dpt_ref model + stats + style encoder),
  ref_forward_inputs (one step's stacked guidance entries), ref_denoise, ref_style, ref_schedule,
  ref_generate (Demo.infer_coeffs from audio features with recorded draws, cached under
  TESTDATA/gen-ref-<key>/).
* max_rel_err(c, ref): max|c − ref| / max|ref|.
"""

import pathlib
import subprocess
import time

import numpy as np

import helpers

HARNESS = helpers.BUILD / 'tests' / 'harness_denoiser'
RUN_REFERENCE = helpers.ROOT / 'tools' / 'reference' / 'run_reference.py'
REF_PKG = helpers.ROOT / 'tools' / 'reference' / 'dpt_ref'
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
# The PyTorch reference (tools/reference: dpt_ref, the package behind run_reference.py), in process so
# a loaded official-size model is reused across calls.

def _ref():
    import dpt_ref
    import torch
    torch.set_num_threads(2)
    return dpt_ref


class RefModel:
    """dpt_ref's model, statistics and style encoder of a checkpoint set, with the sizes the tests need."""

    def __init__(self, ck):
        dpt_ref = _ref()
        self.model, report, self.args = dpt_ref.load_model(str(ck['denoiser']))
        assert report.ok, report.as_dict()
        self.stats = dpt_ref.load_stats(str(ck['stats']))
        m, a = self.model, self.args
        self.L, self.Lp, self.D, self.dm, self.T = m.L, m.Lp, m.D, m.dm, a.n_diff_steps
        self.dp = m.denoising_net.person_proj.in_features
        self.use_style = m.use_style
        self.conds = list(m.guiding_conditions)
        self.cfg_mode = m.cfg_mode
        self.kind = a.diff_schedule
        self.sched = {k: getattr(m.diffusion_sched, k).numpy() for k in
                      ('betas', 'alphas', 'alpha_bars', 'sigmas_flex', 'sigmas_inflex')}
        self.se = None
        if ck.get('style_encoder'):
            self.se, report = dpt_ref.load_style_encoder(str(ck['style_encoder']), str(ck['stats']))
            assert report.ok, report.as_dict()


_MODELS = {}


def ref_model(ck):
    key = str(ck['denoiser'])
    if key not in _MODELS:
        _MODELS[key] = RefModel(ck)
    return _MODELS[key]


def ref_forward_inputs(rm, N, t, seed, cfg_mode=None, cfg_cond=None):
    """Inputs of one sampler step with every guidance entry stacked entry-major (dpt_ref.cfg_inputs):
    {x, af, pf (B,1,dp), pm, pa, t, ind} as float32 arrays, and the number of entries."""
    import torch
    dpt_ref = _ref()
    g = np.random.default_rng(seed)
    L, Lp, D, dm = rm.L, rm.Lp, rm.D, rm.dm
    f = lambda *shape: torch.from_numpy(g.standard_normal(shape).astype(np.float32))
    x, pm = f(N, L, dm), f(N, Lp, dm)
    pa, af, shape_n = f(1, Lp, D).expand(N, -1, -1), f(1, L, D).expand(N, -1, -1), f(1, 100).expand(N, -1)
    style = (0.5 * f(1, rm.dp - 100)).expand(N, -1) if rm.use_style else None
    ind = torch.ones(N, L)
    ind[:, -3:] = 0                                                    # a padded tail, as in a last window
    mode, cond, _ = dpt_ref.resolve_cfg(rm.model, cfg_mode, cfg_cond)
    st = dpt_ref.cfg_inputs(rm.model, af, shape_n, style, pm, pa,
                            ind if rm.args.use_indicator else None, mode, cond)
    ne = st['n_entries']
    out = dict(x=torch.cat([x] * ne), af=st['af'], pf=st['pf'], pm=st['pm'], pa=st['pa'],
               t=torch.full((N * ne,), float(t)), ind=torch.cat([ind] * ne))
    return {k: v.contiguous().numpy().astype(np.float32) for k, v in out.items()}, ne


def ref_denoise(ck, inputs):
    """DenoisingNetwork.forward on inputs {x, af, pf, pm, pa, t, ind}: (B, Lp + L, dm)."""
    import torch
    rm = ref_model(ck)
    T = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
    B = T['x'].shape[0]
    with torch.no_grad():
        return rm.model.denoising_net(T['x'], T['af'], T['pf'].view(B, 1, -1), T['pm'], T['pa'], T['t'].long(),
                                      T['ind'] if rm.args.use_indicator else None).numpy()


def ref_style(ck, exp, pose, start):
    style, _ = ref_model(ck).se.extract(exp, pose, start)
    return style


def ref_schedule(kind, T):
    return {k: v.numpy() for k, v in _ref().schedule(kind, T).items()}


def ref_generate(ck, feats, n_samples, shape, style, N=1, seed=0, cfg_mode=None, cfg_cond=None,
                 scale_audio=1.15, scale_style=3.0, dt=None, flexibility=0.0, steps=None, eta=0.0):
    """Demo.infer_coeffs from whole-clip features (L_tot, D): (exp (N,F,50), pose (N,F,6), path of the
    recorded draws). Cached on disk (TESTDATA/gen-ref-<key>/)."""
    params = dict(ckpt=ck['dir'].name, n_samples=n_samples, N=N, seed=seed, cfg_mode=cfg_mode, cfg_cond=cfg_cond,
                  scale_audio=scale_audio, scale_style=scale_style, dt=dt, flexibility=flexibility,
                  **({'steps': steps, 'eta': eta} if steps else {}),
                  feats=_digest(feats), shape=_digest(shape), style=_digest(style))

    def build(tmp):
        import torch
        dpt_ref = _ref()
        rm = ref_model(ck)
        conds = rm.conds if cfg_cond is None else list(cfg_cond)
        scales = [scale_audio if c == 'audio' else scale_style for c in conds]  # as demo.py's main
        layout = dpt_ref.window_layout(n_samples, rm.args.fps, rm.L)
        noise = dpt_ref.Noise(seed=seed)
        t0 = time.perf_counter()
        out = dpt_ref.infer_coeffs(rm.model, rm.stats, torch.from_numpy(np.asarray(feats, np.float32)), layout,
                                   shape, style, n_repetitions=N, noise=noise, cfg_mode=cfg_mode, cfg_cond=conds,
                                   cfg_scale=scales, dynamic_threshold=tuple(dt) if dt else None,
                                   flexibility=flexibility, steps=steps, eta=eta)
        (tmp / 'seconds.txt').write_text(f'{time.perf_counter() - t0:.3f}\n')   # sampling only
        np.save(tmp / 'exp.npy', out['exp'].numpy())
        np.save(tmp / 'pose.npy', out['pose'].numpy())
        np.save(tmp / 'draws.npy', noise.recorded())

    d = ref_cached('gen-ref', params, build)
    return np.load(d / 'exp.npy'), np.load(d / 'pose.npy'), d / 'draws.npy'


def ref_seconds(draws_path):
    """Sampling time of the cached reference run that recorded `draws_path` (when it was built)."""
    return float((draws_path.parent / 'seconds.txt').read_text())


def _digest(a):
    import hashlib
    if a is None:
        return None
    return hashlib.sha256(np.ascontiguousarray(a, np.float32).tobytes()).hexdigest()[:16]


def ref_cached(kind, params, build):
    """Directory TESTDATA/<kind>-<key>/ holding reference outputs made by build(tmp); the key covers the
    reference's sources."""
    sources = [pathlib.Path(__file__), RUN_REFERENCE] + sorted(REF_PKG.glob('*.py'))
    return helpers.cached_dir(kind, params, build, sources=sources)
