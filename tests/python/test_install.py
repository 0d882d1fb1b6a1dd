"""`make install PREFIX=...` then build a consumer program with pkg-config, as a user would."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "tiny.dpt")


def test_install_and_build_consumer(tmp_path):
    prefix = tmp_path / "prefix"
    build = os.environ.get("DPT_BUILD", "build")
    subprocess.run(["make", "-s", f"BUILD={build}", "install", f"PREFIX={prefix}"], cwd=ROOT,
                   check=True, capture_output=True)
    for rel in ["include/dpt.h", "lib/libdpt.a", "lib/pkgconfig/dpt.pc", "bin/dpt-generate",
                "bin/dpt-style", "bin/dpt-info"]:
        assert (prefix / rel).exists(), rel
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "dpt"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    app = tmp_path / "app"
    # plain C, pedantic: the public header must compile as ISO C
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror",
                    os.path.join(ROOT, "tests", "consumer", "app.c"), "-o", str(app)] + flags,
                   check=True, capture_output=True, text=True)
    out = subprocess.run([str(app), FIXTURE], check=True, capture_output=True, text=True).stdout
    assert "feature_dim=" in out and "n_repetitions=1" in out
    bad = subprocess.run([str(app), str(tmp_path / "missing.dpt")], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "missing.dpt" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_missing_target_package_is_named(tmp_path):
    """A (cross) build whose pkg-config finds no zlib for the target stops at once, naming the
    Debian package to install (the target architecture's when cross-compiling), instead of
    dropping -lz and failing at link time; a missing cross compiler is named as such."""
    pc = tmp_path / "pc"
    pc.mkdir()
    for name in ("sndfile", "soxr", "libpng", "libjpeg"):   # every package but zlib
        (pc / f"{name}.pc").write_text(f"Name: {name}\nDescription: stub\nVersion: 1\nLibs: -l{name}\nCflags:\n")
    pkg = f"PKG_CONFIG_LIBDIR={pc} pkg-config"
    host = subprocess.run(["make", "-n", f"BUILD={tmp_path}/b", f"PKG_CONFIG={pkg}", "all"], cwd=ROOT,
                          capture_output=True, text=True)
    assert host.returncode != 0
    machine = subprocess.run(["cc", "-dumpmachine"], capture_output=True, text=True, check=True).stdout.strip()
    assert f"finds no zlib for {machine}; install zlib1g-dev (make deps does)" in host.stderr, host.stderr
    cross = subprocess.run(["make", "-n", f"BUILD={tmp_path}/c", "CROSS=aarch64-linux-gnu-", f"PKG_CONFIG={pkg}",
                            "all"], cwd=ROOT, capture_output=True, text=True)
    assert cross.returncode != 0
    if subprocess.run(["sh", "-c", "command -v aarch64-linux-gnu-gcc"], capture_output=True).returncode == 0:
        assert "finds no zlib for aarch64-linux-gnu; install zlib1g-dev:arm64" in cross.stderr, cross.stderr
    else:
        assert "aarch64-linux-gnu-gcc not found: install the cross compiler" in cross.stderr, cross.stderr
    nocc = subprocess.run(["make", "-n", f"BUILD={tmp_path}/d", "CROSS=no-such-triplet-", "all"], cwd=ROOT,
                          capture_output=True, text=True)
    assert nocc.returncode != 0
    assert "no-such-triplet-gcc not found: install the cross compiler" in nocc.stderr, nocc.stderr
    # with every package present the same command goes ahead
    (pc / "zlib.pc").write_text("Name: zlib\nDescription: stub\nVersion: 1\nLibs: -lz\nCflags:\n")
    ok = subprocess.run(["make", "-n", f"BUILD={tmp_path}/b", f"PKG_CONFIG={pkg}", "all"], cwd=ROOT,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


def test_static_consumer(tmp_path):
    """The fully static consumer path: a STATIC=1 install (BLAS-free, no libsndfile: Debian ships
    no static libsndfile/libsoxr) and `cc -static app.c $(pkg-config --static --libs dpt)`."""
    prefix = tmp_path / "prefix"
    r = subprocess.run(["make", "-s", "-j2", "STATIC=1", "install", f"PREFIX={prefix}"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--static", "--cflags", "--libs", "dpt"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    assert "-lsndfile" not in flags and "-lopenblas" not in flags
    app = tmp_path / "app"
    subprocess.run(["cc", "-static", "-std=c11", os.path.join(ROOT, "tests", "consumer", "app.c"), "-o", str(app)]
                   + flags, check=True, capture_output=True, text=True)
    ldd = subprocess.run(["ldd", str(app)], capture_output=True, text=True)
    assert "not a dynamic executable" in (ldd.stdout + ldd.stderr)
    out = subprocess.run([str(app), FIXTURE], check=True, capture_output=True, text=True).stdout
    assert "feature_dim=" in out and "n_repetitions=1" in out
