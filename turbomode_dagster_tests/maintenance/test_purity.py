"""The maintenance core is usable without Dagster: importing it loads no dagster module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_maintenance_package_imports_no_dagster() -> None:
    modules = ("databases", "files", "logs", "outcome", "retention", "weekly")
    code = "; ".join(f"import turbomode_dagster.maintenance.{m}" for m in modules)
    code += "; import sys; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))"
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
