#!/usr/bin/env python3
"""PyTorch reference of DiffPoseTalk inference: run one stage on given inputs and dump its tensors.

    run_reference.py info           --ckpt D.pt [--se SE.pt]
    run_reference.py frontend       (--audio F | --samples S.npy [--rate R]) (--ckpt D.pt | --fps/--n-motions/--pad-mode) -o DIR
    run_reference.py audio-features --ckpt D.pt (--audio F | --samples S.npy [--rate R]) -o DIR
    run_reference.py style          --se SE.pt --stats ST.npz --motion M.npz [--start N] -o STYLE.npy
    run_reference.py denoise        --ckpt D.pt --inputs IN.npz -o OUT.npy
    run_reference.py cfg-step       --ckpt D.pt --stats ST.npz (--audio-window AW.npy | --audio-features AF.npy
                                    --window W) --shape SHAPE.npy [--style S.npy] --t 1,250,500 ... -o DIR
    run_reference.py schedule       --kind K --T N -o DIR   (or --ckpt D.pt: the checkpoint's buffers)
    run_reference.py generate       --ckpt D.pt --stats ST.npz (--audio F | --samples S.npy | --audio-features AF.npy
                                    --n-samples N) --shape SHAPE.npy [--style S.npy | --se SE.pt --style-motion M.npz]
                                    [--n-rep N] [--seed S] [--record-draws D.npy | --noise-from D.npy] -o OUT

Every file, shape and option is documented in tools/reference/README.md. Bad input ends with one line on
stderr and exit status 1.
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import dpt_ref  # noqa: E402
from dpt_ref import RefError  # noqa: E402
from dpt_ref import sampler as smp  # noqa: E402

torch.set_grad_enabled(False)


# ------------------------------------------------------------------------------------------------
# helpers

def save(path, array):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(array, torch.Tensor):
        array = array.detach().numpy()
    np.save(path, np.ascontiguousarray(array, dtype=np.float32))


def write_json(path, obj):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, default=str) + '\n')


def load_array(path, key=None, what='array'):
    """npy → array; npz → its `key` array (the demo's convention for shape/style files)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise RefError(f'{path}: no such file')
    try:
        obj = np.load(str(path))
    except Exception as e:                                       # noqa: BLE001
        raise RefError(f'{path}: not a NumPy .npy/.npz file ({e})')
    if not isinstance(obj, np.ndarray):
        if key is None or key not in obj.files:
            raise RefError(f'{path}: npz without a {key!r} array ({what})')
        obj = obj[key]
    return obj


def load_model(a):
    model, report, args = dpt_ref.load_model(a.ckpt, getattr(a, 'audio_heads', None))
    check_report(report, a.ckpt, a)
    model.key_report = report
    return model, args


def check_report(report, path, a):
    for note in report.notes:
        print(f'run_reference: {path}: note: {note}', file=sys.stderr)
    if not report.ok:
        msg = report.message(str(path))
        if getattr(a, 'allow_key_mismatch', False):
            print(f'run_reference: warning: {msg} (loaded with strict=False as upstream does)', file=sys.stderr)
        else:
            raise RefError(msg + ' (use --allow-key-mismatch to load anyway, as upstream\'s strict=False would)')


def read_samples(a):
    """(samples float32 at 16 kHz, native rate, source description)."""
    if getattr(a, 'audio', None):
        y, sr = dpt_ref.load_audio(a.audio)
        return y, sr
    y = load_array(a.samples, what='samples')
    if y.ndim != 1:
        raise RefError(f'{a.samples}: samples must be 1-D, got shape {y.shape}')
    if y.dtype != np.float32:
        raise RefError(f'{a.samples}: samples must be float32, not {y.dtype}')
    rate = a.rate or 16000
    return dpt_ref.resample_to_16k(y, rate), rate


def layout_json(lay):
    return {k: lay[k] for k in ('n_samples', 'fps', 'n_motions', 'clip_len', 'n_sub', 'n_pad', 'n_pad_frames',
                                'L_tot', 'n_out', 'n_padded')}


def parse_cond(text):
    if text is None:
        return None
    if text.strip().lower() in ('', 'none'):
        return []
    conds = [c.strip() for c in text.split(',') if c.strip()]
    for c in conds:
        if c not in ('audio', 'style'):
            raise RefError(f'unknown guidance condition {c!r} (audio, style)')
    return conds


def cfg_options(model, a):
    """(cfg_mode, cfg_cond, cfg_scale list) the way demo.py's main builds them (scales per given
    condition, before the sampler sorts them)."""
    cond = parse_cond(a.cfg_cond)
    if cond is None:
        cond = list(model.guiding_conditions)
    scale = [a.scale_audio if c == 'audio' else a.scale_style for c in cond]
    return a.cfg_mode, cond, scale


def dynamic_threshold(a):
    return (a.dtr, a.dt_min, a.dt_max) if a.dtr > 0 else None


def style_input(a, model):
    """Style vector (ds,) or None, from --style or --style-motion."""
    if getattr(a, 'style', None) and getattr(a, 'style_motion', None):
        raise RefError('give --style or --style-motion, not both')
    if getattr(a, 'style', None):
        s = load_array(a.style, 'style', 'style vector').astype(np.float32)
        if s.ndim != 1:
            raise RefError(f'{a.style}: style vector must be 1-D, got shape {s.shape}')
        return s
    if getattr(a, 'style_motion', None):
        if not a.se:
            raise RefError('--style-motion needs --se (style-encoder checkpoint)')
        se, report = dpt_ref.load_style_encoder(a.se, a.se_stats or a.stats)
        check_report(report, a.se, a)
        m = np.load(str(a.style_motion))
        s, n = se.extract(m['exp'], m['pose'], a.style_start)
        if n < se.n_motions:
            print(f'run_reference: warning: {a.style_motion}: {n} frames from {a.style_start} '
                  f'(fewer than n_motions = {se.n_motions})', file=sys.stderr)
        return s
    return None


def audio_features(model, a, stages=None):
    """(audio_feat (L_tot, D) tensor, layout) from --audio/--samples or --audio-features + --n-samples."""
    if getattr(a, 'audio_features', None):
        if not a.n_samples:
            raise RefError('--audio-features needs --n-samples (length of the 16 kHz clip, for the window layout)')
        af = torch.from_numpy(load_array(a.audio_features, what='audio features').astype(np.float32))
        while af.ndim > 2 and af.shape[0] == 1:
            af = af[0]
        lay = dpt_ref.window_layout(a.n_samples, model.fps, model.L)
        if af.ndim != 2 or af.shape != (lay['L_tot'], model.D):
            raise RefError(f'{a.audio_features}: shape {tuple(af.shape)}, expected ({lay["L_tot"]}, {model.D}) '
                           f'for {a.n_samples} samples')
        return af, lay
    y, _ = read_samples(a)
    norm, padded, lay = dpt_ref.prepare(y, model.fps, model.L, model.pad_mode)
    feat = model.extract_audio_feature(padded[None], lay['L_tot'], stages=stages,
                                       output_attentions=getattr(a, 'output_attentions', False))
    if stages is not None:
        stages.update(samples16k=y, normalised=norm, padded=padded)
    return feat[0], lay


# ------------------------------------------------------------------------------------------------
# commands

def cmd_info(a):
    a.allow_key_mismatch = True
    model, args = load_model(a)
    report = model.key_report
    out = dict(args=args.resolved(dpt_ref.models.MODEL_ARGS), dm=model.dm, use_style=model.use_style,
               guiding_conditions=model.guiding_conditions, audio_config=dict(model.audio_encoder.config.to_dict()),
               keys=report.as_dict(), n_params=sum(p.numel() for p in model.parameters()))
    out['audio_config'] = {k: out['audio_config'][k] for k in (
        'model_type', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'conv_dim',
        'conv_kernel', 'conv_stride', 'conv_bias', 'feat_extract_norm', 'num_conv_pos_embeddings',
        'num_conv_pos_embedding_groups', 'layer_norm_eps', 'do_stable_layer_norm', 'mask_time_prob')
        if k in out['audio_config']}
    out['audio_config']['feat_proj_layer_norm'] = getattr(model.audio_encoder.config, 'feat_proj_layer_norm', True)
    if a.se:
        se, rep = dpt_ref.load_style_encoder(a.se, None)
        out['style_encoder'] = dict(args={k: getattr(se.args, k, None) for k in dpt_ref.models.SE_ARGS},
                                    keys=rep.as_dict())
    print(json.dumps(out, indent=1, default=str))


def _frontend_params(a):
    if a.ckpt:
        obj = torch.load(str(a.ckpt), map_location='cpu')
        args = dpt_ref.LegacyArgs(obj['args'])
        fps, L, pad = args.fps, args.n_motions, args.pad_mode
    else:
        fps, L, pad = 25, 100, 'zero'
    return (a.fps or fps, a.n_motions or L, a.pad_mode or pad)


def cmd_frontend(a):
    fps, L, pad = _frontend_params(a)
    y, sr = read_samples(a)
    norm, padded, lay = dpt_ref.prepare(y, fps, L, pad)
    out = pathlib.Path(a.output)
    save(out / 'samples16k.npy', y)
    save(out / 'normalised.npy', norm)
    save(out / 'padded.npy', padded)
    j = layout_json(lay)
    j.update(native_rate=sr, pad_mode=pad)
    write_json(out / 'layout.json', j)


def cmd_audio_features(a):
    model, _ = load_model(a)
    stages = None if a.no_stages else {}
    t0 = time.time()
    feat, lay = audio_features(model, a, stages)
    out = pathlib.Path(a.output)
    if stages is not None:
        for k, v in stages.items():
            save(out / f'{k}.npy', v)
    save(out / 'audio_feat.npy', feat)
    j = layout_json(lay)
    j.update(seconds=round(time.time() - t0, 3))
    write_json(out / 'layout.json', j)


def cmd_style(a):
    se, report = dpt_ref.load_style_encoder(a.se, a.stats)
    check_report(report, a.se, a)
    path = pathlib.Path(a.motion)
    if not path.exists():
        raise RefError(f'{path}: no such file')
    try:
        m = np.load(str(path))
        exp, pose = m['exp'], m['pose']
    except Exception as e:                                       # noqa: BLE001
        raise RefError(f'{path}: not a motion npz with exp and pose arrays ({e})')
    if exp.ndim != 2 or exp.shape[1] != 50 or pose.ndim != 2 or pose.shape[1] != 6:
        raise RefError(f'{path}: exp {exp.shape} / pose {pose.shape}; expected (T, 50) / (T, 6)')
    s, n = se.extract(exp, pose, a.start)
    if n < se.n_motions:
        print(f'run_reference: warning: {path}: {n} frames from frame {a.start} (fewer than n_motions = '
              f'{se.n_motions}); style from {n} frames as upstream does', file=sys.stderr)
    save(a.output, s)


DENOISE_KEYS = ('x', 'af', 'pf', 'pm', 'pa', 't')


def cmd_denoise(a):
    model, _ = load_model(a)
    d = np.load(str(a.inputs))
    miss = [k for k in DENOISE_KEYS if k not in d.files]
    if miss:
        raise RefError(f'{a.inputs}: missing arrays {miss} (needs {", ".join(DENOISE_KEYS)}, optional ind)')
    T = {k: torch.from_numpy(np.asarray(d[k])) for k in d.files}
    B = T['x'].shape[0]
    pf = T['pf'].float()
    if pf.ndim == 2:
        pf = pf.unsqueeze(1)
    t = T['t'].long().reshape(-1)
    if t.numel() == 1 and B > 1:
        t = t.expand(B)
    ind = T['ind'].float() if 'ind' in T else None
    if model.denoising_net.use_indicator and ind is None:
        raise RefError(f'{a.inputs}: this denoiser uses an indicator; add an array "ind" (B, L)')
    if t.min() < 1 or t.max() > model.diffusion_sched.T:
        raise RefError(f't must be within 1…{model.diffusion_sched.T}')
    out = model.denoising_net(T['x'].float(), T['af'].float(), pf, T['pm'].float(), T['pa'].float(), t, ind)
    save(a.output, out)


def cmd_cfg_step(a):
    model, args = load_model(a)
    stats = dpt_ref.load_stats(a.stats)
    N, L, dm = a.n_rep, model.L, model.dm
    gen = torch.Generator().manual_seed(a.seed)
    if a.audio_window:
        aw = torch.from_numpy(load_array(a.audio_window, what='audio window').astype(np.float32))
    else:
        af_all = torch.from_numpy(load_array(a.audio_features, what='audio features').astype(np.float32))
        while af_all.ndim > 2 and af_all.shape[0] == 1:
            af_all = af_all[0]
        aw = af_all[a.window * L:(a.window + 1) * L]
    if aw.shape != (L, model.D):
        raise RefError(f'audio window has shape {tuple(aw.shape)}, expected ({L}, {model.D})')
    af = aw.unsqueeze(0).expand(N, -1, -1)
    _, shape_n = smp.normalise_shape(model, stats, load_array(a.shape, 'shape', 'shape'))
    shape_n = shape_n.unsqueeze(0).expand(N, -1)
    style = style_input(a, model)
    style_t = torch.from_numpy(style).float().unsqueeze(0).expand(N, -1) if style is not None else None

    def arr(path, shape, what):
        x = torch.from_numpy(load_array(path, what=what).astype(np.float32))
        if x.ndim == len(shape) - 1:
            x = x.unsqueeze(0).expand(*shape)
        if tuple(x.shape) != tuple(shape):
            raise RefError(f'{path}: {what} has shape {tuple(x.shape)}, expected {tuple(shape)}')
        return x

    x = arr(a.x, (N, L, dm), 'x') if a.x else torch.randn(N, L, dm, generator=gen)
    z = arr(a.z, (N, L, dm), 'z') if a.z else torch.randn(N, L, dm, generator=gen)
    pm = arr(a.pm, (N, model.Lp, dm), 'pm') if a.pm else model.start_motion_feat.expand(N, -1, -1)
    pa = arr(a.pa, (N, model.Lp, model.D), 'pa') if a.pa else model.start_audio_feat.expand(N, -1, -1)
    ind = None
    if args.use_indicator:
        if a.ind:
            ind = arr(a.ind, (N, L), 'ind')
        else:
            ind = torch.ones(N, L)
            if a.n_pad_frames > 0:
                ind[:, -a.n_pad_frames:] = 0
    cfg_mode, cfg_cond, cfg_scale = smp.resolve_cfg(model, *cfg_options(model, a))
    st = smp.cfg_inputs(model, af, shape_n, style_t, pm, pa, ind, cfg_mode, cfg_cond)
    n_e = st['n_entries']
    out = pathlib.Path(a.output)
    stacked = dict(x=torch.cat([x] * n_e), af=st['af'], pf=st['pf'], pm=st['pm'], pa=st['pa'])
    if st['ind'] is not None:
        stacked['ind'] = st['ind']
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / 'inputs.npz', **{k: v.numpy().astype(np.float32) for k, v in stacked.items()})
    save(out / 'x.npy', x)
    save(out / 'z.npy', z)
    dt = dynamic_threshold(a)
    ts = [int(v) for v in a.t.split(',') if v.strip()]
    for t in ts:
        if not 1 <= t <= model.diffusion_sched.T:
            raise RefError(f't = {t} outside 1…{model.diffusion_sched.T}')
        R = model.denoising_net(stacked['x'], st['af'], st['pf'], st['pm'], st['pa'],
                                torch.full((n_e * N,), t, dtype=torch.long), st['ind'])
        save(out / f'raw_t{t}.npy', R)
        if dt:
            R = smp.threshold(R, L, N * n_e, dt)
            save(out / f'thresholded_t{t}.npy', R)
        g = smp.combine(R.clone(), n_e, L, cfg_mode, cfg_scale)
        save(out / f'guided_t{t}.npy', g)
        zz = z if t > 1 else torch.zeros_like(z)
        save(out / f'next_t{t}.npy', smp.update(model, x, g, t, zz))
    write_json(out / 'meta.json', dict(n_entries=n_e, cfg_mode=cfg_mode, cfg_cond=cfg_cond, cfg_scale=cfg_scale,
                                       t=ts, n_rep=N, dynamic_threshold=dt, use_style=model.use_style,
                                       style_given=style is not None))


