"""Shared pytest fixtures. Plain helpers live in helpers.py (importable); fixtures only here.

Fixtures
  checkpoints            session: factory checkpoints(size='tiny', seed=0, **options) → paths dict
                         ({'denoiser', 'style_encoder' or None, 'stats', 'dir'}), cached under
                         $DPT_BUILD/testdata/ckpt-<key>/ (see helpers.cached_checkpoints)
  tiny_checkpoints       session: the default tiny set
  official_checkpoints   session: the default official-size set (generated once, then reused across sessions)
  build_dir              session: the build directory ($DPT_BUILD, default build/)
"""

import pytest

import helpers


@pytest.fixture(scope='session')
def build_dir():
    return helpers.BUILD


@pytest.fixture(scope='session')
def checkpoints():
    return helpers.cached_checkpoints


@pytest.fixture(scope='session')
def tiny_checkpoints(checkpoints):
    return checkpoints('tiny', 0)


@pytest.fixture(scope='session')
def official_checkpoints(checkpoints):
    return checkpoints('official', 0)
