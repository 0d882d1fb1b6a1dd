"""tools/export.py: every tensor survives export (bit-exact in f32, f16 rounding in f16), the metadata
equals the checkpoint args, the container is well formed, and every bad input ends with one line on
stderr naming the file and exit status 1. Checkpoints come from tools/reference/make_checkpoints.py.
"""

import copy
import math
import os
import pathlib
import struct
import subprocess
import zlib

import numpy as np
import pytest
import torch

import helpers
import export
import make_checkpoints as mc

POS = 'audio_encoder.encoder.pos_conv_embed.conv'
WN = {'old': ('weight_g', 'weight_v'),
      'new': ('parametrizations.weight.original0', 'parametrizations.weight.original1')}

# options → tiny checkpoint variants (each exported and checked in full)
VARIANTS = {
    'default': {},
    'no_head_pose': dict(no_head_pose=True),
    'wav2vec2': dict(audio_model='wav2vec2'),
    'no_style': dict(no_style=True),
    'legacy_args': dict(legacy_args=True),
    'legacy_sinusoidal_nomask_nohead': dict(legacy_args=True, sinusoidal_pe=True, align_mask_width=0,
                                            no_head_pose=True),
    'wn_new': dict(wn_spelling='new'),
    'mask3_no_indicator': dict(align_mask_width=3, use_indicator=False),
    'noise_independent_linear_replicate': dict(target='noise', cfg_mode='independent', diff_schedule='linear',
                                               pad_mode='replicate'),
    'style_guidance_sigmoid': dict(guiding_conditions='style', diff_schedule='sigmoid', n_diff_steps=7),
    'no_guidance_quadratic_wav2vec2_nostyle': dict(guiding_conditions='', diff_schedule='quadratic',
                                                   audio_model='wav2vec2', no_style=True),
}


# ---------------------------------------------------------------------------------------------------------
# Independent checks

def parse_layout(path):
    """Minimal independent parse: header fields, raw bytes and {name: (dtype code, shape, offset, nbytes)}."""
    raw = pathlib.Path(path).read_bytes()
    magic, version, fsize, n_meta, n_t, m_off, t_off, d_off, m_size, t_size, crc, res = \
        struct.unpack_from('<4sIQIIQQQIIII', raw)
    entries, p = {}, t_off
    for _ in range(n_t):
        (n,) = struct.unpack_from('<H', raw, p)
        name = raw[p + 2:p + 2 + n].decode()
        code, ndim = raw[p + 2 + n], raw[p + 3 + n]
        p += 4 + n
        shape = struct.unpack_from(f'<{ndim}Q', raw, p)
        off, nbytes = struct.unpack_from('<QQ', raw, p + 8 * ndim)
        p += 8 * ndim + 16
        entries[name] = (code, shape, off, nbytes)
    hdr = dict(magic=magic, version=version, file_size=fsize, n_meta=n_meta, n_tensors=n_t, meta_offset=m_off,
               table_offset=t_off, data_offset=d_off, meta_size=m_size, table_size=t_size, crc=crc, reserved=res)
    return raw, hdr, entries


def check_container(path):
    raw, h, entries = parse_layout(path)
    assert h['magic'] == b'DPTW' and h['version'] == 1 and h['reserved'] == 0
    assert h['file_size'] == len(raw)
    assert h['meta_offset'] == 64 and h['table_offset'] == 64 + h['meta_size']
    assert h['table_offset'] + h['table_size'] <= h['data_offset'] and h['data_offset'] % 64 == 0
    crc = zlib.crc32(raw[:56] + raw[64:h['table_offset'] + h['table_size']]) & 0xFFFFFFFF
    assert crc == h['crc']
    assert not any(raw[h['table_offset'] + h['table_size']:h['data_offset']])     # zero padding
    regions = sorted((off, off + nb) for _, _, off, nb in entries.values())
    pos = 0
    for a, b in regions:
        assert a % 64 == 0 and a >= pos
        assert not any(raw[h['data_offset'] + pos:h['data_offset'] + a])           # zero gaps
        pos = b
    assert h['data_offset'] + pos == len(raw)
    for name, (code, shape, off, nb) in entries.items():
        assert nb == int(np.prod(shape)) * (4 if code == 0 else 2)
    return entries


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def fold_reference(g, v):
    """Weight norm W = g·v/‖v‖, norm over axes 0, 1 per kernel tap, in float64 (no torch).

    Written independently of the exporter: per-tap squares summed exactly by math.fsum over a
    Python list, so the float64 result (and its float32 rounding) is the same on every machine."""
    v = v.astype(np.float64)
    norms = [math.sqrt(math.fsum(x * x for x in v[:, :, k].ravel().tolist()))
             for k in range(v.shape[2])]
    return g.astype(np.float64) * v / np.array(norms).reshape(1, 1, -1)


