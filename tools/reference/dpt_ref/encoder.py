"""Audio encoder [spec §4]: transformers' HubertModel / Wav2Vec2Model built from a config read off the
checkpoint's `audio_encoder.*` tensors, and upstream's whole-clip extract_audio_feature with every
intermediate stage available.

Config inference (nothing hard-coded except what shapes cannot tell):
  conv_dim / conv_kernel   from feature_extractor.conv_layers.{i}.conv.weight (O, I, K)
  conv_stride              (5, 2, 2, 2, 2, 2, 2) — strides are not in the weights; only the standard
                           7-layer stack is accepted
  conv_bias                presence of conv_layers.0.conv.bias
  feat_extract_norm        'layer' if conv_layers.1.layer_norm exists, 'group' if only layer 0 has one
  hidden_size              feature_projection.projection.weight rows
  feat_proj_layer_norm     presence of feature_projection.layer_norm.weight
  num_hidden_layers        count of encoder.layers.{l}
  intermediate_size        encoder.layers.0.feed_forward.intermediate_dense.weight rows
  pos conv kernel/groups   from the weight-norm direction v (hidden, hidden/groups, K)
  num_attention_heads      hidden/64 (12 at 768); widths not a multiple of 64 (test models): hidden/8
                           heads — same rule as tools/export.py; override with `heads=`
  mask_time_prob           0.05 if masked_spec_embed is stored (so the key exists), else 0
  fixed                    layer_norm_eps 1e-5, gelu, do_stable_layer_norm False, eager attention
"""

import contextlib

import torch

from .common import RefError, pad_audio, interp_time

WN_OLD = ('weight_g', 'weight_v')
WN_NEW = ('parametrizations.weight.original0', 'parametrizations.weight.original1')
POS_CONV = 'encoder.pos_conv_embed.conv.'
STANDARD_STRIDES = (5, 2, 2, 2, 2, 2, 2)


def default_heads(hidden):
    return hidden // 64 if hidden % 64 == 0 else max(1, hidden // 8)


def infer_config(sd, audio_model='hubert', heads=None):
    """transformers config kwargs from an audio-encoder state dict (keys without the `audio_encoder.` prefix)."""
    def need(key):
        if key not in sd:
            raise RefError(f'audio encoder: missing tensor audio_encoder.{key}')
        return sd[key]

    dims, kernels = [], []
    while f'feature_extractor.conv_layers.{len(dims)}.conv.weight' in sd:
        w = sd[f'feature_extractor.conv_layers.{len(dims)}.conv.weight']
        if w.ndim != 3:
            raise RefError(f'audio encoder: conv layer {len(dims)} weight has shape {tuple(w.shape)}')
        dims.append(int(w.shape[0]))
        kernels.append(int(w.shape[2]))
    if len(dims) != len(STANDARD_STRIDES):
        raise RefError(f'audio encoder: {len(dims)} conv layers; only the standard 7-layer feature encoder '
                       f'is supported (its strides are not stored in the checkpoint)')
    if 'feature_extractor.conv_layers.1.layer_norm.weight' in sd:
        norm = 'layer'
    elif 'feature_extractor.conv_layers.0.layer_norm.weight' in sd:
        norm = 'group'
    else:
        raise RefError('audio encoder: no feature-extractor norm (feat_extract_norm must be group or layer)')
    hidden = int(need('feature_projection.projection.weight').shape[0])
    n_layers = 0
    while f'encoder.layers.{n_layers}.attention.q_proj.weight' in sd:
        n_layers += 1
    if n_layers == 0:
        raise RefError('audio encoder: no encoder layers')
    inter = int(need('encoder.layers.0.feed_forward.intermediate_dense.weight').shape[0])
    v = sd.get(POS_CONV + WN_OLD[1], sd.get(POS_CONV + WN_NEW[1]))
    if v is None:
        raise RefError(f'audio encoder: missing audio_encoder.{POS_CONV}{WN_OLD[1]} '
                       f'(or …{WN_NEW[1]})')
    if v.ndim != 3 or hidden % v.shape[1]:
        raise RefError(f'audio encoder: positional conv direction has shape {tuple(v.shape)}')
    proj_ln = 'feature_projection.layer_norm.weight' in sd
    if audio_model == 'wav2vec2' and not proj_ln:
        raise RefError('audio encoder: wav2vec2 needs feature_projection.layer_norm')
    h = heads or default_heads(hidden)
    if hidden % h:
        raise RefError(f'audio encoder: hidden size {hidden} not divisible by {h} heads')
    cfg = dict(conv_dim=tuple(dims), conv_kernel=tuple(kernels), conv_stride=STANDARD_STRIDES,
               conv_bias='feature_extractor.conv_layers.0.conv.bias' in sd, feat_extract_norm=norm,
               feat_extract_activation='gelu', hidden_size=hidden, num_hidden_layers=n_layers,
               num_attention_heads=h, intermediate_size=inter, hidden_act='gelu', layer_norm_eps=1e-5,
               num_conv_pos_embeddings=int(v.shape[2]), num_conv_pos_embedding_groups=hidden // int(v.shape[1]),
               do_stable_layer_norm=False, mask_time_prob=0.05 if 'masked_spec_embed' in sd else 0.0,
               mask_feature_prob=0.0)
    if audio_model == 'hubert':
        cfg['feat_proj_layer_norm'] = proj_ln
    return cfg


