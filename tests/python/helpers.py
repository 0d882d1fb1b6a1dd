"""Shared helpers of the Python tests (importable from any test module: `from helpers import ...`).

* ROOT, BUILD (the build dir: $DPT_BUILD, default build/), TESTDATA (BUILD/testdata), PYTHON (the venv's).
* cached_checkpoints(size, seed, **options): make_checkpoints output cached under
  TESTDATA/ckpt-<key>/, the key covering size, seed, options, the generator's source and the torch and
  transformers versions; safe against concurrent pytest runs (built in a temporary dir, then renamed).
"""

import hashlib
import json
import os
import pathlib
import shutil
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get('DPT_BUILD', 'build'))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
TESTDATA = BUILD / 'testdata'
PYTHON = str(ROOT / '.venv' / 'bin' / 'python') if (ROOT / '.venv' / 'bin' / 'python').exists() else sys.executable

for _p in (ROOT / 'tools', ROOT / 'tools' / 'reference'):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


def _describe(kind, params):
    return json.dumps([kind, params], sort_keys=True, default=str)


def _sources_digest(sources):
    h = hashlib.sha256()
    for src in sources:
        h.update(pathlib.Path(src).read_bytes())
    return h.hexdigest()[:16]


def cache_key(kind, params, sources=()):
    """Short hex key of a JSON-able description plus the contents of the source files it depends on."""
    return hashlib.sha256((_describe(kind, params) + _sources_digest(sources)).encode()).hexdigest()[:16]


def cached_dir(kind, params, build, sources=()):
    """TESTDATA/<kind>-<key>/, made by build(tmp_dir) when absent. Returns the directory.

    A new entry replaces the entries of the same kind and params made from older sources.
    """
    key = cache_key(kind, params, sources)
    final = TESTDATA / f'{kind}-{key}'
    if (final / 'key.json').exists():
        return final
    TESTDATA.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.{kind}-{key}-', dir=TESTDATA))
    desc = {'params': _describe(kind, params), 'sources': _sources_digest(sources)}
    try:
        build(tmp)
        (tmp / 'key.json').write_text(json.dumps(desc) + '\n')
        try:
            os.rename(tmp, final)
        except OSError:                      # another run made it first
            if not (final / 'key.json').exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for old in TESTDATA.glob(f'{kind}-*'):   # stale versions of this entry
        try:
            d = json.loads((old / 'key.json').read_text())
        except (OSError, ValueError):
            continue
        if old != final and isinstance(d, dict) and d.get('params') == desc['params'] \
                and d.get('sources') != desc['sources']:
            shutil.rmtree(old, ignore_errors=True)
    return final


def cached_checkpoints(size='tiny', seed=0, **options):
    """{'denoiser', 'style_encoder' (or None), 'stats'} paths of cached random checkpoints."""
    import torch
    import transformers
    import make_checkpoints as mc
    params = dict(size=size, seed=seed, options=options, torch=torch.__version__,
                  transformers=transformers.__version__)
    d = cached_dir('ckpt', params, lambda tmp: mc.make_checkpoints(tmp, size, seed, **options),
                   sources=[mc.__file__, mc.dpt_schedule.__code__.co_filename])  # its schedule too
    se = d / 'style_encoder.pt'
    return {'denoiser': d / 'denoiser.pt', 'style_encoder': se if se.exists() else None,
            'stats': d / 'stats_train.npz', 'dir': d}


def model_d_style(model):
    """The style vector width of a .dpt model (dpt-info's 'd_style N'), or None without style input."""
    import re
    import subprocess
    out = subprocess.run([str(BUILD / 'dpt-info'), str(model)], capture_output=True, text=True, check=True).stdout
    m = re.search(r'style input yes \(d_style (\d+)\)', out)
    return int(m.group(1)) if m else None