def cmd_schedule(a):
    out = pathlib.Path(a.output)
    if a.ckpt:
        obj = torch.load(str(a.ckpt), map_location='cpu')
        sd = obj['model']
        bufs = {k: sd['diffusion_sched.' + k] for k in dpt_ref.models.Schedule.NAMES}
    else:
        if not a.kind or not a.T:
            raise RefError('schedule needs --kind and --T (or --ckpt)')
        bufs = dpt_ref.schedule(a.kind, a.T)
    for k, v in bufs.items():
        save(out / f'{k}.npy', v)


def output_paths(out, n):
    """demo.py's --save_coef names: OUT.npz for one repetition, OUT_000.npz … otherwise."""
    out = pathlib.Path(out)
    if n == 1:
        return [out.with_suffix('.npz')]
    return [(out.parent / f'{out.stem}_{i:03d}{out.suffix}').with_suffix('.npz') for i in range(n)]


def cmd_generate(a):
    if a.record_draws and a.noise_from:
        raise RefError('give --record-draws or --noise-from, not both')
    model, args = load_model(a)
    stats = dpt_ref.load_stats(a.stats)
    shape = load_array(a.shape, 'shape', 'shape')
    style = style_input(a, model)
    t0 = time.time()
    feat, lay = audio_features(model, a)
    t_audio = time.time() - t0
    if a.save_audio_features:
        save(a.save_audio_features, feat)
    if a.noise_from:
        noise = smp.Noise(replay=load_array(a.noise_from, what='draws'))
    else:
        noise = smp.Noise(seed=a.seed)
        # the demo's audio encoder consumed one uniform per layer (LayerDrop check) before x_T
        noise.skip_uniform(model.audio_encoder.config.num_hidden_layers)
    cfg_mode, cfg_cond, cfg_scale = cfg_options(model, a)
    t1 = time.time()
    d = smp.infer_coeffs(model, stats, feat, lay, shape, style, a.n_rep, noise, cfg_mode, cfg_cond, cfg_scale,
                         dynamic_threshold(a), a.flexibility, steps=a.steps, eta=a.eta)
    t_sample = time.time() - t1
    if a.noise_from and noise.pos != len(noise.replay):
        print(f'run_reference: warning: {a.noise_from}: {len(noise.replay) - noise.pos} draws left unused',
              file=sys.stderr)
    paths = output_paths(a.output, a.n_rep)
    for i, p in enumerate(paths):
        p.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(p, exp=d['exp'][i].numpy(), pose=d['pose'][i].numpy(), shape=d['shape'][i].numpy())
    base = pathlib.Path(a.output).with_suffix('')
    save(str(base) + '_motion.npy', d['motion'])
    if a.record_draws:
        save(a.record_draws, noise.recorded())
    rm, rc, rs = smp.resolve_cfg(model, cfg_mode, cfg_cond, cfg_scale)
    info = dict(layout=layout_json(lay), files=[str(p) for p in paths], n_rep=a.n_rep, cfg_mode=rm, cfg_cond=rc,
                cfg_scale=rs, dynamic_threshold=dynamic_threshold(a), n_draws_values=noise.pos,
                n_steps=model.diffusion_sched.T, seconds_audio=round(t_audio, 3), seconds_sampling=round(t_sample, 3),
                threads=torch.get_num_threads())
    write_json(str(base) + '_info.json', info)


