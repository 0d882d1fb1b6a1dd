#!/usr/bin/env python3
"""Convert DiffPoseTalk checkpoints into one libdpt `.dpt` weight file (weights/FORMAT.md).

    .venv/bin/python tools/export.py --dpt DENOISER.pt [--style-encoder SE.pt] --stats stats_train.npz \\
        -o MODEL.dpt [--dtype f32|f16]
    .venv/bin/python tools/export.py --flame generic_model.pkl [--uv uv_coords.npz] -o FLAME.dpt

The second form converts a FLAME model (FLAME 2020 / 2023 `generic_model.pkl`) into a FLAME file: the
same container with metadata `kind` = "flame" (model files carry no `kind`), see weights/FORMAT.md
"FLAME files" and export_flame() below. FLAME pickles are read with a restricted unpickler that admits
only the classes those files contain, so neither chumpy nor scipy is needed and no code in the pickle runs.

Inputs are the official formats (spec §1): the denoiser checkpoint written by main_dpt.py
(`{'args', 'model', 'iter'}`, audio encoder included), the style-encoder checkpoint written by main_se.py
(`{'args', 'encoder', 'iter'}`) and the coefficient statistics npz. Checkpoints are Python pickles:
convert only files you trust.

What the exporter does
* Resolves the denoiser's `args` like upstream's NullableArgs (legacy `use_alignment_mask`,
  `predict_head_pose`, `use_learnable_pe`; other missing fields are None).
* Derives the audio-encoder config from the tensor shapes plus `args.audio_model`. Values that shapes do
  not show are those of hubert-base-ls960 / wav2vec2-base: conv strides (5,2,2,2,2,2,2) (the kernels must be
  (10,3,3,3,3,2,2)), layer_norm_eps 1e-5, gelu, post-LN (do_stable_layer_norm false), attention heads =
  hidden/64 (12 at 768); widths that are not a multiple of 64 (small test models) get heads of size 8.
* Checks every tensor against the shapes the args imply: missing, unexpected or misshapen tensors,
  non-float32 or non-finite values are errors. Optional and dropped: `denoising_net.TE.pe` (recomputed by
  libdpt as by the demo) and `audio_encoder.masked_spec_embed` (training only).
* Folds the positional-conv weight norm (either key spelling) in float64, exactly rounded, stores the bool
  alignment mask as float32 0/1, prefixes style-encoder tensors `style_encoder.` and the six statistics
  arrays `stats.` (the unused *_max/*_min are not exported).

Decisions where upstream is silent or lenient
* A style encoder passed for a denoiser trained without one (args.style_enc_ckpt None) is an error: the
  model has no style input, so the file would carry an encoder nothing can use; leave --style-encoder out.
* A style encoder whose feature_dim differs from the denoiser's d_style, or whose no_head_pose differs from
  the denoiser's, is an error: training (main_dpt.py) feeds the denoiser's motion layout to the style
  encoder and its output to the denoiser, so such a pair cannot have been trained together.
* A denoiser that uses style may be exported without its style encoder (style vectors then come from
  .npy files); the summary says so.
* Statistics must hold exp/pose/shape mean and std of 50/6/100 finite values, std ≥ 0, and exp/shape std
  > 0 (they are divided by); other float dtypes are converted to float32 with a warning.

Every bad input ends with exactly one line on stderr (`export: error: FILE: reason`) and exit status 1.
`read_dpt(path)` (importable) reads a .dpt file back: (metadata dict, {name: numpy array}).
"""

import argparse
import math
import numbers
import os
import pathlib
import pickle
import struct
import sys
import tempfile
import warnings
import zipfile
import zlib

import numpy as np

EXPORTER = 'libdpt tools/export.py 1.0'
ALIGN = 64
HEADER = struct.Struct('<4sIQIIQQQIIII')          # 64 bytes, FORMAT.md "Header"
assert HEADER.size == 64
META_INT, META_FLOAT, META_STRING = 1, 2, 3
DT_F32, DT_F16 = 0, 1
F16_MIN_ELEMENTS = 4096                          # FORMAT.md "dtype": larger weight matrices go to f16

STD_CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
STD_CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)
WN_OLD = ('weight_g', 'weight_v')
WN_NEW = ('parametrizations.weight.original0', 'parametrizations.weight.original1')
POS_CONV = 'audio_encoder.encoder.pos_conv_embed.conv'
DROPPED = ('denoising_net.TE.pe', 'audio_encoder.masked_spec_embed')
STATS_SHAPES = (('exp', 50), ('pose', 6), ('shape', 100))


class ExportError(Exception):
    """One-line, user-facing failure: str(e) is 'FILE: reason'."""


def _fail(path, reason):
    raise ExportError(f'{path}: {reason}')


# ---------------------------------------------------------------------------------------------------------
# Loading

class _Unpickler(pickle.Unpickler):
    # A checkpoint saved on Windows holds WindowsPath objects, which cannot be instantiated elsewhere.
    def find_class(self, module, name):
        if module == 'pathlib' and name == 'WindowsPath':
            return pathlib.PureWindowsPath
        return super().find_class(module, name)


class _PickleModule:
    Unpickler = _Unpickler
    load = staticmethod(lambda f, **kw: _Unpickler(f, **kw).load())
    __name__ = 'libdpt_export_pickle'


def _torch():
    import torch
    return torch


def load_checkpoint(path):
    """torch.load a checkpoint onto the CPU; any failure becomes a one-line ExportError."""
    p = pathlib.Path(path)
    if not p.exists():
        _fail(path, 'no such file')
    if not p.is_file():
        _fail(path, 'not a regular file')
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
        if names and all(n.endswith('.npy') for n in names):
            _fail(path, 'this is a NumPy .npz archive (statistics?), expected a PyTorch checkpoint')
    torch = _torch()
    kwargs = {'map_location': 'cpu', 'pickle_module': _PickleModule}
    import inspect
    if 'weights_only' in inspect.signature(torch.load).parameters:
        kwargs['weights_only'] = False            # args are an argparse.Namespace with Path objects
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            obj = torch.load(str(p), **kwargs)
    except Exception as e:                        # noqa: BLE001 - any unpickling failure is "not a checkpoint"
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        _fail(path, f'not a PyTorch checkpoint ({detail[:160]})')
    if not isinstance(obj, dict):
        _fail(path, f'not a DiffPoseTalk checkpoint: holds a {type(obj).__name__}, expected a dict')
    return obj


def _checkpoint_kind(obj):
    if 'model' in obj and 'args' in obj:
        return 'denoiser'
    if 'encoder' in obj and 'args' in obj:
        return 'style-encoder'
    return None


def _expect_kind(path, obj, kind):
    found = _checkpoint_kind(obj)
    if found == kind:
        return
    want = {'denoiser': "a denoiser checkpoint ('args' and 'model', from main_dpt.py)",
            'style-encoder': "a style-encoder checkpoint ('args' and 'encoder', from main_se.py)"}[kind]
    if found:
        _fail(path, f'this is a {found} checkpoint, expected {want}')
    keys = ', '.join(repr(k) for k in list(obj)[:6]) or 'nothing'
    _fail(path, f'expected {want}, found a dict with {keys}')


def _state_dict(path, obj, key):
    torch = _torch()
    sd = obj[key]
    if not isinstance(sd, dict):
        _fail(path, f"'{key}' is a {type(sd).__name__}, expected a state dict")
    for k, v in sd.items():
        if not isinstance(k, str) or not torch.is_tensor(v):
            _fail(path, f"'{key}' is not a state dict of named tensors (entry {k!r})")
    return sd


def _args_dict(path, obj):
    a = obj['args']
    if isinstance(a, argparse.Namespace) or hasattr(a, '__dict__') and not isinstance(a, dict):
        return dict(vars(a))
    if isinstance(a, dict):
        return dict(a)
    _fail(path, f"'args' is a {type(a).__name__}, expected an argparse.Namespace")


