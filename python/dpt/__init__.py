"""DiffPoseTalk inference on libdpt: speech in, per-frame FLAME coefficients out, numpy arrays only.

    import dpt, numpy as np
    m = dpt.Model('weights/demo-tiny.dpt')
    out = m.generate('speech.flac', np.zeros(100, np.float32), seed=0, cfg_cond='audio')
    out['exp'].shape, out['pose'].shape, out['shape'].shape   # (1, L, 50), (1, L, 6), (1, L, 100)

Names follow upstream's (Demo.infer_coeffs, infer_vertices) and the dpt-generate command line
(options with underscores). Every computation runs in C with the GIL released; Ctrl-C cancels a
generation (KeyboardInterrupt); library failures raise dpt.Error subclasses carrying the library's
one-line message. Arrays in: any real dtype (float32 C-contiguous arrays are used as they are,
others converted once). Arrays out: float32 (uint8 images).
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _dpt

__all__ = ['Model', 'Stream', 'Flame', 'Renderer', 'Error', 'InvalidArgumentError', 'FileError', 'FormatError',
           'UnsupportedError', 'OutOfMemoryError', 'AudioError', 'NoiseError', 'CancelledError', 'LibraryWarning',
           'load_audio', 'read_image', 'audio_stats', 'library_version', 'SAMPLE_RATE', 'N_EXP', 'N_POSE',
           'N_SHAPE']

#: the package's version: the linked library's (dpt_version()), which is also the wheel's
__version__: str = _dpt.version()

SAMPLE_RATE: int = _dpt.SAMPLE_RATE
N_EXP: int = _dpt.N_EXP
N_POSE: int = _dpt.N_POSE
N_SHAPE: int = _dpt.N_SHAPE

PathLike = Union[str, bytes, 'os.PathLike[str]']
ArrayLike = Any
Progress = Callable[[int, int, int, int], Any]


# ------------------------------------------------------------------------------------------------
# errors

class Error(Exception):
    """A libdpt failure. `status` is the library's dpt_status code, str(e) its one-line message."""
    status: int = 0

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ''


class InvalidArgumentError(Error, ValueError):
    """Bad parameter value, array shape or dtype, NaN/Inf input (DPT_ERR_INVALID_ARG)."""
    status = 1


class FileError(Error, OSError):
    """File missing, unreadable or unwritable (DPT_ERR_IO)."""
    status = 2


class FormatError(Error):
    """The file exists but its contents are corrupt or inconsistent (DPT_ERR_FORMAT)."""
    status = 3


class UnsupportedError(Error):
    """Valid but not supported: option, dtype, model variant, build without a feature (DPT_ERR_UNSUPPORTED)."""
    status = 4


class OutOfMemoryError(Error, MemoryError):
    """An allocation failed (DPT_ERR_NOMEM)."""
    status = 5


class AudioError(Error):
    """Audio could not be decoded or resampled (DPT_ERR_AUDIO)."""
    status = 6


class NoiseError(Error):
    """The replayed noise ran out (DPT_ERR_NOISE)."""
    status = 7


class CancelledError(Error):
    """The progress callback asked to stop (DPT_ERR_CANCELLED). Ctrl-C raises KeyboardInterrupt instead."""
    status = 8


_dpt._register_errors(Error, [Error, InvalidArgumentError, FileError, FormatError, UnsupportedError,
                              OutOfMemoryError, AudioError, NoiseError, CancelledError])


class LibraryWarning(UserWarning):
    """A warning of the library (e.g. a style clip shorter than n_motions), through warnings.warn."""


_dpt._register_warning(LibraryWarning)


def _bad(what: str, reason: str) -> InvalidArgumentError:
    return InvalidArgumentError(f'{what}: {reason}')


# ------------------------------------------------------------------------------------------------
# arrays and files

