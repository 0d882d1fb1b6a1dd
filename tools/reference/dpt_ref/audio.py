"""Audio front end of upstream's demo [spec §3].

load_audio(path)            librosa.load(path, sr=16000, mono=True) of librosa 0.10.2 without librosa:
                            soundfile decode to float32 → channel mean → soxr 'soxr_hq' resample →
                            fix_length to ceil(n·16000/sr) → float32.
resample_to_16k(y, sr)      the resample step alone (librosa.resample semantics), for raw samples.
window_layout(n, fps, L)    the demo's frame bookkeeping (Python float/int semantics).
prepare(samples, ...)       normalisation + window padding → (padded tensor, layout dict).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from .common import RefError

SR = 16000


def resample_to_16k(y, orig_sr, target_sr=SR):
    """librosa.resample(y, orig_sr=orig_sr, target_sr=16000, res_type='soxr_hq') (fix=True, scale=False)."""
    import soxr
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.floating):
        raise RefError(f'samples must be floating point, not {y.dtype}')
    if orig_sr == target_sr:
        return y
    if orig_sr <= 0:
        raise RefError(f'sample rate must be positive, not {orig_sr}')
    ratio = float(target_sr) / orig_sr
    n_samples = int(np.ceil(y.shape[-1] * ratio))
    out = soxr.resample(y, orig_sr, target_sr, quality='soxr_hq')
    if len(out) > n_samples:                      # util.fix_length: trim or zero-pad at the end
        out = out[:n_samples]
    elif len(out) < n_samples:
        out = np.pad(out, (0, n_samples - len(out)), mode='constant')
    return np.asarray(out, dtype=y.dtype)


def to_mono(y):
    """librosa.to_mono on librosa's (channels, n) layout: mean over all leading axes."""
    if y.ndim > 1:
        y = np.mean(y, axis=tuple(range(y.ndim - 1)))
    return y


def decode(path):
    """soundfile decode as librosa's __soundfile_load does: (float32 array in librosa layout, native rate)."""
    import os
    import soundfile as sf
    if not os.path.exists(str(path)):
        raise RefError(f'{path}: no such file')
    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            y = f.read(frames=-1, dtype=np.float32, always_2d=False).T
    except FileNotFoundError:
        raise RefError(f'{path}: no such file')
    except (RuntimeError, sf.SoundFileError) as e:            # LibsndfileError derives from these
        raise RefError(f'{path}: cannot decode audio ({e})')
    return y, sr


def load_audio(path):
    """librosa.load(path, sr=16000, mono=True): float32 (n,) at 16 kHz, and the native rate."""
    y, sr = decode(path)
    y = to_mono(y)
    return resample_to_16k(y, sr), sr


def window_layout(n, fps=25, n_motions=100):
    """demo.py's bookkeeping for a clip of n samples (16 kHz) [§3.3]."""
    unit = 16000. / fps
    n_win = round(unit * n_motions)
    clip_len = int(n / 16000 * fps)
    n_sub = 1 if clip_len <= n_motions else math.ceil(clip_len / n_motions)
    n_pad = n_win * n_sub - n
    n_pad_frames = math.ceil(n_pad / unit)
    L_tot = n_motions * n_sub
    return dict(n_samples=n, fps=fps, n_motions=n_motions, unit=unit, n_win_samples=n_win, clip_len=clip_len,
                n_sub=n_sub, n_pad=n_pad, n_pad_frames=n_pad_frames, L_tot=L_tot,
                n_out=L_tot - max(0, n_pad_frames), n_padded=n + max(0, n_pad))


def normalise(audio):
    """(a − mean) / (std + 1e-5), torch float32, unbiased std [§3.2]."""
    mean, std = torch.mean(audio), torch.std(audio)
    return (audio - mean) / (std + 1e-5)


def prepare(samples, fps=25, n_motions=100, pad_mode='zero'):
    """Demo.infer_coeffs up to the audio encoder: returns (normalised (n,), padded (n_padded,), layout)."""
    audio = torch.from_numpy(np.ascontiguousarray(samples))
    if audio.ndim != 1:
        raise RefError(f'audio must be 1-D, got shape {tuple(audio.shape)}')
    if audio.dtype != torch.float32:
        raise RefError(f'audio samples must be float32, not {audio.dtype}')
    if audio.numel() < 2:
        raise RefError(f'audio has {audio.numel()} samples; at least 2 are needed (unbiased std)')
    audio = normalise(audio)
    lay = window_layout(audio.shape[0], fps, n_motions)
    padded = audio
    if lay['n_pad'] > 0:
        if pad_mode == 'zero':
            value = 0
        elif pad_mode == 'replicate':
            value = audio[-1]
        else:
            raise RefError(f'unknown pad_mode {pad_mode!r}')
        padded = F.pad(audio, (0, lay['n_pad']), value=value)
    return audio, padded, lay