# ------------------------------------------------------------------------------------------------

def main(argv=None):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--threads', type=int, default=0, help='torch threads (default: torch\'s choice)')
    common.add_argument('--allow-key-mismatch', action='store_true',
                        help='load checkpoints with missing/unexpected keys (warn instead of failing)')
    common.add_argument('--audio-heads', type=int, help='audio-encoder attention heads (default hidden/64)')

    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)

    def audio_in(q, required=True):
        g = q.add_mutually_exclusive_group(required=required)
        g.add_argument('--audio', help='audio file (any format soundfile reads)')
        g.add_argument('--samples', help='raw float32 samples (.npy, 1-D)')
        q.add_argument('--rate', type=int, help='sample rate of --samples (default 16000)')
        return g

    q = sub.add_parser('info', parents=[common], help='resolved args, audio config, key report (JSON)')
    q.add_argument('--ckpt', required=True)
    q.add_argument('--se')

    q = sub.add_parser('frontend', parents=[common], help='decode/resample, normalise, window-pad')
    audio_in(q)
    q.add_argument('--ckpt', help='take fps, n_motions, pad_mode from this denoiser checkpoint')
    q.add_argument('--fps', type=int)
    q.add_argument('--n-motions', type=int)
    q.add_argument('--pad-mode', choices=['zero', 'replicate'])
    q.add_argument('-o', '--output', required=True)

    q = sub.add_parser('audio-features', parents=[common], help='whole-clip audio encoder with all stages')
    q.add_argument('--ckpt', required=True)
    audio_in(q)
    q.add_argument('--no-stages', action='store_true', help='write audio_feat.npy and layout.json only')
    q.add_argument('--output-attentions', action='store_true',
                   help='run the encoder with output_attentions=True as upstream does (same numbers, more memory)')
    q.add_argument('-o', '--output', required=True)

    q = sub.add_parser('style', parents=[common], help='extract_style.py')
    q.add_argument('--se', required=True)
    q.add_argument('--stats', required=True)
    q.add_argument('--motion', required=True, help='npz with exp (T, 50) and pose (T, 6)')
    q.add_argument('--start', type=int, default=0)
    q.add_argument('-o', '--output', required=True)

    q = sub.add_parser('denoise', parents=[common], help='one DenoisingNetwork forward')
    q.add_argument('--ckpt', required=True)
    q.add_argument('--inputs', required=True, help='npz: x, af, pf, pm, pa, t [, ind]')
    q.add_argument('-o', '--output', required=True)

    def cfg_opts(q):
        q.add_argument('--n-rep', type=int, default=1)
        q.add_argument('--scale-audio', type=float, default=1.15)
        q.add_argument('--scale-style', type=float, default=3.0)
        q.add_argument('--cfg-mode', choices=['incremental', 'independent'])
        q.add_argument('--cfg-cond', help="comma list of audio,style ('' or none: no guidance); default: the model's")
        q.add_argument('--dtr', type=float, default=0.0, help='dynamic threshold ratio (≤ 0: off)')
        q.add_argument('--dt-min', type=float, default=1.0)
        q.add_argument('--dt-max', type=float, default=4.0)
        q.add_argument('--seed', type=int, default=0)
        q.add_argument('--style', help='style vector (.npy (ds,) or .npz key style)')
        q.add_argument('--style-motion', help='motion npz to extract the style from (needs --se)')
        q.add_argument('--style-start', type=int, default=0)
        q.add_argument('--se', help='style-encoder checkpoint (for --style-motion)')
        q.add_argument('--se-stats', help='statistics for the style encoder (default: --stats)')

    q = sub.add_parser('cfg-step', parents=[common], help='CFG-stacked denoiser forwards and one update per t')
    q.add_argument('--ckpt', required=True)
    q.add_argument('--stats', required=True)
    g = q.add_mutually_exclusive_group(required=True)
    g.add_argument('--audio-window', help='(L, D) audio features of one window')
    g.add_argument('--audio-features', help='(L_tot, D) whole-clip features; with --window')
    q.add_argument('--window', type=int, default=0)
    q.add_argument('--shape', required=True)
    q.add_argument('--t', default='1,250,500', help='comma list of steps (default 1,250,500)')
    q.add_argument('--x', help='x_t (N, L, dm) or (L, dm) (default: drawn from --seed)')
    q.add_argument('--z', help='z (N, L, dm) or (L, dm) for the update (default: drawn after x)')
    q.add_argument('--pm', help='previous motion (N, Lp, dm) (default start_motion_feat)')
    q.add_argument('--pa', help='previous audio (N, Lp, D) (default start_audio_feat)')
    q.add_argument('--ind', help='indicator (N, L) (default ones)')
    q.add_argument('--n-pad-frames', type=int, default=0, help='zero the last K indicator entries')
    q.add_argument('-o', '--output', required=True)
    cfg_opts(q)

    q = sub.add_parser('schedule', parents=[common], help='diffusion schedule buffers')
    q.add_argument('--kind', choices=['linear', 'quadratic', 'sigmoid', 'cosine'])
    q.add_argument('--T', type=int)
    q.add_argument('--ckpt', help='dump this checkpoint\'s diffusion_sched.* buffers instead')
    q.add_argument('-o', '--output', required=True)

    q = sub.add_parser('generate', parents=[common], help='Demo.infer_coeffs end to end')
    q.add_argument('--ckpt', required=True)
    q.add_argument('--stats', required=True)
    g = audio_in(q)
    g.add_argument('--audio-features', help='(L_tot, D) precomputed features; with --n-samples')
    q.add_argument('--n-samples', type=int, help='16 kHz length of the clip the features were made from')
    q.add_argument('--shape', required=True, help='shape coefficients (.npy (100,) or (F, 100); .npz key shape)')
    q.add_argument('--flexibility', type=float, default=0.0)
    q.add_argument('--steps', type=int, default=None,
                   help="libdpt's strided DDIM sampling with this many steps (not upstream; default: full schedule)")
    q.add_argument('--eta', type=float, default=0.0, help='DDIM eta for --steps (default 0)')
    q.add_argument('--record-draws', help='write the standard-normal draws consumed (flat float32 .npy)')
    q.add_argument('--noise-from', help='replay draws from this flat float32 .npy')
    q.add_argument('--save-audio-features', help='also write the whole clip\'s audio_feat (L_tot, D)')
    q.add_argument('-o', '--output', required=True, help='OUT → OUT.npz (or OUT_000.npz …), OUT_motion.npy, OUT_info.json')
    cfg_opts(q)

    a = p.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if getattr(a, 'n_rep', 1) < 1:
        print('run_reference: --n-rep must be ≥ 1', file=sys.stderr)
        return 1
    cmds = {'info': cmd_info, 'frontend': cmd_frontend, 'audio-features': cmd_audio_features, 'style': cmd_style,
            'denoise': cmd_denoise, 'cfg-step': cmd_cfg_step, 'schedule': cmd_schedule, 'generate': cmd_generate}
    try:
        cmds[a.cmd](a)
    except RefError as e:
        print(f'run_reference: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