def _f32(x: ArrayLike, what: str) -> np.ndarray:
    """x as a float32 C-contiguous array: the array itself when it already is one, else one copy."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype == np.float32 and a.flags.c_contiguous and a.flags.aligned and a.dtype.isnative:
        return a
    if a.dtype.kind not in 'fiu':
        raise _bad(what, f'expected a real number array, got dtype {a.dtype}')
    return np.ascontiguousarray(a, dtype=np.float32)


def _shape_str(a: np.ndarray) -> str:
    return str(tuple(a.shape))


def _finite(a: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(a).all():
        i = int(np.flatnonzero(~np.isfinite(a.reshape(-1)))[0])
        raise _bad(what, f'contains NaN or Inf (value {i} is {a.reshape(-1)[i]})')
    return a


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, bytes, os.PathLike))


def _magic(path: PathLike, n: int) -> bytes:
    try:
        with open(path, 'rb') as f:
            return f.read(n)
    except OSError as e:
        raise FileError(f'{os.fsdecode(path)}: cannot open: {e.strerror}') from None


def _load_np(path: PathLike) -> Any:
    """np.load of a .npy or .npz (file contents decide), errors as dpt exceptions naming the file."""
    name = os.fsdecode(path)
    head = _magic(path, 6)
    if not (head.startswith(b'\x93NUMPY') or head[:2] == b'PK'):
        raise FormatError(f'{name}: not a .npy or .npz file')
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise FormatError(f'{name}: {e}') from None


def _npz_get(z: Any, key: str, name: str) -> np.ndarray:
    if key not in z.files:
        raise FormatError(f'{name}: no array {key!r} (it has {", ".join(z.files) or "none"})')
    return z[key]


def load_audio(path: PathLike) -> np.ndarray:
    """Speech file → 16 kHz mono float32 samples (n,), as librosa.load(path, sr=16000).

    Any file libsndfile reads (WAV, FLAC, OGG, MP3, ...), channels averaged, resampled with libsoxr;
    a .npy holds 16 kHz samples already ((n,) or (n, channels), averaged), as dpt-generate -a reads it."""
    if _magic(path, 6).startswith(b'\x93NUMPY'):
        a = _load_np(path)
        name = os.fsdecode(path)
        if a.ndim not in (1, 2) or a.shape[0] < 1 or (a.ndim == 2 and a.shape[1] < 1):
            raise _bad(name, f'speech as .npy is 16 kHz samples, (n,) or (n, channels); got {_shape_str(a)}')
        a = _f32(a, name)
        try:
            return _dpt.audio_to_16k(a.reshape(a.shape[0], -1), 16000.0)
        except Error as e:
            raise type(e)(f'{name}: {e}') from None
    return _dpt.audio_load(path)


def _audio(audio: Union[PathLike, ArrayLike], sample_rate: float) -> np.ndarray:
    """The samples dpt_model_generate takes: 16 kHz mono float32 (n,)."""
    if _is_path(audio):
        return load_audio(audio)
    a = audio if isinstance(audio, np.ndarray) else np.asarray(audio)
    if a.ndim not in (1, 2) or a.size == 0:
        raise _bad('audio', f'expected samples (n,) or (n, channels), got {_shape_str(a)}')
    a = _f32(a, 'audio')
    if a.ndim == 1 and sample_rate == SAMPLE_RATE:
        return a                                         # used in place
    return _dpt.audio_to_16k(a.reshape(a.shape[0], -1), float(sample_rate))


def read_image(path: PathLike) -> np.ndarray:
    """A PNG or JPEG file → (H, W, 3) uint8 RGB (for textures)."""
    return _dpt.image_read(path)


def audio_stats(samples: ArrayLike) -> Tuple[float, float]:
    """(mean, std) upstream normalises a clip by (float32), for Model.stream(norm_mean=..., norm_std=...)."""
    return _dpt.audio_stats(_audio(samples, SAMPLE_RATE))


def library_version() -> str:
    """The linked library's dpt_version() (equal to __version__)."""
    return _dpt.version()


# ------------------------------------------------------------------------------------------------
# generation options: the CLI's long options with underscores

_CONDS = {'audio': _dpt.COND_AUDIO, 'style': _dpt.COND_STYLE}
_OPTIONS = ('n_repetitions', 'scale_audio', 'scale_style', 'cfg_mode', 'cfg_cond', 'dynamic_threshold_ratio',
            'dt_min', 'dt_max', 'seed', 'steps', 'eta', 'flexibility', 'no_head', 'threads', 'noise',
            'no_context_audio_feat', 'style_start', 'progress')


