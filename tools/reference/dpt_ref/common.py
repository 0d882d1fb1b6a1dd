"""Small shared pieces: errors, legacy argument lookup, sinusoid table, alignment mask, pad_audio,
time interpolation. Spec sections in brackets."""

import math

import torch
import torch.nn.functional as F


class RefError(Exception):
    """A bad input to the reference (file, checkpoint, option). The CLI prints it as one line."""


# ------------------------------------------------------------------------------------------------
# args with upstream's legacy lookup rules [§1.2, utils/common.py NullableArgs]

class LegacyArgs:
    """Attribute view of an argparse Namespace. A field that is present is returned as stored; a missing
    field resolves like upstream's NullableArgs: align_mask_width from use_alignment_mask (absent → 0),
    no_head_pose = not predict_head_pose, no_use_learnable_pe = not use_learnable_pe (an absent legacy
    field counts as None, so both resolve to True), anything else None."""

    def __init__(self, namespace):
        self.__dict__['_fields'] = dict(vars(namespace))

    def __getattr__(self, key):
        fields = self.__dict__['_fields']
        if key in fields:
            return fields[key]
        if key == 'align_mask_width':
            if 'use_alignment_mask' in fields:
                return 1 if fields['use_alignment_mask'] else 0
            return 0
        if key == 'no_head_pose':
            return not fields.get('predict_head_pose')
        if key == 'no_use_learnable_pe':
            return not fields.get('use_learnable_pe')
        return None

    def __setattr__(self, key, value):
        self.__dict__['_fields'][key] = value

    def fields(self):
        return dict(self.__dict__['_fields'])

    def resolved(self, keys):
        return {k: getattr(self, k) for k in keys}


# ------------------------------------------------------------------------------------------------
# Tables [§2.8, §6]

def sinusoid_table(d, max_len=600):
    """pe(d, max_len) as upstream's PositionalEncoding builds it: (1, max_len, d) float32."""
    table = torch.zeros(max_len, d)
    pos = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)               # (max_len, 1)
    freq = torch.exp(torch.arange(0, d, 2).float() * (-math.log(10000.0) / d))  # (d/2,), float32 ops
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table.unsqueeze(0)


class SinusoidPE(torch.nn.Module):
    """Upstream's PositionalEncoding: buffer `pe` (1, max_len, d); forward adds the single row
    pe[seq_len] to every position (the §2.8 quirk); dropout is inactive at eval."""

    def __init__(self, d, max_len=600):
        super().__init__()
        self.register_buffer('pe', sinusoid_table(d, max_len))

    def forward(self, x):
        n = x.shape[1]
        if n >= self.pe.shape[1]:
            raise RefError(f'sequence length {n} ≥ positional table length {self.pe.shape[1]} '
                           f'(upstream raises IndexError here)')
        return x + self.pe[:, n, :]


def alignment_mask(n_frames, width):
    """Cross-attention mask (1+S, S), bool, True = blocked, or None when width ≤ 0 [§6]:
    row 0 (person token) all False; row 1+q allows memory columns q−e … q+e, e = width−1."""
    if width <= 0:
        return None
    e = width - 1
    m = torch.ones(n_frames, n_frames)
    for q in range(n_frames):
        m[q, max(0, q - e):q + e + 1] = 0
    m = m == 1
    return torch.cat([torch.zeros(1, n_frames, dtype=torch.bool), m], 0)


# ------------------------------------------------------------------------------------------------
# Audio helpers [§4.3, §2.6]

def pad_audio(audio, unit=320, threshold=80):
    """models/common.py pad_audio on (B, n): a double reflect pad of `side // 2` each, then a replicate
    pad of 1 when `side` is odd; nothing when side < 0."""
    n = audio.shape[1]
    side = math.ceil((unit * (n // unit) + threshold - n) / 2)
    if side >= 0:
        r, p = side // 2, side % 2
        if r > 0:
            for _ in range(2):
                if r >= audio.shape[1]:
                    raise RefError(f'pad_audio: clip of {audio.shape[1]} samples too short to reflect-pad by {r}')
                audio = F.pad(audio, (r, r), mode='reflect')
        if p > 0:
            audio = F.pad(audio, (1, 1), mode='replicate')
    return audio


def interp_time(x, n_out):
    """F.interpolate(x (B, C, T), size=n_out, mode='linear', align_corners=False)."""
    return F.interpolate(x, size=n_out, mode='linear', align_corners=False)