def mask_reference(S, width):
    m = np.zeros((1 + S, S), np.float32)
    for r in range(1, 1 + S):
        for j in range(S):
            m[r, j] = 0.0 if abs(j - (r - 1)) <= width - 1 else 1.0
    return m


def f16_eligible(name, shape):
    return len(shape) >= 2 and name.endswith('weight') and int(np.prod(shape)) > 4096


def expected_tensors(paths):
    """{file name: reference array (float32)} straight from the checkpoints."""
    ck = torch.load(paths['denoiser'])
    sd = ck['model']
    out = {}
    spelling = 'new' if f'{POS}.{WN["new"][0]}' in sd else 'old'
    g_key, v_key = (f'{POS}.{s}' for s in WN[spelling])
    for k, t in sd.items():
        if k in ('denoising_net.TE.pe', 'audio_encoder.masked_spec_embed', g_key, v_key):
            continue
        out[k] = t.numpy().astype(np.float32) if t.dtype == torch.bool else t.numpy()
    out[f'{POS}.weight'] = fold_reference(sd[g_key].numpy(), sd[v_key].numpy()).astype(np.float32)
    if paths.get('style_encoder') is not None:
        for k, t in torch.load(paths['style_encoder'])['encoder'].items():
            out['style_encoder.' + k] = t.numpy()
    with np.load(paths['stats']) as z:
        for name in ('exp', 'pose', 'shape'):
            for kind in ('mean', 'std'):
                out[f'stats.{name}_{kind}'] = z[f'{name}_{kind}']
    return out, sd, spelling


def check_tensors(paths, out_file, dtype):
    entries = check_container(out_file)
    meta, got = export.read_dpt(out_file)
    ref, sd, spelling = expected_tensors(paths)
    assert set(got) == set(ref)
    assert set(entries) == set(got)
    for name, r in ref.items():
        g = got[name]
        if dtype == 'f16' and f16_eligible(name, r.shape):
            assert g.dtype == np.float16, name
            assert same_bits(g, r.astype(np.float16)), name                       # round to nearest even
            err = np.abs(g.astype(np.float32) - r)
            assert (err <= np.abs(r) * 2.0 ** -11 + 2.0 ** -25).all(), name     # half an f16 ulp
        else:
            assert g.dtype == np.float32, name
            assert same_bits(g, r), name
    # the folded weight agrees with PyTorch's own weight norm, which sums the squares of a tap in
    # float32 in a machine-dependent order: a few 1e-6 relative at official size
    g_key, v_key = (f'{POS}.{s}' for s in WN[spelling])
    w_torch = torch._weight_norm(sd[v_key], sd[g_key], 2).double().numpy()
    w = got[f'{POS}.weight'].astype(np.float64)
    if dtype == 'f16':                          # half an ulp, f16 subnormals below 2**-14
        np.testing.assert_allclose(w, w_torch, rtol=2.0 ** -10, atol=2.0 ** -24)
    else:
        np.testing.assert_allclose(w, w_torch, rtol=2e-5, atol=0)
    return meta, got


