"""training_window gives the rows, values, dtypes and (symbol, date) order the copying sort gave."""

from pathlib import Path

import numpy as np
import pandas as pd

from turbomode_dagster.orchestration.assets.training import training_window
from turbomode_dagster.storage.session_dataset import SessionDataset


def test_the_in_place_reorder_matches_a_stable_sort(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2024-01-01", periods=60)
    rows = pd.DataFrame([(s, d) for d in dates for s in ["MSFT", "AAPL", "ZZ", "IBM"]], columns=["symbol", "date"])
    rows["label_date"] = rows["date"] + pd.Timedelta(days=7)
    rows["f32"] = rng.standard_normal(len(rows)).astype("float32")
    rows["f64"] = rng.standard_normal(len(rows))
    rows["label"] = rng.choice(["SELL", "HOLD", "BUY"], len(rows))
    dataset = SessionDataset(tmp_path / "samples", key="label_date")
    dataset.write(rows, rows["label_date"].unique())
    day = "2024-03-01"
    whole = dataset.read(end=day).drop(columns="label_date")
    expected = whole.sort_values(["symbol", "date"], kind="stable", ignore_index=True)
    got = training_window(dataset, day)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got["symbol"].is_monotonic_increasing