def _number(v: Any, what: str, kind: type) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f'{what}: expected a number, got {type(v).__name__}')
    if kind is int:
        if isinstance(v, (float, np.floating)) and not float(v).is_integer():
            raise _bad(what, f'{v} is not an integer')
        return int(v)
    return float(v)


def _gen_params(options: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[np.ndarray], Optional[Progress], int]:
    """(params dict for _dpt, noise draws or None, progress callable or None, style_start)."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(f'unknown option(s) {", ".join(unknown)}; the options are {", ".join(_OPTIONS)}')
    p: Dict[str, Any] = {}
    o = dict(options)
    for key, field, kind in (('n_repetitions', 'n_repetitions', int), ('scale_audio', 'scale_audio', float),
                             ('scale_style', 'scale_style', float), ('dynamic_threshold_ratio', 'dt_ratio', float),
                             ('dt_min', 'dt_min', float), ('dt_max', 'dt_max', float), ('steps', 'steps', int),
                             ('eta', 'eta', float), ('flexibility', 'flexibility', float)):
        if o.get(key) is not None:
            p[field] = _number(o[key], key, kind)
    if o.get('seed') is not None:
        seed = _number(o['seed'], 'seed', int)
        if not 0 <= seed < 2 ** 64:
            raise _bad('seed', f'{seed} is not in [0, 2**64)')
        p['seed'] = seed
    if o.get('threads') is not None:
        t = _number(o['threads'], 'threads', int)
        if not 0 <= t <= 4096:
            raise _bad('threads', f'{t} is not in [0, 4096] (0 = all cores)')
        p['n_threads'] = t
    for key, field in (('no_head', 'zero_head_pose'), ('no_context_audio_feat', 'no_context_audio_feat')):
        if o.get(key) is not None:
            p[field] = 1 if o[key] else 0
    mode = o.get('cfg_mode')
    if mode is not None:
        modes = {'incremental': _dpt.CFG_INCREMENTAL, 'independent': _dpt.CFG_INDEPENDENT}
        if mode not in modes:
            raise _bad('cfg_mode', f'{mode!r} is not incremental or independent (None = the model\'s)')
        p['cfg_mode'] = modes[mode]
    cond = o.get('cfg_cond')
    if cond is not None:
        names = [c.strip() for c in cond.split(',') if c.strip()] if isinstance(cond, str) else list(cond)
        bits = 0
        for c in names:
            if c not in _CONDS:
                raise _bad('cfg_cond', f'{c!r} is not a guiding condition (audio, style)')
            bits |= _CONDS[c]
        p['cfg_conds'] = bits
    noise = o.get('noise')
    if noise is not None:
        if _is_path(noise):
            name = os.fsdecode(noise)
            noise = _load_np(noise)
            if not isinstance(noise, np.ndarray):
                noise.close()
                raise _bad(name, 'the draws are a .npy, not an .npz')
        noise = _finite(_f32(noise, 'noise'), 'noise').reshape(-1)
    progress = o.get('progress')
    if progress is not None and not callable(progress):
        raise TypeError('progress: expected a callable(window, n_windows, step, n_steps)')
    start = _number(o.get('style_start') or 0, 'style_start', int)
    return p, noise, progress, start


def _shape_vec(shape: Union[PathLike, ArrayLike]) -> np.ndarray:
    """FLAME shape (100,) from (100,), (frames, 100) (the first frame, as upstream) or a file."""
    what = 'shape'
    if _is_path(shape):
        what = os.fsdecode(shape)
        z = _load_np(shape)
        if isinstance(z, np.ndarray):
            shape = z
        else:
            with z:
                shape = _npz_get(z, 'shape', what)
    a = shape if isinstance(shape, np.ndarray) else np.asarray(shape)
    if not ((a.ndim == 1 and a.shape[0] == N_SHAPE) or (a.ndim == 2 and a.shape[1] == N_SHAPE and a.shape[0] >= 1)):
        raise _bad(what, f'a shape template has 100 FLAME shape values, (100,) or (frames, 100); got {_shape_str(a)}')
    a = a[0] if a.ndim == 2 else a
    return _finite(_f32(a, what), what)


def _motion(exp: ArrayLike, pose: ArrayLike, what: str) -> Tuple[np.ndarray, np.ndarray]:
    e = exp if isinstance(exp, np.ndarray) else np.asarray(exp)
    p = pose if isinstance(pose, np.ndarray) else np.asarray(pose)
    if e.ndim == 3 and e.shape[0] == 1:            # one repetition of a generate() result
        e = e[0]
    if p.ndim == 3 and p.shape[0] == 1:
        p = p[0]
    if e.ndim != 2 or e.shape[1] != N_EXP or e.shape[0] < 1:
        raise _bad(what, f"'exp' must have shape (frames, 50), got {_shape_str(e)}")
    if p.ndim != 2 or p.shape[1] != N_POSE:
        raise _bad(what, f"'pose' must have shape (frames, 6), got {_shape_str(p)}")
    if e.shape[0] != p.shape[0]:
        raise _bad(what, f"'exp' has {e.shape[0]} frames but 'pose' {p.shape[0]}")
    return _finite(_f32(e, what), what), _finite(_f32(p, what), what)


# ------------------------------------------------------------------------------------------------
# Model

class Model(_dpt._Model):
    """A DiffPoseTalk model (.dpt file from tools/export.py), loaded and validated.

    Model(path, threads=0, mmap=True): threads 0 = all cores, kept between calls (a per-call
    `threads=` option runs that call on threads of its own). The model may be shared by any number
    of Python threads; results are bit-identical whatever the thread counts. mmap=False reads the
    file instead of mapping it (as dpt_load_params.use_mmap = 0): its matrices are not prepacked,
    so results may differ from a mapped load (and from dpt-generate) in the last bits.
    precision='bf16' computes the denoiser's matrix products with bfloat16 operands and float32
    sums (dpt-generate --precision bf16: about twice as fast on CPUs with AVX512-BF16, README
    gives its deviation from float32); 'int8' with 8-bit weights and activations and integer sums
    (--precision int8: faster still with AVX512-VNNI, I8MM or SDOT, a larger deviation, README); 'f16' rounds the
    weights to half once at load and keeps float32 activations and sums (--precision f16: half the
    weight memory on aarch64); 'f32' (default) is the reference arithmetic."""

    def __init__(self, path: PathLike, threads: int = 0, mmap: bool = True, precision: str = 'f32') -> None:
        super().__init__(path, threads, mmap, precision)

    def __repr__(self) -> str:
        i = self._info
        return f'dpt.Model({i["path"]!r}, audio {i["audio_model"]}, {i["n_params_total"]} parameters)'

    @property
    def info(self) -> Dict[str, Any]:
        """The hyperparameters (dpt_model_info) as a dict: n_motions, fps, d_style, feature_dim, ..."""
        return self._info

    @property
    def meta(self) -> Dict[str, Any]:
        """The file's metadata (key → int, float or str)."""
        return self._meta

    @property
    def threads(self) -> int:
        return self._threads

    @property
    def tensors(self) -> list:
        """The tensor directory: [{'name', 'dtype' ('float32' | 'float16'), 'shape'}], as dpt-info --tensors."""
        return self._tensors

    def tensor(self, name: str) -> np.ndarray:
        """Tensor `name`'s values as float32 (float16 converted), in its stored shape (dpt-info --dump)."""
        return self._tensor(name)

    def _style_vec(self, style: Any, start: int) -> Optional[np.ndarray]:
        """style: None, a vector (d_style,) / (1, d_style), a motion dict {'exp', 'pose'}, or a file
        (.npy vector; .npz with 'style', or a motion clip with 'exp'/'pose')."""
        if style is None:
            return None
        info = self._info
        what = 'style'
        if _is_path(style):
            what = os.fsdecode(style)
            z = _load_np(style)
            if isinstance(z, np.ndarray):
                style = z
            else:
                with z:
                    if 'exp' in z.files:
                        style = {'exp': _npz_get(z, 'exp', what), 'pose': _npz_get(z, 'pose', what)}
                    else:
                        style = _npz_get(z, 'style', what)
        if not info['use_style']:
            raise _bad(what, f'the model {info["path"]} takes no style input (trained without a style encoder)')
        if isinstance(style, Mapping):
            if 'exp' not in style or 'pose' not in style:
                raise _bad(what, "a motion dict has 'exp' (frames, 50) and 'pose' (frames, 6)")
            if not info['has_style_encoder']:
                raise _bad(what, f'a motion clip needs a model with a style encoder; {info["path"]} has none')
            e, p = _motion(style['exp'], style['pose'], what)
            if not 0 <= start < e.shape[0]:
                raise _bad(what, f"style start frame {start} is outside the clip's {e.shape[0]} frames")
            return self.extract_style(e, p, start)
        a = style if isinstance(style, np.ndarray) else np.asarray(style)
        ds = info['d_style']
        if not ((a.ndim == 1 and a.shape[0] == ds) or (a.ndim == 2 and a.shape == (1, ds))):
            raise _bad(what, f"the model's style vector has {ds} values, ({ds},); got {_shape_str(a)}")
        return _finite(_f32(a.reshape(ds), what), what)

    def _run(self, samples: Optional[np.ndarray], features: Optional[np.ndarray], n_samples: int, shape: Any,
             style: Any, options: Dict[str, Any]) -> Dict[str, np.ndarray]:
        params, noise, progress, start = _gen_params(options)
        sh = _shape_vec(shape)
        st = self._style_vec(style, start)
        out = self._generate(samples, features, n_samples, sh, st, params, noise, progress)
        used = out.pop('draws_used')
        if noise is not None and used != noise.size:
            warnings.warn(f'noise: {noise.size - used} of {noise.size} draws left unused', stacklevel=3)
        return out

    def generate(self, audio: Union[PathLike, ArrayLike], shape: Union[PathLike, ArrayLike],
                 style: Any = None, *, sample_rate: float = SAMPLE_RATE, **options: Any) -> Dict[str, np.ndarray]:
        """Speech → coefficients, as upstream's Demo.infer_coeffs(include_shape=True) / dpt-generate.

        audio: a file path (any format libsndfile reads, or a .npy of 16 kHz samples) or samples
               (n,) / (n, channels) at `sample_rate` Hz (averaged and resampled as librosa.load).
        shape: FLAME shape (100,) or (frames, 100) (first frame used), or a .npy/.npz file.
        style: None (null style), a vector (d_style,), a motion dict {'exp', 'pose'} (its style is
               extracted from frames [style_start, style_start + n_motions)), or a file as dpt-generate -s.
        options (dpt-generate's long options with underscores; defaults as there):
               n_repetitions=1, scale_audio=1.15, scale_style=3.0, cfg_mode=None ('incremental' |
               'independent'; None = the model's), cfg_cond=None ('audio,style', a list, '' = none;
               None = the model's), dynamic_threshold_ratio=0 (off), dt_min=1.0, dt_max=4.0, seed=0,
               steps=0 (the full schedule; fewer = strided DDIM), eta=0, flexibility=0, no_head=False,
               threads=None (the model's), noise=None (replayed standard-normal draws: an array or
               .npy, consumed in upstream's order), no_context_audio_feat=False, style_start=0,
               progress=None (callable(window, n_windows, step, n_steps); a true return cancels
               with dpt.CancelledError).
        Returns {'exp': (n, L, 50), 'pose': (n, L, 6), 'shape': (n, L, 100)} float32, n = n_repetitions."""
        samples = _audio(audio, sample_rate)
        return self._run(samples, None, 0, shape, style, options)

    def generate_from_features(self, features: ArrayLike, n_samples: int, shape: Union[PathLike, ArrayLike],
                               style: Any = None, **options: Any) -> Dict[str, np.ndarray]:
        """generate() from audio features saved earlier by encode_audio() (the encoder is skipped).

        n_samples: the 16 kHz sample count the features were encoded from (it fixes the windows and
        the output length). Same options and result as generate()."""
        f = features if isinstance(features, np.ndarray) else np.asarray(features)
        D = self._info['feature_dim']
        if f.ndim != 2 or f.shape[1] != D or f.shape[0] < 1:
            raise _bad('features', f'audio features are (frames, {D}) for this model; got {_shape_str(f)}')
        f = _finite(_f32(f, 'features'), 'features')
        n = _number(n_samples, 'n_samples', int)
        if n < 1:
            raise _bad('n_samples', f'{n} is not a sample count')
        return self._run(None, f, n, shape, style, options)

    def encode_audio(self, audio: Union[PathLike, ArrayLike], *, no_context_audio_feat: bool = False,
                     threads: Optional[int] = None, sample_rate: float = SAMPLE_RATE) -> np.ndarray:
        """The audio features of the whole padded clip (frames, feature_dim), as upstream's
        extract_audio_feature (dpt-generate --save-audio-features); with no_context_audio_feat each
        window's audio encoded alone (upstream's --no_context_audio_feat)."""
        samples = _audio(audio, sample_rate)
        t = -1 if threads is None else _number(threads, 'threads', int)
        if t > 4096:
            raise _bad('threads', f'{t} is not in [0, 4096] (0 = all cores)')
        return self._encode_audio(samples, bool(no_context_audio_feat), t)

    def extract_style(self, exp: ArrayLike, pose: ArrayLike, start: int = 0) -> np.ndarray:
        """Style vector (d_style,) of a motion clip: exp (frames, 50), pose (frames, 6), frames
        [start, start + n_motions) (fewer, with a warning, if short), as upstream's extract_style.py."""
        e, p = _motion(exp, pose, 'motion')
        return self._extract_style(e, p, _number(start, 'start', int))

    def stream(self, shape: Union[PathLike, ArrayLike], style: Any = None, *, chunk_frames: int = 0,
               context_frames: Optional[int] = None, norm: str = 'fixed', norm_mean: float = 0.0,
               norm_std: float = 1.0, threads: Optional[int] = None, **options: Any) -> 'Stream':
        """A live stream (as dpt-stream): push 16 kHz samples as they arrive, pull frames as they are ready.

        chunk_frames 0 (= n_motions): window mode, every n_motions frames of audio (4 s) one window,
        exactly as offline generate(no_context_audio_feat=True) computes it when norm='fixed' is
        given the clip's own audio_stats(). chunk_frames k < n_motions: low-latency mode, every k
        heard frames one full window with the unheard tail masked, k frames out; context_frames of
        earlier audio seen by the encoder (None: n_motions - k). norm='running' normalises each
        window by the statistics of everything pushed so far. threads: the stream's own threads
        (default: the model's count). Generation options as generate() (n_repetitions must be 1;
        noise replays draws in the order the windows use them, from the start again after reset())."""
        params, noise, progress, start = _gen_params(options)
        norms = {'fixed': _dpt.NORM_FIXED, 'running': _dpt.NORM_RUNNING}
        if norm not in norms:
            raise _bad('norm', f"{norm!r} is not 'fixed' or 'running'")
        t = self._threads if threads is None else _number(threads, 'threads', int)
        ctx = -1 if context_frames is None else _number(context_frames, 'context_frames', int)
        return Stream(self, _shape_vec(shape), self._style_vec(style, start), params, t, norms[norm],
                      _number(norm_mean, 'norm_mean', float), _number(norm_std, 'norm_std', float), progress,
                      _number(chunk_frames, 'chunk_frames', int), ctx, noise)