def expected_meta(size, options, paths):
    o = mc._resolve(size, options)
    z = mc.SIZES[size]
    use_style = not o['no_style']
    conds = ','.join(c for c in o['guiding_conditions'].split(',') if c in ('audio', 'style'))
    audio = dict(mc.AUDIO_COMMON, **z['audio'])
    m = {
        'general.format': 'libdpt', 'general.exporter': export.EXPORTER, 'general.iter': 110000,
        'general.source_denoiser': 'denoiser.pt',
        'general.source_style_encoder': 'style_encoder.pt' if paths.get('style_encoder') else '',
        'dpt.target': o['target'], 'dpt.guiding_conditions': conds, 'dpt.cfg_mode': o['cfg_mode'],
        'dpt.n_diff_steps': o['n_diff_steps'], 'dpt.diff_schedule': o['diff_schedule'], 'dpt.rot_repr': 'aa',
        'dpt.no_head_pose': int(o['no_head_pose']), 'dpt.use_style': int(use_style), 'dpt.d_style': z['d_style'],
        'dpt.audio_model': o['audio_model'], 'dpt.architecture': 'decoder',
        'dpt.align_mask_width': o['align_mask_width'], 'dpt.use_learnable_pe': int(not o['sinusoidal_pe']),
        'dpt.use_indicator': int(o['use_indicator']), 'dpt.fps': 25, 'dpt.pad_mode': o['pad_mode'],
        'audio.model_type': o['audio_model'], 'audio.hidden_size': audio['hidden_size'],
        'audio.num_hidden_layers': audio['num_hidden_layers'],
        'audio.num_attention_heads': audio['num_attention_heads'],
        'audio.intermediate_size': audio['intermediate_size'],
        'audio.conv_dim': ','.join(map(str, audio['conv_dim'])),
        'audio.conv_kernel': ','.join(map(str, audio['conv_kernel'])),
        'audio.conv_stride': ','.join(map(str, audio['conv_stride'])),
        'audio.conv_bias': 0, 'audio.feat_extract_norm': 'group', 'audio.feat_proj_layer_norm': 1,
        'audio.do_stable_layer_norm': 0, 'audio.num_conv_pos_embeddings': audio['num_conv_pos_embeddings'],
        'audio.num_conv_pos_embedding_groups': audio['num_conv_pos_embedding_groups'],
        'audio.layer_norm_eps': 1e-5, 'audio.hidden_act': 'gelu',
        'style.present': int(paths.get('style_encoder') is not None),
    }
    for k in ('feature_dim', 'n_heads', 'n_layers', 'mlp_ratio', 'n_motions', 'n_prev_motions'):
        m['dpt.' + k] = z[k]
    if paths.get('style_encoder') is not None:
        m.update({'style.' + k: v for k, v in z['se'].items()})
        m.update({'style.no_head_pose': int(o['no_head_pose']), 'style.fps': 25})
    return m


def check_meta(meta, size, options, paths):
    want = expected_meta(size, options, paths)
    assert meta == want
    for k, v in meta.items():                   # types as FORMAT.md says
        assert type(v) is type(want[k]), k


def check_against_spec(got, size, options):
    """Buffers that the spec defines: alignment mask, schedule (reference values for cosine T=500)."""
    o = mc._resolve(size, options)
    z = mc.SIZES[size]
    S = z['n_motions'] + z['n_prev_motions']
    if o['align_mask_width'] > 0:
        assert same_bits(got['denoising_net.alignment_mask'], mask_reference(S, o['align_mask_width']))
    else:
        assert 'denoising_net.alignment_mask' not in got
    assert ('denoising_net.PE' in got) == (not o['sinusoidal_pe'])
    assert ('denoising_net.PE.pe' in got) == o['sinusoidal_pe']
    assert 'denoising_net.TE.pe' not in got and 'audio_encoder.masked_spec_embed' not in got


# ---------------------------------------------------------------------------------------------------------
# Round trips

@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_tiny_roundtrip_f32(variant, checkpoints, tmp_path):
    options = VARIANTS[variant]
    paths = checkpoints('tiny', 0, **options)
    out = tmp_path / 'm.dpt'
    export.export(paths['denoiser'], paths['stats'], out, se_path=paths['style_encoder'], log=None)
    meta, got = check_tensors(paths, out, 'f32')
    check_meta(meta, 'tiny', options, paths)
    check_against_spec(got, 'tiny', options)