# ---------------------------------------------------------------------------------------------------------
# Arguments

def resolve_nullable(args, key):
    """Value of `key` as upstream's NullableArgs returns it (spec §1.2 "Legacy names")."""
    if key in args:
        return args[key]
    if key == 'align_mask_width':
        if 'use_alignment_mask' in args:
            return 1 if args['use_alignment_mask'] else 0
        return 0
    if key == 'no_head_pose':
        return not resolve_nullable(args, 'predict_head_pose')
    if key == 'no_use_learnable_pe':
        return not resolve_nullable(args, 'use_learnable_pe')
    return None


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_flag(v):
    return isinstance(v, bool) or (_is_int(v) and v in (0, 1)) or isinstance(v, np.bool_)


class _Args:
    """Typed access to an args dict with errors naming the file."""

    def __init__(self, path, args, nullable):
        self.path, self.args, self.nullable = path, args, nullable

    def get(self, key):
        if self.nullable:
            return resolve_nullable(self.args, key)
        if key not in self.args:
            _fail(self.path, f"args has no field '{key}'")
        return self.args[key]

    def _bad(self, key, v, what):
        if v is None and key not in self.args:
            _fail(self.path, f"args has no field '{key}' (needed: {what})")
        _fail(self.path, f"args.{key} = {v!r} is not supported (expected {what})")

    def choice(self, key, allowed):
        v = self.get(key)
        if not isinstance(v, str) or v not in allowed:
            self._bad(key, v, ' or '.join(allowed))
        return v

    def int(self, key, lo=1, hi=1 << 20):
        v = self.get(key)
        if not _is_int(v) or not lo <= v <= hi:
            self._bad(key, v, f'an integer in {lo}..{hi}')
        return int(v)

    def flag(self, key, missing_is_false=False):
        v = self.get(key)
        if v is None and missing_is_false:
            return False
        if not _is_flag(v):
            self._bad(key, v, 'True or False')
        return bool(v)


def resolve_denoiser_args(path, args):
    """The inference-relevant denoiser hyperparameters (validated), as a dict."""
    a = _Args(path, args, nullable=True)
    r = {}
    r['target'] = a.choice('target', ('sample', 'noise'))
    gc = a.get('guiding_conditions')
    if gc is not None and not isinstance(gc, str):
        a._bad('guiding_conditions', gc, "a comma list such as 'audio,style'")
    conds = [c for c in gc.split(',') if c in ('audio', 'style')] if gc else []
    r['cfg_mode'] = a.choice('cfg_mode', ('incremental', 'independent'))
    r['n_diff_steps'] = a.int('n_diff_steps', 1, 100000)
    r['diff_schedule'] = a.choice('diff_schedule', ('linear', 'quadratic', 'sigmoid', 'cosine'))
    r['rot_repr'] = a.choice('rot_repr', ('aa',))
    r['no_head_pose'] = a.flag('no_head_pose')
    sec = a.get('style_enc_ckpt')
    r['use_style'] = sec is not None                           # DiffTalkingHead: style_enc_ckpt is not None
    d_style = a.get('d_style')
    if r['use_style']:
        r['d_style'] = a.int('d_style', 1, 1 << 16)
    else:
        r['d_style'] = int(d_style) if _is_int(d_style) and 1 <= d_style <= 1 << 16 else 128
    if 'style' in conds and not r['use_style']:
        _fail(path, "guiding condition 'style' on a model without style encoder (args.style_enc_ckpt is None); "
                    'upstream refuses this model')
    r['guiding_conditions'] = ','.join(conds)
    r['audio_model'] = a.choice('audio_model', ('hubert', 'wav2vec2'))
    r['architecture'] = a.choice('architecture', ('decoder',))
    amw = a.get('align_mask_width')
    if not _is_int(amw) and not isinstance(amw, bool):
        a._bad('align_mask_width', amw, 'an integer')
    r['align_mask_width'] = int(amw)
    r['use_learnable_pe'] = not a.flag('no_use_learnable_pe')
    r['use_indicator'] = a.flag('use_indicator', missing_is_false=True)
    r['feature_dim'] = a.int('feature_dim', 2, 1 << 16)
    r['n_heads'] = a.int('n_heads', 1, 1024)
    r['n_layers'] = a.int('n_layers', 1, 256)
    r['mlp_ratio'] = a.int('mlp_ratio', 1, 64)
    r['n_motions'] = a.int('n_motions', 1, 100000)
    r['n_prev_motions'] = a.int('n_prev_motions', 1, 100000)
    r['fps'] = a.int('fps', 1, 1000)
    r['pad_mode'] = a.choice('pad_mode', ('zero', 'replicate'))
    D = r['feature_dim']
    if D % 2 or D % r['n_heads']:
        _fail(path, f"args.feature_dim = {D} must be even and divisible by n_heads = {r['n_heads']}")
    if r['n_prev_motions'] > r['n_motions']:
        _fail(path, f"args.n_prev_motions = {r['n_prev_motions']} exceeds n_motions = {r['n_motions']}")
    if not r['use_learnable_pe'] and 1 + r['n_motions'] + r['n_prev_motions'] >= 600:
        _fail(path, 'sinusoidal PE table has 600 rows: n_motions + n_prev_motions must stay below 599')
    r['_conds'] = conds
    return r


def resolve_style_args(path, args):
    """Style-encoder hyperparameters; extract_style.py reads its Namespace directly (no legacy names)."""
    a = _Args(path, args, nullable=False)
    r = {}
    a.choice('rot_repr', ('aa',))
    r['no_head_pose'] = a.flag('no_head_pose')
    r['feature_dim'] = a.int('feature_dim', 2, 1 << 16)
    r['n_heads'] = a.int('n_heads', 1, 1024)
    r['n_layers'] = a.int('n_layers', 1, 256)
    r['mlp_ratio'] = a.int('mlp_ratio', 1, 64)
    r['n_motions'] = a.int('n_motions', 1, 599)               # PE table pe(D, 600) is indexed at n_motions
    r['fps'] = a.int('fps', 1, 1000)
    if r['feature_dim'] % 2 or r['feature_dim'] % r['n_heads']:
        _fail(path, f"args.feature_dim = {r['feature_dim']} must be even and divisible by n_heads = {r['n_heads']}")
    return r


# ---------------------------------------------------------------------------------------------------------
# Expected tensors

def _shape_str(s):
    return '(' + ', '.join(str(int(d)) for d in s) + ')'