class Stream(_dpt._Stream):
    """A stream on its own threads (Model.stream()). One thread at a time."""

    def push(self, samples: ArrayLike) -> None:
        """Append 16 kHz mono samples (any count). Only copies; NaN/Inf is refused whole."""
        a = samples if isinstance(samples, np.ndarray) else np.asarray(samples)
        if a.ndim != 1:
            raise _bad('samples', f'expected 16 kHz mono samples (n,), got {_shape_str(a)}')
        self._push(_f32(a, 'samples'))

    def flush(self) -> None:
        """End of speech: the remaining audio is padded as offline pads the last window."""
        self._flush()

    def reset(self) -> None:
        """Back to the start of an utterance (noise re-seeded, buffers emptied)."""
        self._reset()

    def pull(self, max_frames: Optional[int] = None) -> Dict[str, np.ndarray]:
        """Ready frames {'exp': (k, 50), 'pose': (k, 6)} (k may be 0). When none is ready and a window's
        audio is complete (or flushed), that window is computed first (one window per pull at most).
        max_frames: at most this many (None: every ready frame)."""
        m = -1 if max_frames is None else _number(max_frames, 'max_frames', int)
        if max_frames is not None and m < 0:
            raise _bad('max_frames', f'{m} is negative')
        exp, pose, k = self._pull(m)
        return {'exp': exp[:k], 'pose': pose[:k]}

    def drain(self) -> Dict[str, np.ndarray]:
        """Every frame that can be computed from what was pushed (all of it after flush())."""
        parts = []
        while True:
            got = self.pull()
            if got['exp'].shape[0] == 0:
                break
            parts.append(got)
        return {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros((0, n), np.float32)
                for k, n in (('exp', N_EXP), ('pose', N_POSE))}

    @property
    def info(self) -> Dict[str, Any]:
        """samples_pushed, frames_pulled, frames_ready, windows_due, flushed, finished, chunk_frames,
        context_frames, draws_used (replayed draws consumed)."""
        return self._info

    @property
    def threads(self) -> int:
        return self._threads


