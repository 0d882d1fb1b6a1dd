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
