"""Each task's numbers for `turbomode status` and `turbomode run`, from its assets' metadata."""

from __future__ import annotations

from turbomode_dagster.task_results import task_numbers


def test_ingestion_reports_symbols_and_candles() -> None:
    metadata = {
        "daily_bars": {
            "rows_written": 41500,
            "symbols_ingested": 83,
            "quarantined_rows": 2,
            "symbols_failed": {"ZZZ": "yahoo: unknown symbol"},
        },
        "splits": {"rows_written": 1},
    }
    assert task_numbers(1, metadata) == {
        "symbols_processed": 83,
        "candles_ingested": 41500,
        "quarantined_rows": 2,
        "symbols_failed": 1,
    }


def test_training_reports_the_version_and_whether_it_was_promoted() -> None:
    metadata = {
        "trained_ensemble": {
            "model_version": "tm-abc",
            "status": "challenger",
            "promotion": {"promote": False, "reason": "log loss not better"},
            "ensemble_log_loss": 1.02,
        },
        "oof_predictions": {"rows": 100},
    }
    assert task_numbers(2, metadata) == {
        "model_version": "tm-abc",
        "promoted": False,
        "model_status": "challenger",
        "ensemble_log_loss": 1.02,
    }


def test_scan_counts_each_signal_including_absent_ones() -> None:
    metadata = {"overnight_signals": {"model_version": "tm-abc", "target_date": "2026-11-27", "signals": {"BUY": 4}}}
    assert task_numbers(3, metadata) == {
        "model_version": "tm-abc",
        "target_date": "2026-11-27",
        "buy_signals": 4,
        "sell_signals": 0,
        "hold_signals": 0,
    }


def test_backtest_and_drift_numbers() -> None:
    assert task_numbers(4, {"backtest_report": {"net_sharpe": 0.8, "chance_percentile": 95.0}}) == {
        "net_sharpe": 0.8,
        "chance_percentile": 95.0,
    }
    assert task_numbers(5, {"drift_report": {"features_alerting": 3, "flag_raised": True}}) == {
        "features_alerting": 3,
        "flag_raised": True,
    }


def test_maintenance_adds_up_bytes_reclaimed_per_database_and_folder() -> None:
    metadata = {"db_vacuum": {"bytes_reclaimed": {"market_data.db": 4096, "turbomode.db": 1024}}, "logs": {}}
    metadata["temp_cleanup"] = {"bytes_reclaimed": 100}
    assert task_numbers(6, metadata) == {"bytes_reclaimed": 5220}


def test_a_run_that_recorded_nothing_has_no_numbers() -> None:
    for task in range(1, 7):
        assert task_numbers(task, {}) == {}, task