def test_tiny_denoiser_without_its_style_encoder(tiny_checkpoints, tmp_path):
    p = dict(tiny_checkpoints, style_encoder=None)
    out = tmp_path / 'm.dpt'
    export.export(p['denoiser'], p['stats'], out, log=None)
    meta, got = check_tensors(p, out, 'f32')
    assert meta['style.present'] == 0 and meta['dpt.use_style'] == 1
    assert not any(k.startswith('style_encoder.') for k in got)


def test_weight_norm_spellings_give_identical_files(checkpoints, tmp_path):
    files = []
    for spelling in ('old', 'new'):
        paths = checkpoints('tiny', 0, wn_spelling=spelling)
        sd = torch.load(paths['denoiser'])['model']
        assert all(f'{POS}.{s}' in sd for s in WN[spelling])
        out = tmp_path / f'{spelling}.dpt'
        export.export(paths['denoiser'], paths['stats'], out, se_path=paths['style_encoder'], log=None)
        files.append(out.read_bytes())
    assert files[0] == files[1]


def test_export_is_deterministic_and_f16_of_tiny_is_f32(tiny_checkpoints, tmp_path):
    p = tiny_checkpoints
    outs = []
    for name, dtype in (('a', 'f32'), ('b', 'f32'), ('c', 'f16')):
        out = tmp_path / f'{name}.dpt'
        export.export(p['denoiser'], p['stats'], out, se_path=p['style_encoder'], dtype=dtype, log=None)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    # no tiny matrix has more than 4096 elements: the f16 file holds the same float32 tensors
    _, t32 = export.read_dpt(tmp_path / 'a.dpt')
    _, t16 = export.read_dpt(tmp_path / 'c.dpt')
    assert all(same_bits(t32[k], t16[k]) for k in t32)


def test_legacy_args_resolution(checkpoints):
    paths = checkpoints('tiny', 0, legacy_args=True, sinusoidal_pe=True, align_mask_width=0, no_head_pose=True)
    args = vars(torch.load(paths['denoiser'])['args'])
    assert {'use_alignment_mask', 'predict_head_pose', 'use_learnable_pe'} <= set(args)
    assert not {'align_mask_width', 'no_head_pose', 'no_use_learnable_pe'} & set(args)
    r = export.resolve_denoiser_args('x', args)
    assert (r['align_mask_width'], r['no_head_pose'], r['use_learnable_pe']) == (0, True, False)
    # NullableArgs: absent fields of both spellings → no head pose, sinusoidal PE, no mask, no indicator
    bare = {k: v for k, v in args.items() if k not in ('use_alignment_mask', 'predict_head_pose',
                                                       'use_learnable_pe', 'use_indicator')}
    r = export.resolve_denoiser_args('x', bare)
    assert (r['align_mask_width'], r['no_head_pose'], r['use_learnable_pe'], r['use_indicator']) == \
        (0, True, False, False)
    r = export.resolve_denoiser_args('x', dict(bare, use_alignment_mask=True, predict_head_pose=True,
                                               use_learnable_pe=True))
    assert (r['align_mask_width'], r['no_head_pose'], r['use_learnable_pe']) == (1, False, True)


def test_read_dpt_rejects_corruption(tiny_checkpoints, tmp_path):
    p = tiny_checkpoints
    out = tmp_path / 'm.dpt'
    export.export(p['denoiser'], p['stats'], out, se_path=p['style_encoder'], log=None)
    raw = bytearray(out.read_bytes())
    _, h, _ = parse_layout(out)
    for pos in (5, 20, h['meta_offset'] + 3, h['table_offset'] + 7):
        bad = bytearray(raw)
        bad[pos] ^= 0x10
        (tmp_path / 'bad.dpt').write_bytes(bad)
        with pytest.raises(ValueError):
            export.read_dpt(tmp_path / 'bad.dpt')
    (tmp_path / 'short.dpt').write_bytes(raw[:-1])
    with pytest.raises(ValueError):
        export.read_dpt(tmp_path / 'short.dpt')


