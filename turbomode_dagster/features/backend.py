"""Which compute backend the feature engine runs on: pandas/NumPy on the host, or cuDF/CuPy on a GPU.

The engine is written once against an array namespace (`xp`: NumPy or CuPy), a frame library
(pandas or cuDF) for the input frame, and an `lfilter` (SciPy or CuPy's port of it). Under
`cudf` the input frame is moved with `cudf.from_pandas`, symbols are factorised by cuDF, and every
window, smoother and cross-sectional mean runs on the GPU as CuPy kernels; the point-in-time
fundamentals join (`pandas.merge_asof`), the sector lookup and the final frame assembly run on
the host. The cuDF path needs cuDF, CuPy and a visible CUDA device; `resolve_backend` checks all
three before any computation starts. The test suite runs the NumPy path and checks the selection
logic with stand-in modules; the CuPy path uses only calls CuPy mirrors from NumPy/SciPy, but has
to be exercised on a GPU machine to be trusted.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

BACKENDS = ("auto", "pandas", "cudf")
HOST_BLOCK_CELLS = 1 << 18
GPU_FIX = (
    "install the GPU extra on a machine with an NVIDIA GPU (pip install 'turbomode_dagster[gpu]'), "
    "or set compute.backend to 'pandas' or 'auto'"
)


class BackendUnavailable(RuntimeError):
    """A forced compute backend cannot run on this machine; the message says what is missing and the fix."""


def _cudf_problem() -> str | None:
    """None when cuDF imports and CuPy sees at least one CUDA device, else what is missing."""
    try:
        cudf = importlib.import_module("cudf")
    except Exception as exc:  # a broken CUDA install raises more than ImportError from cudf
        return f"cuDF is not importable ({type(exc).__name__}: {exc})"
    version = getattr(cudf, "__version__", "?")
    try:
        devices = int(importlib.import_module("cupy").cuda.runtime.getDeviceCount())
    except Exception as exc:  # no driver, no device or no CuPy all surface here
        return f"cuDF {version} imports but no CUDA GPU is visible ({type(exc).__name__}: {exc})"
    if devices < 1:
        return f"cuDF {version} imports but no CUDA GPU is visible (0 devices)"
    return None


def resolve_backend(requested: str) -> tuple[str, str]:
    """Pick the backend for `requested` ('auto' | 'pandas' | 'cudf') and say why, before any work.

    Returns (backend_used, reason). A forced 'cudf' that cannot run raises `BackendUnavailable`.
    """
    choice = str(requested).strip().lower()
    if choice not in BACKENDS:
        raise ValueError(f"unknown compute backend {requested!r}; expected one of {', '.join(BACKENDS)}")
    if choice == "pandas":
        return "pandas", "pandas requested"
    problem = _cudf_problem()
    if problem is None:
        return "cudf", f"cuDF {importlib.import_module('cudf').__version__} with a visible CUDA GPU"
    if choice == "cudf":
        raise BackendUnavailable(f"compute backend 'cudf' requested but {problem}; {GPU_FIX}")
    return "pandas", f"auto chose pandas: {problem}"


@dataclass(frozen=True)
class Engine:
    """The modules one backend computes with: an array namespace, a frame library and an IIR filter.

    `block_cells` bounds the symbol × row matrices the host walks the panel in (cache-sized, so
    memory stays flat); None means the whole panel at once, which suits a GPU.
    """

    name: str
    xp: ModuleType
    frames: ModuleType
    lfilter: Callable[..., Any]
    block_cells: int | None

    def from_pandas(self, frame: pd.DataFrame) -> Any:
        """The input frame in this backend's frame library (cuDF copies it to the GPU)."""
        return frame if self.frames is pd else self.frames.from_pandas(frame)

    def floats(self, series: Any) -> Any:
        """A frame column as a float64 backend array with NaN for missing values."""
        if self.frames is pd:
            return series.to_numpy(dtype="float64", na_value=np.nan)
        return series.astype("float64").to_cupy(na_value=np.nan)

    def to_host(self, array: Any) -> np.ndarray:
        """A NumPy copy (or view, on the host backend) of a backend array."""
        return array if self.xp is np else self.xp.asnumpy(array)

    def index_to_host(self, index: Any) -> pd.Index:
        """A backend index (factorised symbols) as a pandas Index."""
        return index if self.frames is pd else index.to_pandas()


def load_engine(backend: str) -> Engine:
    """The engine for a resolved backend name ('pandas' or 'cudf')."""
    if backend == "pandas":
        from scipy.signal import lfilter

        return Engine("pandas", np, pd, lfilter, HOST_BLOCK_CELLS)
    if backend == "cudf":
        cudf = importlib.import_module("cudf")
        cupy = importlib.import_module("cupy")
        signal = importlib.import_module("cupyx.scipy.signal")
        return Engine("cudf", cupy, cudf, signal.lfilter, None)
    raise ValueError(f"not a resolved backend: {backend!r}; call resolve_backend first")