# ------------------------------------------------------------------------------------------------
# FLAME and rendering

class Flame(_dpt._Flame):
    """A FLAME file (tools/export.py --flame): coefficients → vertices, as upstream's infer_vertices."""

    def __init__(self, path: PathLike, threads: int = 0) -> None:
        super().__init__(path, threads)

    @property
    def info(self) -> Dict[str, Any]:
        """n_vertices, n_faces, n_joints, n_shape, n_exp, has_uv, n_uv, source, path."""
        return self._info

    @property
    def faces(self) -> np.ndarray:
        """(n_faces, 3) int32 vertex indices."""
        return self._faces

    @property
    def uv(self) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """(vt (n_uv, 2) float32, ft (n_faces, 3) int32), or None when the file has none."""
        return self._uv

    def vertices(self, coef: Optional[Mapping[str, ArrayLike]] = None, *, exp: Optional[ArrayLike] = None,
                 pose: Optional[ArrayLike] = None, shape: Optional[ArrayLike] = None, no_head: bool = False,
                 threads: Optional[int] = None) -> np.ndarray:
        """Vertices (frames, n_vertices, 3) float32 of FLAME.forward(shape, exp, pose).

        coef: a dict with 'exp' (frames, 50), 'pose' (frames, 6), 'shape' ((100,), (frames, 100)) —
        e.g. one repetition of generate()'s result — or the same as keywords. A generate() result with
        its leading repetition axis gives (n, frames, n_vertices, 3). A shape whose rows are all equal
        is applied once per clip (as dpt-generate --flame does, same bits); no_head zeroes the global
        rotation (upstream's ignore_global_rot)."""
        if coef is not None:
            exp = coef['exp'] if exp is None else exp
            pose = coef['pose'] if pose is None else pose
            shape = coef.get('shape') if shape is None else shape
        if exp is None or pose is None or shape is None:
            raise TypeError('vertices(): exp, pose and shape are needed (a coef dict or keywords)')
        e = exp if isinstance(exp, np.ndarray) else np.asarray(exp)
        if e.ndim == 3:
            s = np.asarray(shape)
            return np.stack([self.vertices(exp=e[i], pose=np.asarray(pose)[i], shape=s[i] if s.ndim == 3 else s,
                                           no_head=no_head, threads=threads) for i in range(e.shape[0])])
        e, p = _motion(e, pose, 'coef')
        s = shape if isinstance(shape, np.ndarray) else np.asarray(shape)
        if s.ndim == 2 and s.shape[0] >= 1 and (s == s[:1]).all():
            s = s[0]                                     # one shape for the clip: computed once
        if not ((s.ndim == 1 and s.shape[0] == N_SHAPE) or (s.ndim == 2 and s.shape == (e.shape[0], N_SHAPE))):
            raise _bad('shape', f'expected (100,) or ({e.shape[0]}, 100), got {_shape_str(s)}')
        s = _finite(_f32(s, 'shape'), 'shape')
        t = -1 if threads is None else _number(threads, 'threads', int)
        return self._vertices(s, e, p, bool(no_head), t)

    def renderer(self, width: int = 640, height: int = 640, *, supersample: int = 1, black_bg: bool = False,
                 threads: int = 0, texture: Union[None, PathLike, ArrayLike] = None) -> 'Renderer':
        """A Renderer for this mesh (its faces and, with a texture, its uv)."""
        uv = self.uv if texture is not None else None
        if texture is not None and uv is None:
            raise _bad('texture', f'the FLAME file {self.info["path"]} has no uv coordinates (export it with --uv)')
        return Renderer(self.faces, self.info['n_vertices'], width, height, supersample=supersample,
                        black_bg=black_bg, threads=threads, texture=texture, uv=uv)

    def frames(self, coef: Mapping[str, ArrayLike], *, no_head: bool = False, chunk: int = 16,
               **render_options: Any) -> Iterator[np.ndarray]:
        """Rendered frames (H, W, 3) uint8 of one clip's coefficients, one at a time (vertices
        computed `chunk` frames at a time): upstream's render_to_video without the video."""
        e, p = _motion(coef['exp'], coef['pose'], 'coef')
        s = np.asarray(coef['shape'])
        if s.ndim == 3 and s.shape[0] == 1:
            s = s[0]
        r = self.renderer(**render_options)
        for a in range(0, e.shape[0], max(1, int(chunk))):
            b = min(e.shape[0], a + max(1, int(chunk)))
            v = self.vertices(exp=e[a:b], pose=p[a:b], shape=s[a:b] if s.ndim == 2 else s, no_head=no_head)
            for f in v:
                yield r.render(f)