def test_c_loader_accepts_exports(checkpoints, build_dir, tmp_path):
    info = build_dir / 'dpt-info'
    if not info.exists():
        pytest.skip(f'{info} not built')
    for variant in ('default', 'no_style', 'legacy_sinusoidal_nomask_nohead', 'wav2vec2'):
        paths = checkpoints('tiny', 0, **VARIANTS[variant])
        out = tmp_path / f'{variant}.dpt'
        export.export(paths['denoiser'], paths['stats'], out, se_path=paths['style_encoder'], log=None)
        r = subprocess.run([str(info), str(out)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (variant, r.stderr)


# ---------------------------------------------------------------------------------------------------------
# Official size (checkpoints generated once and cached under build/testdata)

@pytest.fixture(scope='module')
def official_exports(official_checkpoints, tmp_path_factory):
    p = official_checkpoints
    d = tmp_path_factory.mktemp('official')
    outs = {}
    for dtype in ('f32', 'f16'):
        outs[dtype] = d / f'model-{dtype}.dpt'
        r = subprocess.run([helpers.PYTHON, str(helpers.ROOT / 'tools' / 'export.py'), '--dpt', str(p['denoiser']),
                            '--style-encoder', str(p['style_encoder']), '--stats', str(p['stats']),
                            '-o', str(outs[dtype]), '--dtype', dtype], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        assert r.stderr == ''
        assert 'parameters' in r.stdout and 'file size' in r.stdout
    yield outs
    for f in outs.values():
        f.unlink(missing_ok=True)


@pytest.mark.parametrize('dtype', ['f32', 'f16'])
def test_official_roundtrip(dtype, official_checkpoints, official_exports):
    meta, got = check_tensors(official_checkpoints, official_exports[dtype], dtype)
    check_meta(meta, 'official', {}, official_checkpoints)
    check_against_spec(got, 'official', {})
    shapes = {k: v.shape for k, v in got.items()}
    assert shapes[f'{POS}.weight'] == (768, 48, 128)
    assert shapes['audio_feature_map.weight'] == (512, 768)
    assert shapes['denoising_net.alignment_mask'] == (111, 110)
    if dtype == 'f16':
        n16 = sum(v.dtype == np.float16 for v in got.values())
        assert n16 == sum(f16_eligible(k, s) for k, s in shapes.items()) > 100


def test_official_schedule_reference_values(official_exports):
    _, got = export.read_dpt(official_exports['f32'])
    b, ab, s = (got[f'diffusion_sched.{k}'] for k in ('betas', 'alpha_bars', 'sigmas_inflex'))
    assert b.shape == (501,) and b[0] == 0
    np.testing.assert_allclose([b[1], b[2], b[500], ab[250], ab[500], s[2], s[500]],
                               [1.0e-4, 1.06811523e-4, 0.999, 0.493837416, 9.71420544e-9, 7.18687847e-3,
                                0.999495029], rtol=2e-6)


# ---------------------------------------------------------------------------------------------------------
# Bad inputs: one line on stderr naming the file, exit status 1

def _save(path, obj):
    torch.save(obj, path)
    return path


@pytest.fixture(scope='module')
def bad(tiny_checkpoints, checkpoints, tmp_path_factory):
    """name → (argv, file the message must name, expected substring). Built once per module."""
    d = tmp_path_factory.mktemp('bad')
    p = tiny_checkpoints
    dpt, se, stats = str(p['denoiser']), str(p['style_encoder']), str(p['stats'])
    ck = torch.load(dpt)
    se_ck = torch.load(se)
    cases = {}

    def case(name, file, expect, dpt_file=dpt, se_file=se, stats_file=stats, out=None):
        argv = ['--dpt', str(dpt_file), '--stats', str(stats_file), '-o', str(out or d / f'{name}.dpt')]
        if se_file is not None:
            argv[2:2] = ['--style-encoder', str(se_file)]
        cases[name] = (argv, str(file), expect)

    def dpt_variant(name, change):
        c = copy.deepcopy(ck)
        change(c)
        return _save(d / f'{name}.pt', c)

    def with_args(**kw):
        def change(c):
            for k, v in kw.items():
                if v is _DEL:
                    delattr(c['args'], k)
                else:
                    setattr(c['args'], k, v)
        return change

    def with_model(fn):
        return lambda c: fn(c['model'])

    # files of the wrong kind
    case('missing_file', d / 'nope.pt', 'no such file', dpt_file=d / 'nope.pt')
    (d / 'junk.pt').write_text('not a checkpoint\n')
    case('junk', d / 'junk.pt', 'not a PyTorch checkpoint', dpt_file=d / 'junk.pt')
    case('se_as_dpt', se, 'style-encoder checkpoint', dpt_file=se, se_file=None)
    case('dpt_as_se', dpt, 'denoiser checkpoint', se_file=dpt)
    case('npz_as_dpt', stats, '.npz', dpt_file=stats)
    case('pt_as_stats', dpt, 'statistics', stats_file=dpt)
    case('list_ckpt', _save(d / 'list.pt', [1, 2]), 'list', dpt_file=d / 'list.pt')
    case('out_dir_missing', d / 'no' / 'x.dpt', 'does not exist', out=d / 'no' / 'x.dpt')
    # key sets and shapes
    f = dpt_variant('missing_key', with_model(lambda m: m.pop('denoising_net.motion_dec.2.bias')))
    case('missing_key', f, 'motion_dec.2.bias', dpt_file=f)
    f = dpt_variant('extra_key', with_model(lambda m: m.__setitem__('denoising_net.extra', torch.zeros(3))))
    case('extra_key', f, 'denoising_net.extra', dpt_file=f)
    f = dpt_variant('wrong_shape', with_model(lambda m: m.__setitem__('start_motion_feat', torch.zeros(1, 5, 53))))
    case('wrong_shape', f, 'start_motion_feat', dpt_file=f)
    f = dpt_variant('f64_tensor', with_model(lambda m: m.__setitem__('start_audio_feat',
                                                                     m['start_audio_feat'].double())))
    case('f64_tensor', f, 'float64', dpt_file=f)
    f = dpt_variant('nan_tensor', with_model(lambda m: m['null_audio_feat'].view(-1).__setitem__(0, float('nan'))))
    case('nan_tensor', f, 'NaN', dpt_file=f)
    f = dpt_variant('both_wn', with_model(lambda m: m.__setitem__(f'{POS}.parametrizations.weight.original0',
                                                                  m[f'{POS}.weight_g'].clone())))
    case('both_wn', f, 'both key spellings', dpt_file=f)
    f = dpt_variant('no_wn', with_model(lambda m: (m.pop(f'{POS}.weight_g'), m.pop(f'{POS}.weight_v'))))
    case('no_wn', f, 'weight norm', dpt_file=f)
    f = dpt_variant('layer_norm_extractor', with_model(lambda m: m.update({
        'audio_encoder.feature_extractor.conv_layers.1.layer_norm.weight': torch.ones(32),
        'audio_encoder.feature_extractor.conv_layers.1.layer_norm.bias': torch.zeros(32)})))
    case('layer_norm_extractor', f, "'group'", dpt_file=f)
    f = dpt_variant('conv_kernels', with_model(lambda m: m.__setitem__(
        'audio_encoder.feature_extractor.conv_layers.6.conv.weight', torch.zeros(32, 32, 3))))
    case('conv_kernels', f, 'conv kernels', dpt_file=f)
    # unsupported or missing args
    for field, value, expect in (('rot_repr', 'quat', 'rot_repr'), ('architecture', 'encoder', 'architecture'),
                                 ('diff_schedule', 'exp', 'diff_schedule'), ('target', 'v', 'target'),
                                 ('cfg_mode', 'mixed', 'cfg_mode'), ('pad_mode', 'reflect', 'pad_mode'),
                                 ('audio_model', 'whisper', 'audio_model'), ('n_motions', _DEL, 'n_motions'),
                                 ('feature_dim', 30, 'feature_dim'), ('n_heads', 3.0, 'n_heads')):
        f = dpt_variant(f'arg_{field}', with_args(**{field: value}))
        case(f'arg_{field}', f, expect, dpt_file=f)
    # style encoder pairing
    nostyle = checkpoints('tiny', 0, no_style=True)
    case('se_for_no_style', se, 'without a style encoder', dpt_file=nostyle['denoiser'])
    c = torch.load(nostyle['denoiser'])
    c['args'].guiding_conditions = 'audio,style'
    f = _save(d / 'style_guidance_no_style.pt', c)
    case('style_guidance_no_style', f, "'style'", dpt_file=f, se_file=None)
    nohead = checkpoints('tiny', 0, no_head_pose=True)
    case('se_head_pose_mismatch', nohead['style_encoder'], 'no_head_pose', se_file=nohead['style_encoder'])
    enc = mc._style_encoder_module(32, 2, 2, 2, 54)
    wide = copy.deepcopy(se_ck)
    wide['args'].feature_dim = 32
    wide['encoder'] = enc.state_dict()
    f = _save(d / 'se_wide.pt', wide)
    case('se_dim_mismatch', f, 'd_style', se_file=f)
    g = copy.deepcopy(se_ck)
    g['encoder'].pop('transformer.layers.1.norm2.bias')
    f = _save(d / 'se_missing_key.pt', g)
    case('se_missing_key', f, 'norm2.bias', se_file=f)
    g = copy.deepcopy(se_ck)
    del g['args'].no_head_pose
    f = _save(d / 'se_missing_arg.pt', g)
    case('se_missing_arg', f, 'no_head_pose', se_file=f)
    # statistics
    z = dict(np.load(stats))

    def stats_variant(name, **kw):
        s = dict(z)
        for k, v in kw.items():
            if v is None:
                s.pop(k)
            else:
                s[k] = v
        np.savez(d / f'{name}.npz', **s)
        case(name, d / f'{name}.npz', _STATS_EXPECT[name], stats_file=d / f'{name}.npz')

    stats_variant('stats_shape', exp_mean=np.zeros(49, np.float32))
    stats_variant('stats_nan', pose_mean=np.array([0, 1, np.nan, 0, 0, 0], np.float32))
    stats_variant('stats_missing', shape_std=None)
    stats_variant('stats_negative_std', exp_std=-np.ones(50, np.float32))
    stats_variant('stats_zero_shape_std', shape_std=np.zeros(100, np.float32))
    stats_variant('stats_strings', pose_std=np.array(['a'] * 6))
    return cases


_DEL = object()
_STATS_EXPECT = {'stats_shape': 'exp_mean', 'stats_nan': 'NaN', 'stats_missing': 'shape_std',
                 'stats_negative_std': 'negative', 'stats_zero_shape_std': 'zeros', 'stats_strings': 'dtype'}
BAD_CASES = ['missing_file', 'junk', 'se_as_dpt', 'dpt_as_se', 'npz_as_dpt', 'pt_as_stats', 'list_ckpt',
             'out_dir_missing', 'missing_key', 'extra_key', 'wrong_shape', 'f64_tensor', 'nan_tensor', 'both_wn',
             'no_wn', 'layer_norm_extractor', 'conv_kernels', 'arg_rot_repr', 'arg_architecture',
             'arg_diff_schedule', 'arg_target', 'arg_cfg_mode', 'arg_pad_mode', 'arg_audio_model', 'arg_n_motions',
             'arg_feature_dim', 'arg_n_heads', 'se_for_no_style', 'style_guidance_no_style',
             'se_head_pose_mismatch', 'se_dim_mismatch', 'se_missing_key', 'se_missing_arg', 'stats_shape',
             'stats_nan', 'stats_missing', 'stats_negative_std', 'stats_zero_shape_std', 'stats_strings']
# A representative subset also runs as a real subprocess (each costs a Python + torch start).
CLI_CASES = ['missing_file', 'junk', 'se_as_dpt', 'npz_as_dpt', 'missing_key', 'wrong_shape', 'arg_rot_repr',
             'layer_norm_extractor', 'se_for_no_style', 'se_dim_mismatch', 'stats_nan', 'out_dir_missing']


def _check_one_line(stderr, file, expect, rc):
    assert rc == 1
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith('export: error: '), line
    assert file in line, line
    assert expect in line, line
    assert 'Traceback' not in stderr


def test_bad_cases_are_listed(bad):
    assert sorted(bad) == sorted(BAD_CASES)


@pytest.mark.parametrize('name', BAD_CASES)
def test_bad_input_in_process(name, bad, capsys):
    argv, file, expect = bad[name]
    rc = export.main(argv)
    cap = capsys.readouterr()
    _check_one_line(cap.err, file, expect, rc)
    assert not pathlib.Path(argv[argv.index('-o') + 1]).exists()


@pytest.fixture(scope='module')
def cli_results(bad):
    """Run CLI_CASES as subprocesses, two at a time."""
    results, running, queue = {}, [], list(CLI_CASES)
    script = str(helpers.ROOT / 'tools' / 'export.py')
    env = dict(os.environ, PYTHONWARNINGS='default')
    while queue or running:
        while queue and len(running) < 2:
            name = queue.pop(0)
            proc = subprocess.Popen([helpers.PYTHON, script] + bad[name][0], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env)
            running.append((name, proc))
        name, proc = running.pop(0)
        out, err = proc.communicate(timeout=300)
        results[name] = (proc.returncode, out, err)
    return results


@pytest.mark.parametrize('name', CLI_CASES)
def test_bad_input_cli(name, bad, cli_results):
    argv, file, expect = bad[name]
    rc, out, err = cli_results[name]
    _check_one_line(err, file, expect, rc)
    assert out == ''


def test_cli_usage_error_is_one_line():
    r = subprocess.run([helpers.PYTHON, str(helpers.ROOT / 'tools' / 'export.py'), '--dpt', 'x.pt'],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and '--stats' in r.stderr


# ---------------------------------------------------------------------------------------------------------
# The checkpoint generator itself

def test_make_checkpoints_key_set_matches_spec(tiny_checkpoints):
    ck = torch.load(tiny_checkpoints['denoiser'])
    r = export.resolve_denoiser_args('x', vars(ck['args']))
    ac = export.infer_audio_config('x', ck['model'], 'hubert')
    want = export.expected_denoiser(r, ac, WN['old'])
    want.update({'denoising_net.TE.pe': (1, 11, 32), 'audio_encoder.masked_spec_embed': (32,)})
    assert {k: tuple(v.shape) for k, v in ck['model'].items()} == want
    assert ck['model']['denoising_net.alignment_mask'].dtype == torch.bool
    te = ck['model']['denoising_net.TE.pe'][0].double().numpy()
    k = np.arange(16)
    div = np.exp(2 * k * (-np.log(10000.0) / 32))
    np.testing.assert_allclose(te[:, 0::2], np.sin(np.arange(11)[:, None] * div), atol=1e-6)
    np.testing.assert_allclose(te[:, 1::2], np.cos(np.arange(11)[:, None] * div), atol=1e-6)
    with np.load(tiny_checkpoints['stats']) as z:
        assert all(z[k].dtype == np.float32 for k in z.files) and len(z.files) == 12
        assert (z['pose_std'][4:6] == 0).all() and (z['pose_mean'][4:6] == 0).all()


def test_make_checkpoints_deterministic_and_nontrivial():
    a, sa, _ = mc.build_checkpoints('tiny', 3)
    b, sb, _ = mc.build_checkpoints('tiny', 3)
    c, _, _ = mc.build_checkpoints('tiny', 4)
    assert all(torch.equal(a['model'][k], b['model'][k]) for k in a['model'])
    assert all(torch.equal(sa['encoder'][k], sb['encoder'][k]) for k in sa['encoder'])
    computed = {'denoising_net.TE.pe', 'denoising_net.alignment_mask'} | \
        {k for k in a['model'] if k.startswith('diffusion_sched.')}
    for k, t in a['model'].items():
        if k not in computed:
            assert not torch.equal(t, c['model'][k]), k          # seeded
            assert t.float().std() > 0.01 or t.numel() == 1, k    # nothing constant (no 1/0 norms or biases)
    with pytest.raises(ValueError):
        mc.build_checkpoints('tiny', 0, no_style=True, guiding_conditions='audio,style')
    with pytest.raises(TypeError):
        mc.build_checkpoints('tiny', 0, bogus=1)
