"""The benchmark scripts import their helpers by bare name (`from nightly_runner import ...`), as when run from
`benchmarks/`; put that folder on the path so the tests import them the same way."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