def infer_audio_config(path, sd, audio_model):
    """transformers config values of the audio encoder, from the checkpoint's tensor shapes."""
    pre = 'audio_encoder.'

    def shape(key):
        t = sd.get(pre + key)
        return tuple(t.shape) if t is not None else None

    proj = shape('feature_projection.projection.weight')
    if proj is None or len(proj) != 2:
        _fail(path, "no audio encoder in 'model' (audio_encoder.feature_projection.projection.weight missing)")
    H, c_last = proj
    dims, kernels, c_in = [], [], 1
    while shape(f'feature_extractor.conv_layers.{len(dims)}.conv.weight') is not None:
        s = shape(f'feature_extractor.conv_layers.{len(dims)}.conv.weight')
        if len(s) != 3 or s[1] != c_in:
            _fail(path, f"tensor 'audio_encoder.feature_extractor.conv_layers.{len(dims)}.conv.weight' has "
                        f'shape {_shape_str(s)}, expected ({s[0] if s else "C"}, {c_in}, kernel)')
        dims.append(s[0])
        kernels.append(s[2])
        c_in = s[0]
    if tuple(kernels) != STD_CONV_KERNEL:
        _fail(path, f"audio feature extractor has conv kernels {kernels or 'none'}, only the hubert/wav2vec2 "
                    f"base layout {list(STD_CONV_KERNEL)} is supported")
    if shape('feature_extractor.conv_layers.1.layer_norm.weight') is not None:
        _fail(path, "audio feature extractor normalises every conv layer (feat_extract_norm 'layer', as in the "
                    "large models): only 'group' is supported")
    if shape('feature_extractor.conv_layers.0.layer_norm.weight') is None:
        _fail(path, "audio feature extractor has no GroupNorm after conv 0: only feat_extract_norm 'group' "
                    'is supported')
    conv_bias = shape('feature_extractor.conv_layers.0.conv.bias') is not None
    fp_ln = shape('feature_projection.layer_norm.weight') is not None
    if audio_model == 'wav2vec2' and not fp_ln:
        _fail(path, 'wav2vec2 audio encoder without feature_projection.layer_norm (transformers always has it)')
    n_layers = 0
    while shape(f'encoder.layers.{n_layers}.attention.q_proj.weight') is not None:
        n_layers += 1
    if n_layers == 0:
        _fail(path, "audio encoder has no transformer layers (audio_encoder.encoder.layers.0.* missing)")
    ffn = shape('encoder.layers.0.feed_forward.intermediate_dense.weight')
    if ffn is None or len(ffn) != 2:
        _fail(path, "tensor 'audio_encoder.encoder.layers.0.feed_forward.intermediate_dense.weight' is missing "
                    'or not a matrix')
    v = shape('encoder.pos_conv_embed.conv.' + WN_OLD[1]) or shape('encoder.pos_conv_embed.conv.' + WN_NEW[1])
    if v is None:
        _fail(path, f"positional-conv weight norm missing: neither '{POS_CONV}.weight_v' nor "
                    f"'{POS_CONV}.parametrizations.weight.original1' is in 'model'")
    if len(v) != 3 or v[0] != H or v[1] < 1 or H % v[1]:
        _fail(path, f"tensor '{POS_CONV}' direction has shape {_shape_str(v)}, expected ({H}, {H}/groups, kernel)")
    heads = H // 64 if H % 64 == 0 else max(1, H // 8)
    return {
        'model_type': audio_model, 'hidden_size': H, 'num_hidden_layers': n_layers,
        'num_attention_heads': heads, 'intermediate_size': ffn[0], 'conv_dim': tuple(dims),
        'conv_kernel': tuple(kernels), 'conv_stride': STD_CONV_STRIDE, 'conv_bias': conv_bias,
        'feat_extract_norm': 'group', 'feat_proj_layer_norm': fp_ln, 'do_stable_layer_norm': False,
        'num_conv_pos_embeddings': v[2], 'num_conv_pos_embedding_groups': H // v[1],
        'layer_norm_eps': 1e-5, 'hidden_act': 'gelu',
    }


def expected_audio(ac, wn):
    """{key: shape} of the audio encoder (prefix audio_encoder.), weight norm in spelling `wn` (a pair)."""
    H, F, K, G = ac['hidden_size'], ac['intermediate_size'], ac['num_conv_pos_embeddings'], \
        ac['num_conv_pos_embedding_groups']
    e, p = {}, 'audio_encoder.'
    c_in = 1
    for i, (c, k) in enumerate(zip(ac['conv_dim'], ac['conv_kernel'])):
        e[f'{p}feature_extractor.conv_layers.{i}.conv.weight'] = (c, c_in, k)
        if ac['conv_bias']:
            e[f'{p}feature_extractor.conv_layers.{i}.conv.bias'] = (c,)
        c_in = c
    e[f'{p}feature_extractor.conv_layers.0.layer_norm.weight'] = (ac['conv_dim'][0],)
    e[f'{p}feature_extractor.conv_layers.0.layer_norm.bias'] = (ac['conv_dim'][0],)
    if ac['feat_proj_layer_norm']:
        e[f'{p}feature_projection.layer_norm.weight'] = (c_in,)
        e[f'{p}feature_projection.layer_norm.bias'] = (c_in,)
    e[f'{p}feature_projection.projection.weight'] = (H, c_in)
    e[f'{p}feature_projection.projection.bias'] = (H,)
    e[f'{POS_CONV}.bias'] = (H,)
    e[f'{POS_CONV}.{wn[0]}'] = (1, 1, K)
    e[f'{POS_CONV}.{wn[1]}'] = (H, H // G, K)
    e[f'{p}encoder.layer_norm.weight'] = (H,)
    e[f'{p}encoder.layer_norm.bias'] = (H,)
    for l in range(ac['num_hidden_layers']):
        q = f'{p}encoder.layers.{l}.'
        for proj in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):
            e[f'{q}attention.{proj}.weight'] = (H, H)
            e[f'{q}attention.{proj}.bias'] = (H,)
        for ln in ('layer_norm', 'final_layer_norm'):
            e[f'{q}{ln}.weight'] = (H,)
            e[f'{q}{ln}.bias'] = (H,)
        e[f'{q}feed_forward.intermediate_dense.weight'] = (F, H)
        e[f'{q}feed_forward.intermediate_dense.bias'] = (F,)
        e[f'{q}feed_forward.output_dense.weight'] = (H, F)
        e[f'{q}feed_forward.output_dense.bias'] = (H,)
    return e


def _mha(e, prefix, E):
    e[f'{prefix}.in_proj_weight'] = (3 * E, E)
    e[f'{prefix}.in_proj_bias'] = (3 * E,)
    e[f'{prefix}.out_proj.weight'] = (E, E)
    e[f'{prefix}.out_proj.bias'] = (E,)


def _lin(e, prefix, n_out, n_in):
    e[f'{prefix}.weight'] = (n_out, n_in)
    e[f'{prefix}.bias'] = (n_out,)