class Renderer(_dpt._Renderer):
    """The software renderer (upstream's MeshRenderer scene) for one mesh topology. One thread at a time.

    Renderer(faces (F, 3) int, n_vertices, width=640, height=640, supersample=1, black_bg=False,
    threads=0, texture=None ((H, W, 3) uint8 or a PNG/JPEG path), uv=None ((vt (n, 2), ft (F, 3))))."""

    def __init__(self, faces: ArrayLike, n_vertices: int, width: int = 640, height: int = 640, *,
                 supersample: int = 1, black_bg: bool = False, threads: int = 0,
                 texture: Union[None, PathLike, ArrayLike] = None,
                 uv: Optional[Tuple[ArrayLike, ArrayLike]] = None) -> None:
        f = np.ascontiguousarray(faces, dtype=np.int32)
        if f.ndim != 2 or f.shape[1] != 3:
            raise _bad('faces', f'expected (n_faces, 3) vertex indices, got {_shape_str(f)}')
        tex = None
        if texture is not None:
            tex = read_image(texture) if _is_path(texture) else np.ascontiguousarray(texture)
            if tex.dtype != np.uint8 or tex.ndim != 3 or tex.shape[2] != 3:
                raise _bad('texture', f'expected (H, W, 3) uint8 RGB, got {tex.dtype} {_shape_str(tex)}')
            if uv is None:
                raise _bad('texture', 'a texture needs uv=(vt, ft)')
        vt = ft = None
        if uv is not None:
            vt, ft = _f32(np.asarray(uv[0]), 'uv'), np.ascontiguousarray(uv[1], dtype=np.int32)
        self.width, self.height = int(width), int(height)
        super().__init__(f, int(n_vertices), self.width, self.height, int(supersample), bool(black_bg), int(threads),
                         tex, vt, ft)

    def render(self, vertices: ArrayLike) -> np.ndarray:
        """(n_vertices, 3) → (height, width, 3) uint8; (frames, n_vertices, 3) → (frames, height, width, 3)."""
        v = vertices if isinstance(vertices, np.ndarray) else np.asarray(vertices)
        if v.ndim == 3:
            return np.stack([self.render(f) for f in v]) if len(v) else np.zeros((0, self.height, self.width, 3),
                                                                                  np.uint8)
        if v.ndim != 2 or v.shape[1] != 3:
            raise _bad('vertices', f'expected (n_vertices, 3), got {_shape_str(v)}')
        return self._render(_f32(v, 'vertices'))

    def frames(self, vertices: ArrayLike) -> Iterator[np.ndarray]:
        """One frame (height, width, 3) uint8 at a time of vertices (frames, n_vertices, 3)."""
        for f in vertices:
            yield self.render(f)
