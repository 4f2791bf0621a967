"""Backend selection: pandas here, cuDF only when it imports and a GPU is visible, forced cuDF fails first."""

from __future__ import annotations

import sys
import types

import pytest

from turbomode_dagster.features import BackendUnavailable, compute_features, resolve_backend
from turbomode_dagster.features.backend import load_engine
from turbomode_dagster_tests.features.test_panel import make_bars


def fake_gpu_stack(monkeypatch: pytest.MonkeyPatch, devices: int | Exception) -> None:
    """Install stand-in `cudf` and `cupy` modules; CuPy reports `devices` GPUs or raises it."""
    cudf = types.ModuleType("cudf")
    cudf.__version__ = "99.0"

    def device_count() -> int:
        if isinstance(devices, Exception):
            raise devices
        return devices

    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=device_count))
    monkeypatch.setitem(sys.modules, "cudf", cudf)
    monkeypatch.setitem(sys.modules, "cupy", cupy)


@pytest.fixture
def no_cudf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `import cudf` fail, as on a machine without the GPU extra."""
    monkeypatch.setitem(sys.modules, "cudf", None)


def test_pandas_is_used_when_asked():
    assert resolve_backend("pandas") == ("pandas", "pandas requested")


def test_auto_falls_back_to_pandas_and_says_why(no_cudf):
    used, reason = resolve_backend("auto")
    assert used == "pandas"
    assert "cuDF is not importable" in reason


def test_forced_cudf_without_cudf_fails_clearly(no_cudf):
    with pytest.raises(BackendUnavailable) as caught:
        resolve_backend("cudf")
    message = str(caught.value)
    assert isinstance(caught.value, RuntimeError)
    assert "cuDF is not importable" in message
    assert "pip install 'turbomode_dagster[gpu]'" in message and "compute.backend" in message


def test_forced_cudf_fails_before_any_computation(no_cudf):
    class Untouchable:
        """Bars that fail the test if the engine so much as looks at them."""

        def __getattr__(self, name):
            raise AssertionError(f"bars were read ({name}) before the backend was checked")

    with pytest.raises(BackendUnavailable):
        compute_features(Untouchable(), backend="cudf")


def test_auto_picks_cudf_when_it_imports_and_a_gpu_is_visible(monkeypatch):
    fake_gpu_stack(monkeypatch, devices=1)
    used, reason = resolve_backend("auto")
    assert used == "cudf" and "99.0" in reason
    assert resolve_backend("cudf")[0] == "cudf"


@pytest.mark.parametrize("devices", [0, RuntimeError("cudaErrorNoDevice")])
def test_cudf_without_a_visible_gpu(monkeypatch, devices):
    fake_gpu_stack(monkeypatch, devices=devices)
    used, reason = resolve_backend("auto")
    assert used == "pandas" and "no CUDA GPU is visible" in reason
    with pytest.raises(BackendUnavailable, match="no CUDA GPU is visible"):
        resolve_backend("cudf")


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="unknown compute backend"):
        resolve_backend("tpu")


def test_features_record_the_backend_and_the_reason(no_cudf):
    features = compute_features(make_bars({"A": (0, 30, 10.0)}), backend="auto")
    assert features.attrs["backend"] == "pandas"
    assert "cuDF is not importable" in features.attrs["backend_reason"]
    assert load_engine("pandas").xp.__name__ == "numpy"