def expected_denoiser(r, ac, wn):
    """{key: shape} of the denoiser's 'model' state dict for resolved args r (spec §1.2), audio included."""
    D, L, Lp, T = r['feature_dim'], r['n_motions'], r['n_prev_motions'], r['n_diff_steps']
    S, F = L + Lp, r['mlp_ratio'] * r['feature_dim']
    dm = 51 if r['no_head_pose'] else 54
    dmi = dm + (1 if r['use_indicator'] else 0)
    dp = 100 + (r['d_style'] if r['use_style'] else 0)
    e = {'start_audio_feat': (1, Lp, D), 'start_motion_feat': (1, Lp, dm)}
    if 'style' in r['_conds']:
        e['null_style_feat'] = (1, 1, r['d_style'])
    if 'audio' in r['_conds']:
        e['null_audio_feat'] = (1, 1, D)
    e.update(expected_audio(ac, wn))
    _lin(e, 'audio_feature_map', D, ac['hidden_size'])
    n = 'denoising_net.'
    _lin(e, n + 'diff_step_map.0', D, D)
    _lin(e, n + 'diff_step_map.2', D, D)
    if r['use_learnable_pe']:
        e[n + 'PE'] = (1, 1 + S, D)
    else:
        e[n + 'PE.pe'] = (1, 600, D)
    _lin(e, n + 'person_proj', D, dp)
    _lin(e, n + 'feature_proj', D, dmi)
    for i in range(r['n_layers']):
        q = f'{n}transformer.layers.{i}.'
        _mha(e, q + 'self_attn', D)
        _mha(e, q + 'multihead_attn', D)
        _lin(e, q + 'linear1', F, D)
        _lin(e, q + 'linear2', D, F)
        for k in (1, 2, 3):
            e[f'{q}norm{k}.weight'] = (D,)
            e[f'{q}norm{k}.bias'] = (D,)
    if r['align_mask_width'] > 0:
        e[n + 'alignment_mask'] = (1 + S, S)
    _lin(e, n + 'motion_dec.0', D // 2, D)
    _lin(e, n + 'motion_dec.2', dm, D // 2)
    for k in ('betas', 'alphas', 'alpha_bars', 'sigmas_flex', 'sigmas_inflex'):
        e['diffusion_sched.' + k] = (T + 1,)
    return e


def expected_style(s):
    Ds, din = s['feature_dim'], 51 if s['no_head_pose'] else 54
    e = {}
    _lin(e, 'motion_proj', Ds, din)
    for j in range(s['n_layers']):
        q = f'transformer.layers.{j}.'
        _mha(e, q + 'self_attn', Ds)
        _lin(e, q + 'linear1', s['mlp_ratio'] * Ds, Ds)
        _lin(e, q + 'linear2', Ds, s['mlp_ratio'] * Ds)
        for k in (1, 2):
            e[f'{q}norm{k}.weight'] = (Ds,)
            e[f'{q}norm{k}.bias'] = (Ds,)
    return e


def _examples(keys, n=3):
    keys = sorted(keys)
    more = f' (+{len(keys) - n} more)' if len(keys) > n else ''
    return ', '.join(f"'{k}'" for k in keys[:n]) + more


def check_tensors(path, where, sd, expected, optional=(), hint=''):
    """Exact key set and shapes; float32 (bool for the mask) and finite values."""
    torch = _torch()
    missing = [k for k in expected if k not in sd]
    if missing:
        _fail(path, f"{len(missing)} tensor(s) missing from '{where}'{hint}: {_examples(missing)}")
    extra = [k for k in sd if k not in expected and k not in optional]
    if extra:
        _fail(path, f"{len(extra)} unexpected tensor(s) in '{where}'{hint}: {_examples(extra)}")
    for k, shape in list(expected.items()) + [(k, optional[k]) for k in optional if k in sd]:
        t = sd[k]
        if tuple(t.shape) != tuple(shape):
            _fail(path, f"tensor '{k}' has shape {_shape_str(t.shape)}, the args need {_shape_str(shape)}")
        want = torch.bool if k.endswith('alignment_mask') else torch.float32
        if t.dtype != want:
            _fail(path, f"tensor '{k}' is {str(t.dtype).replace('torch.', '')}, expected "
                        f"{str(want).replace('torch.', '')}")
        if want == torch.float32 and not bool(torch.isfinite(t).all()):
            _fail(path, f"tensor '{k}' contains NaN or Inf")


# ---------------------------------------------------------------------------------------------------------
# Statistics

def load_stats(path):
    p = pathlib.Path(path)
    if not p.exists():
        _fail(path, 'no such file')
    if not p.is_file():
        _fail(path, 'not a regular file')
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            if any(n.endswith('data.pkl') for n in z.namelist()):
                _fail(path, 'this is a PyTorch checkpoint, expected the statistics .npz (stats_train.npz)')
    try:
        with np.load(str(p), allow_pickle=False) as z:
            if not hasattr(z, 'files'):
                _fail(path, 'not an .npz archive (a single .npy array)')
            arrays = {k: z[k] for k in z.files}
    except ExportError:
        raise
    except Exception as e:                        # noqa: BLE001
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        _fail(path, f'not a NumPy .npz archive ({detail[:160]})')
    out, notes = {}, []
    for name, n in STATS_SHAPES:
        for kind in ('mean', 'std'):
            key = f'{name}_{kind}'
            if key not in arrays:
                have = ', '.join(sorted(arrays)[:8]) or 'nothing'
                _fail(path, f"array '{key}' is missing (the file holds {have})")
            a = arrays[key]
            if a.dtype.kind not in 'fiu':
                _fail(path, f"array '{key}' has dtype {a.dtype}, expected float32")
            if a.shape != (n,):
                _fail(path, f"array '{key}' has shape {_shape_str(a.shape)}, expected ({n},)")
            if a.dtype != np.float32:
                notes.append(f'{key} ({a.dtype})')
            a32 = a.astype('<f4')
            if not np.isfinite(a32).all():
                _fail(path, f"array '{key}' contains NaN or Inf")
            if kind == 'std':
                if (a32 < 0).any():
                    _fail(path, f"array '{key}' has negative values")
                if name != 'pose' and (a32 == 0).any():
                    _fail(path, f"array '{key}' has zeros (inference divides by it)")
            out[f'stats.{key}'] = a32
    return out, notes


# ---------------------------------------------------------------------------------------------------------
# .dpt writer

def _f16_eligible(name, shape):
    n = int(np.prod(shape))
    return len(shape) >= 2 and name.endswith('weight') and n > F16_MIN_ELEMENTS


def _meta_bytes(meta):
    out = bytearray()
    for key, value in meta.items():
        k = key.encode()
        assert 1 <= len(k) <= 255, key
        out += struct.pack('<H', len(k)) + k
        if isinstance(value, bool) or _is_int(value):
            out += struct.pack('<Bq', META_INT, int(value))
        elif isinstance(value, float):
            out += struct.pack('<Bd', META_FLOAT, value)
        elif isinstance(value, str):
            s = value.encode()
            if len(s) > 65535:
                raise ExportError(f'metadata {key}: string longer than 65535 bytes')
            out += struct.pack('<BI', META_STRING, len(s)) + s
        else:
            raise TypeError(f'metadata {key}: unsupported type {type(value).__name__}')
    return bytes(out)


def _align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


def write_dpt(out_path, meta, tensors):
    """Write a .dpt file. tensors: list of (name, numpy array of dtype float32 or float16)."""
    entries, table, offset = [], bytearray(), 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        code = {np.dtype('float32'): DT_F32, np.dtype('float16'): DT_F16}[arr.dtype]
        arr = arr.astype(arr.dtype.newbyteorder('<'), copy=False)
        nm = name.encode()
        if not 1 <= len(nm) <= 255:
            raise ExportError(f'tensor name {name!r} must be 1..255 bytes')
        if not 1 <= arr.ndim <= 4 or 0 in arr.shape:
            raise ExportError(f'tensor {name!r} has shape {arr.shape}; the format needs 1..4 non-empty dims')
        table += struct.pack('<H', len(nm)) + nm + struct.pack('<BB', code, arr.ndim)
        table += struct.pack(f'<{arr.ndim}Q', *arr.shape)
        table += struct.pack('<QQ', offset, arr.nbytes)
        entries.append((offset, arr))
        offset = _align(offset + arr.nbytes)
    meta_b = _meta_bytes(meta)
    meta_off = HEADER.size
    table_off = meta_off + len(meta_b)
    data_off = _align(table_off + len(table))
    last_end = entries[-1][0] + entries[-1][1].nbytes if entries else 0
    file_size = data_off + last_end
    fields = [b'DPTW', 1, file_size, len(meta), len(entries), meta_off, table_off, data_off,
              len(meta_b), len(table), 0, 0]
    head = HEADER.pack(*fields)
    crc = zlib.crc32(head[:56])
    crc = zlib.crc32(meta_b, crc)
    crc = zlib.crc32(bytes(table), crc)
    fields[10] = crc & 0xFFFFFFFF
    head = HEADER.pack(*fields)

    out_path = pathlib.Path(out_path)
    fd, tmp = tempfile.mkstemp(prefix='.' + out_path.name + '.', suffix='.tmp', dir=str(out_path.parent))
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(head)
            f.write(meta_b)
            f.write(table)
            f.write(b'\0' * (data_off - table_off - len(table)))
            pos = 0
            for off, arr in entries:
                f.write(b'\0' * (off - pos))
                f.write(memoryview(arr).cast('B'))
                pos = off + arr.nbytes
            assert f.tell() == file_size
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return file_size


def read_dpt(path):
    """Read and validate a .dpt file: (metadata dict, {name: numpy array (float32 or float16)}).

    Raises ValueError for anything FORMAT.md says a reader must reject.
    """
    data = pathlib.Path(path).read_bytes()
    if len(data) < HEADER.size:
        raise ValueError(f'{path}: shorter than the 64-byte header')
    (magic, version, file_size, n_meta, n_tensors, meta_off, table_off, data_off, meta_size, table_size,
     crc, reserved) = HEADER.unpack_from(data)
    if magic != b'DPTW':
        raise ValueError(f'{path}: bad magic {magic!r}')
    if version != 1:
        raise ValueError(f'{path}: version {version}')
    if file_size != len(data):
        raise ValueError(f'{path}: header says {file_size} bytes, file has {len(data)}')
    if meta_off != 64 or table_off != meta_off + meta_size or table_off + table_size > data_off \
            or data_off > file_size or data_off % ALIGN:
        raise ValueError(f'{path}: inconsistent block layout')
    c = zlib.crc32(data[:56])
    c = zlib.crc32(data[meta_off:meta_off + meta_size], c)
    c = zlib.crc32(data[table_off:table_off + table_size], c)
    if c & 0xFFFFFFFF != crc:
        raise ValueError(f'{path}: header CRC mismatch')
    meta, p, end = {}, meta_off, meta_off + meta_size
    for _ in range(n_meta):
        (klen,) = struct.unpack_from('<H', data, p)
        key = data[p + 2:p + 2 + klen].decode()
        p += 2 + klen
        typ = data[p]
        p += 1
        if typ == META_INT:
            (v,) = struct.unpack_from('<q', data, p)
            p += 8
        elif typ == META_FLOAT:
            (v,) = struct.unpack_from('<d', data, p)
            p += 8
        elif typ == META_STRING:
            (n,) = struct.unpack_from('<I', data, p)
            v = data[p + 4:p + 4 + n].decode()
            p += 4 + n
        else:
            raise ValueError(f'{path}: metadata {key!r} has type {typ}')
        if key in meta:
            raise ValueError(f'{path}: duplicate metadata key {key!r}')
        meta[key] = v
    if p != end:
        raise ValueError(f'{path}: metadata block size mismatch')
    tensors, p, end, regions = {}, table_off, table_off + table_size, []
    for _ in range(n_tensors):
        (nlen,) = struct.unpack_from('<H', data, p)
        name = data[p + 2:p + 2 + nlen].decode()
        p += 2 + nlen
        code, ndim = data[p], data[p + 1]
        p += 2
        shape = struct.unpack_from(f'<{ndim}Q', data, p)
        p += 8 * ndim
        off, nbytes = struct.unpack_from('<QQ', data, p)
        p += 16
        dt = {DT_F32: np.dtype('<f4'), DT_F16: np.dtype('<f2')}.get(code)
        if dt is None or not 1 <= ndim <= 4 or 0 in shape:
            raise ValueError(f'{path}: tensor {name!r} has a bad dtype or shape')
        if nbytes != int(np.prod(shape)) * dt.itemsize or off % ALIGN or data_off + off + nbytes > file_size:
            raise ValueError(f'{path}: tensor {name!r} has a bad data region')
        if name in tensors:
            raise ValueError(f'{path}: duplicate tensor {name!r}')
        tensors[name] = np.frombuffer(data, dt, int(np.prod(shape)), data_off + off).reshape(shape)
        regions.append((off, off + nbytes))
    if p != end:
        raise ValueError(f'{path}: tensor table size mismatch')
    regions.sort()
    for (a0, a1), (b0, _) in zip(regions, regions[1:]):
        if b0 < a1:
            raise ValueError(f'{path}: overlapping tensor data')
    return meta, tensors


# ---------------------------------------------------------------------------------------------------------
# Export

def fold_weight_norm(g, v):
    """W = g · v / ‖v‖ over axes 0, 1 per kernel tap (dim=2), FORMAT.md.

    In float64 with an exactly rounded sum of squares (math.fsum), then rounded once to float32: the
    same bits on every machine. torch._weight_norm sums in float32 in an order that depends on the CPU
    and thread count, so its last bits differ between machines (about 3e-6 relative here)."""
    g = np.asarray(g, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    taps = v.shape[2]
    norm = np.array([math.sqrt(math.fsum((v[:, :, k] ** 2).ravel())) for k in range(taps)])
    return (g * v / norm.reshape(1, 1, taps)).astype(np.float32)


def _param_counts(names_shapes):
    """Parameters per part, split as dpt-info does (buffers, schedules and statistics not counted)."""
    counts = {'audio': 0, 'denoiser': 0, 'style': 0}
    for name, shape in names_shapes:
        n = int(np.prod(shape))
        if name.startswith(('audio_encoder.', 'audio_feature_map.')):
            counts['audio'] += n
        elif name.startswith('style_encoder.'):
            counts['style'] += n
        elif not name.startswith(('stats.', 'diffusion_sched.')) and \
                name not in ('denoising_net.alignment_mask', 'denoising_net.PE.pe'):
            counts['denoiser'] += n
    return counts


def export(dpt_path, stats_path, out_path, se_path=None, dtype='f32', log=print, warn=None):
    """Validate the inputs and write the .dpt file. Returns a summary dict. Raises ExportError."""
    if warn is None:
        def warn(msg):
            print(f'export: warning: {msg}', file=sys.stderr)
    torch = _torch()
    out_path = pathlib.Path(out_path)
    ins = [pathlib.Path(p).resolve() for p in (dpt_path, se_path, stats_path) if p is not None]
    if out_path.resolve() in ins:
        _fail(out_path, 'the output would overwrite an input file')
    if not out_path.parent.is_dir():
        _fail(out_path, f'cannot write: directory {out_path.parent} does not exist')

    # denoiser
    ck = load_checkpoint(dpt_path)
    _expect_kind(dpt_path, ck, 'denoiser')
    sd = _state_dict(dpt_path, ck, 'model')
    r = resolve_denoiser_args(dpt_path, _args_dict(dpt_path, ck))
    ac = infer_audio_config(dpt_path, sd, r['audio_model'])
    has_old = any(f'{POS_CONV}.{s}' in sd for s in WN_OLD)
    has_new = any(f'{POS_CONV}.{s}' in sd for s in WN_NEW)
    if has_old and has_new:
        _fail(dpt_path, 'positional-conv weight norm is stored under both key spellings (weight_g/weight_v and '
                        'parametrizations.weight.original0/1)')
    wn = WN_OLD if has_old else WN_NEW
    T, D = r['n_diff_steps'], r['feature_dim']
    optional = {'denoising_net.TE.pe': (1, T + 1, D), 'audio_encoder.masked_spec_embed': (ac['hidden_size'],)}
    check_tensors(dpt_path, 'model', sd, expected_denoiser(r, ac, wn), optional,
                  hint=' for its args')
    it = ck.get('iter', -1)
    it = int(it) if _is_int(it) else -1

    # style encoder
    s = None
    if se_path is not None:
        se = load_checkpoint(se_path)
        _expect_kind(se_path, se, 'style-encoder')
        if not r['use_style']:
            _fail(se_path, 'the denoiser was trained without a style encoder (args.style_enc_ckpt is None); '
                           'leave out --style-encoder')
        se_sd = _state_dict(se_path, se, 'encoder')
        s = resolve_style_args(se_path, _args_dict(se_path, se))
        check_tensors(se_path, 'encoder', se_sd, expected_style(s), hint=' for its args')
        if s['feature_dim'] != r['d_style']:
            _fail(se_path, f"style encoder gives {s['feature_dim']} values (feature_dim), the denoiser takes "
                           f"d_style = {r['d_style']}")
        if s['no_head_pose'] != r['no_head_pose']:
            _fail(se_path, f"style encoder has no_head_pose = {s['no_head_pose']}, the denoiser "
                           f"{r['no_head_pose']}: they cannot have been trained together")

    stats, stat_notes = load_stats(stats_path)
    if stat_notes:
        warn(f'{stats_path}: converted to float32: {", ".join(stat_notes)}')

    # tensors, in checkpoint order
    tensors = []
    with torch.no_grad():
        for k, t in sd.items():
            if k in DROPPED or k == f'{POS_CONV}.{wn[1]}':
                continue
            if k == f'{POS_CONV}.{wn[0]}':
                w = fold_weight_norm(t.numpy(), sd[f'{POS_CONV}.{wn[1]}'].numpy())
                tensors.append((f'{POS_CONV}.weight', w))
            elif t.dtype == torch.bool:
                tensors.append((k, t.numpy().astype(np.float32)))
            else:
                tensors.append((k, t.numpy()))
        if s is not None:
            for k, t in se_sd.items():
                tensors.append(('style_encoder.' + k, t.numpy()))
    tensors += list(stats.items())

    if dtype == 'f16':
        conv = []
        for name, a in tensors:
            if _f16_eligible(name, a.shape):
                if np.abs(a).max() > 65504:
                    _fail(dpt_path if not name.startswith('style_encoder.') else se_path,
                          f"tensor '{name}' exceeds the float16 range; export with --dtype f32")
                a = a.astype(np.float16)
            conv.append((name, a))
        tensors = conv

    meta = {
        'general.format': 'libdpt',
        'general.exporter': EXPORTER,
        'general.iter': it,
        'general.source_denoiser': pathlib.Path(dpt_path).name,
        'general.source_style_encoder': pathlib.Path(se_path).name if se_path else '',
    }
    for k in ('target', 'guiding_conditions', 'cfg_mode', 'n_diff_steps', 'diff_schedule', 'rot_repr',
              'no_head_pose', 'use_style', 'd_style', 'audio_model', 'architecture', 'align_mask_width',
              'use_learnable_pe', 'use_indicator', 'feature_dim', 'n_heads', 'n_layers', 'mlp_ratio',
              'n_motions', 'n_prev_motions', 'fps', 'pad_mode'):
        v = r[k]
        meta['dpt.' + k] = int(v) if isinstance(v, bool) else v
    for k in ('model_type', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size',
              'conv_dim', 'conv_kernel', 'conv_stride', 'conv_bias', 'feat_extract_norm', 'feat_proj_layer_norm',
              'do_stable_layer_norm', 'num_conv_pos_embeddings', 'num_conv_pos_embedding_groups',
              'layer_norm_eps', 'hidden_act'):
        v = ac[k]
        if isinstance(v, tuple):
            v = ','.join(str(int(x)) for x in v)
        elif isinstance(v, bool):
            v = int(v)
        elif _is_int(v):
            v = int(v)
        meta['audio.' + k] = v
    meta['style.present'] = int(s is not None)
    if s is not None:
        for k in ('feature_dim', 'n_heads', 'n_layers', 'mlp_ratio', 'n_motions', 'no_head_pose', 'fps'):
            meta['style.' + k] = int(s[k])

    try:
        size = write_dpt(out_path, meta, tensors)
    except OSError as e:
        _fail(out_path, f'cannot write: {e.strerror or e}')

    counts = _param_counts((n, a.shape) for n, a in tensors)
    n16 = sum(a.dtype == np.float16 for _, a in tensors)
    summary = dict(counts=counts, size=size, n_tensors=len(tensors), n_f16=n16, dtype=dtype, meta=meta)
    if log:
        dm = 51 if r['no_head_pose'] else 54
        log(f'export: {out_path}')
        log(f"  audio encoder  {ac['model_type']}, {ac['num_hidden_layers']} layers x {ac['hidden_size']}"
            f" (+ audio_feature_map): {counts['audio']:,} parameters")
        style_note = f"style {r['d_style']}" if r['use_style'] else 'no style'
        log(f"  denoiser       {r['n_layers']} layers x {D}, motion {dm}, {style_note}, T={T}, "
            f"{r['diff_schedule']}, target {r['target']}: {counts['denoiser']:,} parameters")
        if s is not None:
            log(f"  style encoder  {s['n_layers']} layers x {s['feature_dim']}: {counts['style']:,} parameters")
        elif r['use_style']:
            log('  style encoder  not included (style vectors must come from .npy files)')
        else:
            log('  style encoder  none (model without style input)')
        total = sum(counts.values())
        log(f'  total {total:,} parameters, {len(tensors)} tensors, dtype {dtype}'
            + (f' ({n16} float16 matrices)' if dtype == 'f16' else '')
            + f', file size {size:,} bytes ({size / 2**20:.1f} MiB)')
    return summary


# ---------------------------------------------------------------------------------------------------------
# FLAME (generic_model.pkl → FLAME file)
#
# Upstream (models/flame.py) keeps: faces `f`, `v_template` (V, 3), shapedirs[:, :, :100] and
# [:, :, 300:350] (100 shape + 50 expression), posedirs reshaped to (V·3, P) and transposed to (P, V·3),
# the dense J_regressor (J, V), the parents kintree_table[0] with the root set to −1, and `weights` (V, J).

FLAME_N_SHAPE, FLAME_N_EXP, FLAME_EXP_START, FLAME_N_JOINTS = 100, 50, 300, 5
FLAME_KEYS = ('f', 'v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'kintree_table')


class _Refused(Exception):
    def __init__(self, module, name):
        super().__init__(f'{module}.{name}')
        self.module, self.name = module, name


class _InertStandIn:
    """Stands for chumpy's Ch / scipy's csc_matrix: keeps the pickled state dict, runs nothing."""
    kind = ''

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f'{self.kind} state is a {type(state).__name__}, expected a dict')
        self.state = state


class _ChStandIn(_InertStandIn):
    kind = 'chumpy Ch'


class _CscStandIn(_InertStandIn):
    kind = 'scipy csc_matrix'


class _NdarrayName:
    """What `numpy.ndarray` unpickles to: only a tag for _np_reconstruct (not callable, so a pickle
    cannot build arrays over arbitrary buffers with it)."""


def _np_reconstruct(cls, shape, typecode):
    # numpy's own array pickle entry point (state set by ndarray.__setstate__), plain ndarrays only
    if cls is not _NdarrayName:
        raise _Refused('numpy.core.multiarray', f'_reconstruct of {getattr(cls, "__name__", type(cls).__name__)}')
    return np.ndarray.__new__(np.ndarray, shape, typecode)


def _np_dtype(spec, align=False, copy=True):
    dt = np.dtype(spec)
    if dt.hasobject:
        raise _Refused('numpy', f'dtype {spec!r} (object arrays)')
    return dt


def _latin1_encode(text, encoding='latin1'):
    # _codecs.encode as Python-3 protocol-2 pickles use it: bytes from their latin-1 text
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise pickle.UnpicklingError('unexpected _codecs.encode call')
    return text.encode('latin1')


def _reconstructor(cls, base, state):
    # copy_reg._reconstructor (protocol 0/1 pickles of plain objects), for the stand-ins only
    if base is not object or state is not None or not (isinstance(cls, type) and issubclass(cls, _InertStandIn)):
        raise pickle.UnpicklingError('unexpected copy_reg._reconstructor call')
    return object.__new__(cls)


_NP_RECONSTRUCT = ('numpy.core.multiarray', 'numpy._core.multiarray')
FLAME_PICKLE_CLASSES = {
    **{(m, '_reconstruct'): _np_reconstruct for m in _NP_RECONSTRUCT},
    ('numpy', 'ndarray'): _NdarrayName,
    ('numpy', 'dtype'): _np_dtype,
    ('copy_reg', '_reconstructor'): _reconstructor,
    ('copyreg', '_reconstructor'): _reconstructor,
    ('__builtin__', 'object'): object,
    ('builtins', 'object'): object,
    ('__builtin__', 'set'): set,
    ('builtins', 'set'): set,
    ('_codecs', 'encode'): _latin1_encode,
    ('chumpy.ch', 'Ch'): _ChStandIn,
    ('scipy.sparse.csc', 'csc_matrix'): _CscStandIn,
    ('scipy.sparse._csc', 'csc_matrix'): _CscStandIn,
}


class FlameUnpickler(pickle.Unpickler):
    """Admits exactly the classes of FLAME's pickles (FLAME_PICKLE_CLASSES); anything else is refused
    before it is looked up, so a pickle that would call os.system etc. never runs it."""

    def find_class(self, module, name):
        found = FLAME_PICKLE_CLASSES.get((module, name))
        if found is None:
            raise _Refused(module, name)
        return found


def load_flame_pickle(path):
    """The dict in a FLAME generic_model.pkl, chumpy/scipy objects as inert stand-ins. ExportError on failure."""
    p = pathlib.Path(path)
    if not p.exists():
        _fail(path, 'no such file')
    if not p.is_file():
        _fail(path, 'not a regular file')
    with open(p, 'rb') as f:
        head = f.read(2)
        f.seek(0)
        if head[:1] != b'\x80' and head[:1] not in (b'(', b'}', b'c'):
            _fail(path, 'not a pickle (FLAME generic_model.pkl expected)')
        try:
            obj = FlameUnpickler(f, encoding='latin1').load()
        except _Refused as e:
            _fail(path, f'refused to unpickle {e.module}.{e.name}: a FLAME model holds only numpy arrays, '
                        'chumpy Ch and scipy csc_matrix objects (nothing was executed)')
        except EOFError:
            _fail(path, 'truncated pickle (ran out of data)')
        except Exception as e:                    # noqa: BLE001 - any malformed pickle: one line
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            if 'truncated' in msg or 'ran out' in msg:
                _fail(path, f'truncated pickle ({msg[:120]})')
            _fail(path, f'not a readable FLAME pickle ({type(e).__name__}: {msg[:120]})')
        if f.read(1):
            _fail(path, 'trailing data after the pickle')
    if not isinstance(obj, dict):
        _fail(path, f'a FLAME model pickle holds a dict, this one a {type(obj).__name__}')
    return obj


def _flame_array(path, key, v):
    """A numeric ndarray from an ndarray or a chumpy Ch stand-in."""
    if isinstance(v, _ChStandIn):
        v = v.state.get('x')
        if not isinstance(v, np.ndarray):
            _fail(path, f"'{key}' is a chumpy Ch without an array under 'x'")
    if not isinstance(v, np.ndarray):
        _fail(path, f"'{key}' is a {type(v).__name__}, expected an array")
    if v.dtype.kind not in 'fiub':
        _fail(path, f"'{key}' has dtype {v.dtype}, expected numbers")
    return v


def _csc_dense(path, key, m):
    """Dense (rows, cols) float64 array of a csc_matrix stand-in (duplicates summed, as scipy's todense)."""
    st = m.state
    for k in ('data', 'indices', 'indptr', '_shape'):
        if k not in st:
            _fail(path, f"'{key}' csc_matrix has no '{k}'")
    shape = st['_shape']
    if not (isinstance(shape, tuple) and len(shape) == 2 and all(_is_int(n) and n > 0 for n in shape)):
        _fail(path, f"'{key}' csc_matrix has shape {shape!r}")
    rows, cols = shape
    data, indices, indptr = (np.asarray(st[k]) for k in ('data', 'indices', 'indptr'))
    if data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1 or data.dtype.kind not in 'fiu' \
            or indices.dtype.kind not in 'iu' or indptr.dtype.kind not in 'iu':
        _fail(path, f"'{key}' csc_matrix arrays have wrong kinds or dims")
    if len(indptr) != cols + 1 or indptr[0] != 0 or indptr[-1] != len(data) or len(indices) != len(data) \
            or np.any(np.diff(indptr.astype(np.int64)) < 0):
        _fail(path, f"'{key}' csc_matrix of shape {shape} has an inconsistent indptr/indices/data "
                    f'({len(indptr)}, {len(indices)}, {len(data)} entries)')
    if len(indices) and (indices.min() < 0 or indices.max() >= rows):
        _fail(path, f"'{key}' csc_matrix has a row index outside 0..{rows - 1}")
    dense = np.zeros((rows, cols), np.float64)
    col_of = np.repeat(np.arange(cols), np.diff(indptr.astype(np.int64)))
    np.add.at(dense, (indices.astype(np.int64), col_of), data.astype(np.float64))
    return dense


def _finite_f32(path, key, a):
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        _fail(path, f"'{key}' has NaN or infinite values")
    if a.size and np.abs(a).max() > np.finfo(np.float32).max:
        _fail(path, f"'{key}' has values beyond the float32 range")
    return np.ascontiguousarray(a.astype(np.float32))


def _shape_of(path, key, a, want, what):
    if a.shape != want:
        _fail(path, f"'{key}' has shape {_shape_str(a.shape)}, expected {_shape_str(want)} ({what})")


def flame_tensors(path, d):
    """Validate a FLAME pickle's dict and return (list of (name, float32 array), counts dict)."""
    missing = [k for k in FLAME_KEYS if k not in d]
    if missing:
        _fail(path, f"not a FLAME model: missing {', '.join(repr(k) for k in missing)} "
                    f"(keys: {', '.join(repr(k) for k in list(d)[:8])})")
    vt = _flame_array(path, 'v_template', d['v_template'])
    if vt.ndim != 2 or vt.shape[1] != 3 or vt.shape[0] < 3:
        _fail(path, f"'v_template' has shape {_shape_str(vt.shape)}, expected (V, 3)")
    V = vt.shape[0]
    sd = _flame_array(path, 'shapedirs', d['shapedirs'])
    need = FLAME_EXP_START + FLAME_N_EXP
    if sd.ndim != 3 or sd.shape[:2] != (V, 3) or sd.shape[2] < need:
        _fail(path, f"'shapedirs' has shape {_shape_str(sd.shape)}, expected ({V}, 3, ≥ {need}) "
                    '(300 shape + at least 50 expression directions)')
    kt = _flame_array(path, 'kintree_table', d['kintree_table'])
    if kt.ndim != 2 or kt.shape[0] != 2 or kt.shape[1] < 1 or kt.dtype.kind not in 'iu':
        _fail(path, f"'kintree_table' has shape {_shape_str(kt.shape)} dtype {kt.dtype}, expected (2, J) integers")
    J = kt.shape[1]
    if J != FLAME_N_JOINTS:
        _fail(path, f"'kintree_table' has {J} joints; FLAME's pose (global, neck, jaw, two eyes) needs {FLAME_N_JOINTS}")
    parents = kt[0].astype(np.int64)
    parents[0] = -1                               # upstream: stored as 4294967295, set to −1
    for j in range(1, J):
        if not 0 <= parents[j] < j:
            _fail(path, f"'kintree_table' gives joint {j} the parent {parents[j]}: parents must come before "
                        'their children (0 ≤ parent < joint)')
    jr = d['J_regressor']
    jr = _csc_dense(path, 'J_regressor', jr) if isinstance(jr, _CscStandIn) else _flame_array(path, 'J_regressor', jr)
    _shape_of(path, 'J_regressor', jr, (J, V), f'{J} joints from kintree_table, {V} vertices')
    w = _flame_array(path, 'weights', d['weights'])
    _shape_of(path, 'weights', w, (V, J), 'skinning weights: vertices × joints')
    pd = _flame_array(path, 'posedirs', d['posedirs'])
    P = 9 * (J - 1)
    _shape_of(path, 'posedirs', pd, (V, 3, P), f'9 × (J − 1) = {P} pose directions')
    f = _flame_array(path, 'f', d['f'])
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] < 1 or f.dtype.kind not in 'iu':
        _fail(path, f"'f' has shape {_shape_str(f.shape)} dtype {f.dtype}, expected (F, 3) integer vertex indices")
    if f.min() < 0 or f.max() >= V:
        _fail(path, f"'f' has vertex indices outside 0..{V - 1}")
    shapedirs = np.concatenate([sd[:, :, :FLAME_N_SHAPE], sd[:, :, FLAME_EXP_START:need]], axis=2)
    posedirs = np.reshape(pd, (-1, P)).T          # (P, V·3), as upstream
    tensors = [
        ('flame.v_template', _finite_f32(path, 'v_template', vt)),
        ('flame.shapedirs', _finite_f32(path, 'shapedirs', shapedirs)),
        ('flame.posedirs', _finite_f32(path, 'posedirs', posedirs)),
        ('flame.J_regressor', _finite_f32(path, 'J_regressor', jr)),
        ('flame.parents', parents.astype(np.float32)),
        ('flame.lbs_weights', _finite_f32(path, 'weights', w)),
        ('flame.faces', f.astype(np.float32)),
    ]
    counts = dict(n_vertices=V, n_faces=f.shape[0], n_joints=J, n_shape=FLAME_N_SHAPE, n_exp=FLAME_N_EXP,
                  n_pose_basis=P, n_shapedirs_file=sd.shape[2])
    return tensors, counts


def flame_uv_tensors(path, n_faces):
    """vt (N, 2) and ft (n_faces, 3) of an uv_coords.npz, checked."""
    p = pathlib.Path(path)
    if not p.is_file():
        _fail(path, 'no such file')
    try:
        with np.load(str(p), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:                        # noqa: BLE001
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        _fail(path, f'not a readable .npz ({msg[:120]})')
    for k in ('vt', 'ft'):
        if k not in arrays:
            _fail(path, f"no array '{k}' (has {', '.join(sorted(arrays)) or 'none'}): expected uv_coords.npz (vt, ft)")
    vt, ft = arrays['vt'], arrays['ft']
    if vt.ndim != 2 or vt.shape[1] != 2 or vt.shape[0] < 1 or vt.dtype.kind != 'f':
        _fail(path, f"'vt' has shape {_shape_str(vt.shape)} dtype {vt.dtype}, expected (N, 2) floats")
    if ft.ndim != 2 or ft.shape != (n_faces, 3) or ft.dtype.kind not in 'iu':
        _fail(path, f"'ft' has shape {_shape_str(ft.shape)} dtype {ft.dtype}, expected ({n_faces}, 3) integers "
                    '(one uv triangle per face of the model)')
    if np.all(np.isfinite(vt)) and (vt.min() < 0 or vt.max() > 1):
        _fail(path, f"'vt' has values outside [0, 1] ({vt.min():.4g} .. {vt.max():.4g})")
    if ft.min() < 0 or ft.max() >= vt.shape[0]:
        _fail(path, f"'ft' has indices outside 0..{vt.shape[0] - 1}")
    return [('flame.uv.vt', _finite_f32(path, 'vt', vt)), ('flame.uv.ft', ft.astype(np.float32))], vt.shape[0]


def export_flame(pkl_path, out_path, uv_path=None, source=None, log=print):
    """Convert a FLAME generic_model.pkl (+ optional uv npz) into a FLAME file. Returns a summary dict."""
    out_path = pathlib.Path(out_path)
    ins = [pathlib.Path(p).resolve() for p in (pkl_path, uv_path) if p is not None]
    if out_path.resolve() in ins:
        _fail(out_path, 'the output would overwrite an input file')
    if not out_path.parent.is_dir():
        _fail(out_path, f'cannot write: directory {out_path.parent} does not exist')
    d = load_flame_pickle(pkl_path)
    tensors, counts = flame_tensors(pkl_path, d)
    n_uv = 0
    if uv_path is not None:
        uv, n_uv = flame_uv_tensors(uv_path, counts['n_faces'])
        tensors += uv
    meta = {
        'general.format': 'libdpt',
        'general.exporter': EXPORTER,
        'kind': 'flame',
        'flame_source': source if source is not None else pathlib.Path(pkl_path).name,
        'flame.n_shape': counts['n_shape'],
        'flame.n_exp': counts['n_exp'],
    }
    try:
        size = write_dpt(out_path, meta, tensors)
    except OSError as e:
        _fail(out_path, f'cannot write: {e.strerror or e}')
    if log:
        log(f'export: {out_path}')
        log(f"  FLAME          {counts['n_vertices']} vertices, {counts['n_faces']} faces, {counts['n_joints']} joints, "
            f"{counts['n_shape']} shape + {counts['n_exp']} expression directions (of {counts['n_shapedirs_file']}), "
            f"{counts['n_pose_basis']} pose directions" + (f', uv {n_uv}' if uv_path else ''))
        log(f'  {len(tensors)} tensors, file size {size:,} bytes ({size / 2**20:.1f} MiB)')
    return dict(counts, n_uv=n_uv, size=size, meta=meta)


class _Parser(argparse.ArgumentParser):
    def error(self, message):                     # one line, not usage + message
        self.exit(2, f'export: error: {message} (see --help)\n')


def main(argv=None):
    p = _Parser(prog='export.py', description='Convert DiffPoseTalk checkpoints (or a FLAME model) into a libdpt .dpt file.')
    p.add_argument('--dpt', metavar='DENOISER.pt', help='denoiser checkpoint (main_dpt.py)')
    p.add_argument('--style-encoder', metavar='SE.pt', help='style-encoder checkpoint (main_se.py), optional')
    p.add_argument('--stats', metavar='STATS.npz', help='coefficient statistics (stats_train.npz)')
    p.add_argument('-o', '--output', metavar='MODEL.dpt')
    p.add_argument('--dtype', choices=['f32', 'f16'], default='f32',
                   help='f16 stores the large weight matrices as float16 (default f32: bit-exact)')
    p.add_argument('--flame', metavar='generic_model.pkl',
                   help='convert a FLAME 2020/2023 model instead (without --dpt/--stats)')
    p.add_argument('--uv', metavar='uv_coords.npz', help='with --flame: uv coordinates (vt, ft) to include')
    p.add_argument('--flame-source', metavar='TEXT',
                   help="with --flame: the file's flame_source text (default: the pickle's file name)")
    a = p.parse_args(argv)
    if a.flame is not None:
        if a.dpt or a.stats or a.style_encoder:
            p.error('--flame converts a FLAME model alone: leave out --dpt, --stats and --style-encoder')
        if a.dtype != 'f32':
            p.error('--flame writes float32 only')
    else:
        if a.uv or a.flame_source is not None:
            p.error('--uv and --flame-source need --flame')
    missing = [n for n, v in (('--dpt', a.dpt), ('-o/--output', a.output), ('--stats', a.stats))
               if v is None and (a.flame is None or n == '-o/--output')]
    if missing:
        p.error(f"the following arguments are required: {', '.join(missing)}"
                + (' (or --flame generic_model.pkl -o FLAME.dpt)' if a.flame is None else ''))
    try:
        if a.flame is not None:
            export_flame(a.flame, a.output, uv_path=a.uv, source=a.flame_source)
        else:
            export(a.dpt, a.stats, a.output, se_path=a.style_encoder, dtype=a.dtype)
    except ExportError as e:
        print(f'export: error: {e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('export: interrupted', file=sys.stderr)
        return 130
    except Exception as e:                        # noqa: BLE001 - a bug, still one line unless debugging
        if os.environ.get('DPT_EXPORT_DEBUG'):
            raise
        msg = str(e).splitlines()[0] if str(e) else ''
        print(f'export: internal error: {type(e).__name__}: {msg} (set DPT_EXPORT_DEBUG=1 for a traceback)',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