@contextlib.contextmanager
def _no_init():
    """Skip transformers' random weight init (every tensor comes from the checkpoint)."""
    try:
        from transformers.modeling_utils import no_init_weights
    except ImportError:                                   # pragma: no cover
        yield
        return
    with torch.random.fork_rng(devices=[]), no_init_weights():
        yield


def build(cfg, audio_model='hubert'):
    import transformers
    if audio_model == 'hubert':
        config = transformers.HubertConfig(attn_implementation='eager', **cfg)
        cls = transformers.HubertModel
    elif audio_model == 'wav2vec2':
        config = transformers.Wav2Vec2Config(attn_implementation='eager', **cfg)
        cls = transformers.Wav2Vec2Model
    else:
        raise RefError(f'unknown audio_model {audio_model!r}')
    with _no_init():
        model = cls(config)
    return model.eval()


def respell_weight_norm(sd, module):
    """Rename the positional-conv weight-norm keys to the spelling `module` uses (torch < 2.1:
    weight_g/weight_v; ≥ 2.1: parametrizations.weight.original0/1), as PyTorch's own load hook does.
    Returns (new dict, list of renamed source keys)."""
    own = set(module.state_dict().keys())
    want, other = (WN_OLD, WN_NEW) if POS_CONV + WN_OLD[0] in own else (WN_NEW, WN_OLD)
    out, renamed = {}, []
    for k, t in sd.items():
        for src, dst in zip(other, want):
            if k == POS_CONV + src:
                renamed.append(k)
                k = POS_CONV + dst
        out[k] = t
    return out, renamed


STAGES = ('pad_audio', 'conv', 'extract_features', 'feature_projection', 'pos_conv', 'encoder_ln',
          'last_hidden_state', 'back_resample', 'audio_feat')


@torch.no_grad()
def extract_audio_feature(encoder, feature_map, audio, frame_num, fps=25, stages=None,
                          output_attentions=False):
    """Upstream's DiffTalkingHead.extract_audio_feature(audio (B, n), frame_num) with the HubertModel /
    Wav2Vec2Model subclass forward [§4.3–4.5]; returns audio_feat (B, frame_num, D).

    `stages`, if a dict, receives every intermediate tensor (batch row 0, see STAGES; conv is (C_ch, T),
    the others time-major). Upstream forces output_attentions=True; with eager attention the hidden
    states do not depend on it (the weights are computed either way), so it is off by default to keep
    memory linear in the number of layers."""
    x = pad_audio(audio)
    conv = encoder.feature_extractor(x)                           # (B, C_ch, T50)
    n_keep = round(frame_num * 2 * 50 / fps)                      # upstream: frame_num·2 frames asked
    feats = conv[:, :, :n_keep]
    feats = interp_time(feats, frame_num * 2).transpose(1, 2)     # (B, 2F, C_ch)
    proj = encoder.feature_projection(feats)
    if isinstance(proj, tuple):                                   # wav2vec2: (hidden, normed)
        proj = proj[0]
    hidden = proj
    if hasattr(encoder, '_mask_hidden_states') and type(encoder).__name__.startswith('Hubert'):
        hidden = encoder._mask_hidden_states(hidden)              # eval: identity
    out = encoder.encoder(hidden, attention_mask=None, output_attentions=output_attentions,
                          output_hidden_states=False, return_dict=True)
    H = out.last_hidden_state                                     # (B, 2F, hidden)
    back = interp_time(H.transpose(1, 2), frame_num).transpose(1, 2)
    feat = feature_map(back)
    if stages is not None:
        pos = encoder.encoder.pos_conv_embed(hidden)
        stages.update(pad_audio=x[0], conv=conv[0], extract_features=feats[0], feature_projection=proj[0],
                      pos_conv=pos[0], encoder_ln=encoder.encoder.layer_norm(hidden + pos)[0],
                      last_hidden_state=H[0], back_resample=back[0], audio_feat=feat[0])
    return feat
