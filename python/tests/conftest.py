"""Fixtures of the dpt package's tests. These tests run against the *installed* package (make
test-python-pkg installs it into a fresh venv, build/pyvenv, and runs pytest from outside the source
tree); the repository supplies only data and the programs they are compared with:

  ROOT        the libdpt checkout (this file's grandparent, or $DPT_ROOT)
  BUILD       its build directory with dpt-generate, dpt-style, dpt-mesh ($DPT_BUILD, default build)
  REF_PYTHON  the project's .venv python (PyTorch reference, exporter): $DPT_REF_PYTHON
"""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(os.environ.get('DPT_ROOT') or pathlib.Path(__file__).resolve().parents[2])
BUILD = pathlib.Path(os.environ.get('DPT_BUILD', 'build'))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
REF_PYTHON = os.environ.get('DPT_REF_PYTHON') or str(ROOT / '.venv' / 'bin' / 'python')
DEMO_MODEL = ROOT / 'weights' / 'demo-tiny.dpt'
SPEECH = ROOT / 'examples' / 'data' / 'speech.flac'


@pytest.fixture(scope='session')
def model_path():
    return DEMO_MODEL


@pytest.fixture(scope='session')
def model():
    import dpt
    return dpt.Model(DEMO_MODEL, threads=2)


@pytest.fixture(scope='session')
def standin(tmp_path_factory):
    """The stand-in head (tools/make_standin_head.py) exported as a FLAME file with uv, made by the
    project's venv: {'dpt', 'uv' (npz path)}."""
    d = tmp_path_factory.mktemp('standin')
    subprocess.run([REF_PYTHON, str(ROOT / 'tools' / 'make_standin_head.py'), '-o', str(d / 'head.pkl'),
                    '--uv', str(d / 'uv.npz')], check=True, capture_output=True)
    subprocess.run([REF_PYTHON, str(ROOT / 'tools' / 'export.py'), '--flame', str(d / 'head.pkl'),
                    '--uv', str(d / 'uv.npz'), '-o', str(d / 'head.dpt')], check=True, capture_output=True)
    (d / 'head.pkl').unlink()
    return {'dpt': d / 'head.dpt', 'uv': d / 'uv.npz'}
