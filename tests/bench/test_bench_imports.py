"""Importing a bench module changes nothing in the process: the suite imports some of them, and
a benchmark's settings (a long token lifetime, its own key and var directory) leaking into the
environment would change what every later test sees."""

from __future__ import annotations

import subprocess
import sys

from tests.support.paths import ROOT

CHECK = """
import importlib, os, pkgutil
import bench
before = dict(os.environ)
for module in pkgutil.iter_modules(bench.__path__):
    importlib.import_module(f"bench.{module.name}")
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
print(",".join(changed))
"""


def test_importing_the_bench_modules_leaves_the_environment_alone():
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
