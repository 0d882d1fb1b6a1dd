"""Build of the dpt package: the C library is compiled by the repository's own Makefile (the same
flags, per-file SIMD options and pkg-config libraries as `make`) into the build's temporary
directory, and its static archive is linked into the extension dpt._dpt. No prebuilt binaries.

The package lives in python/ of the libdpt repository and needs the rest of the repository to build
(pip >= 21.3 builds in place, so `pip install ./python` sees it). Environment:
  DPT_MAKE_JOBS   parallel jobs of the library build (default: the CPU count, at most 8)
  DPT_MAKE_ARGS   extra make variables, e.g. "BLAS=none" or "NO_SNDFILE=1 NO_IMAGE=1"
"""
import os
import pathlib
import re
import shlex
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
HEADER = ROOT / 'include' / 'dpt.h'


def version():
    """MAJOR.MINOR.PATCH from include/dpt.h: the package's version is the library's."""
    try:
        text = HEADER.read_text()
    except OSError:
        sys.exit(f'setup.py: {HEADER}: not found; the dpt package builds from a libdpt checkout '
                 '(pip install ./python in the repository)')
    parts = [re.search(rf'^#define DPT_VERSION_{k} (\d+)', text, re.M) for k in ('MAJOR', 'MINOR', 'PATCH')]
    if not all(parts):
        sys.exit(f'setup.py: {HEADER}: no DPT_VERSION_MAJOR/MINOR/PATCH lines')
    return '.'.join(p.group(1) for p in parts)


class BuildWithLibrary(build_ext):
    """Runs `make libdpt.a` into build_temp, then links the archive and its libraries."""

    def run(self):
        jobs = os.environ.get('DPT_MAKE_JOBS') or str(min(os.cpu_count() or 1, 8))
        extra = shlex.split(os.environ.get('DPT_MAKE_ARGS', ''))
        # one build directory per variant: make does not rebuild objects when only flags change
        variant = ''.join('-' + re.sub(r'[^A-Za-z0-9]+', '_', a) for a in sorted(extra))
        libdir = pathlib.Path(self.build_temp).resolve() / f'libdpt{variant}'
        env = {k: v for k, v in os.environ.items() if k not in ('MAKEFLAGS', 'MFLAGS', 'MAKELEVEL')}
        make = ['make', '--no-print-directory', '-C', str(ROOT), f'BUILD={libdir}'] + extra
        try:
            subprocess.run(make + ['-s', f'-j{jobs}', f'{libdir}/libdpt.a'], check=True, env=env)
            libs = subprocess.run(make + ['-s', 'print-libs'], check=True, env=env, capture_output=True,
                                  text=True).stdout.split()
        except FileNotFoundError:
            sys.exit('setup.py: make not found: install build-essential (make deps in the repository)')
        except subprocess.CalledProcessError as e:
            sys.exit(f'setup.py: building libdpt failed ({" ".join(e.cmd)}): see the messages above')
        import numpy
        for ext in self.extensions:
            ext.include_dirs += [str(ROOT / 'include'), numpy.get_include()]
            ext.extra_objects.append(str(libdir / 'libdpt.a'))
            # recompile when the header changed (struct layouts), relink when the library did
            ext.depends += [str(HEADER), str(libdir / 'libdpt.a')]
            ext.extra_link_args += libs
        # the extension is relinked when its archive is newer; a switch back to an older variant's
        # archive is not newer: remember which variant the last link used
        stamp = pathlib.Path(self.build_temp).resolve() / 'variant-linked'
        if not stamp.exists() or stamp.read_text() != variant:
            self.force = True
        super().run()
        stamp.write_text(variant)


setup(
    name='dpt',
    version=version(),
    description='DiffPoseTalk inference (speech to FLAME coefficients) on libdpt: numpy in, numpy out',
    long_description=(HERE / 'README.md').read_text() if (HERE / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    license='see the libdpt repository',
    python_requires='>=3.9',
    install_requires=['numpy'],
    packages=['dpt'],
    package_data={'dpt': ['py.typed', '*.pyi']},
    ext_modules=[Extension('dpt._dpt', sources=['dpt/_dpt.c'],
                           extra_compile_args=['-std=c11', '-Wall', '-Wextra'],
                           # the archive's symbols stay inside the extension
                           extra_link_args=['-Wl,--exclude-libs,ALL'])],
    cmdclass={'build_ext': BuildWithLibrary},
    zip_safe=False,
)
