"""Task 4 as an asset: the backtest of the night's out-of-fold signals, after costs, against benchmarks and chance.

Partition D trades the `oof_predictions` of D's training run on the stored adjusted_prices panel
(forward adjusted: the same returns as the backward basis), and replaces D's rows in TurboMode.db's
backtest tables, so a rerun leaves them as one run did. Its metadata holds the metrics table, the
equity curve and drawdown as a picture, the chance baseline and numeric values the asset's Plots tab
trends over partitions.
"""

import dagster as dg
import pandas as pd

from turbomode_dagster.backtest.chart import equity_png
from turbomode_dagster.backtest.report import (
    ENSEMBLE,
    GROSS,
    OOF_COLUMNS,
    PRICE_COLUMNS,
    BacktestReport,
    params_from_settings,
    run_backtest,
)
from turbomode_dagster.backtest.tables import HEADLINE_METRICS, headline_table, strategy_table
from turbomode_dagster.config import Settings, TaskId
from turbomode_dagster.orchestration.metadata import png_markdown, preview_table
from turbomode_dagster.orchestration.partitions import trading_days
from turbomode_dagster.orchestration.pools import DATABASE_WRITE_POOL
from turbomode_dagster.orchestration.resources import TurboModeHome
from turbomode_dagster.orchestration.retries import retry_policy_for
from turbomode_dagster.storage.session_dataset import SessionDataset
from turbomode_dagster.storage.turbomode_db import TurboModeDB

GROUP = "backtests"
TRAINED_ENSEMBLE = dg.AssetKey("trained_ensemble")
TRENDED = {"sharpe": "net_sharpe", "cagr": "net_cagr", "max_drawdown": "net_max_drawdown"}


def build_backtest_assets(settings: Settings) -> dg.AssetsDefinition:
    """backtest_report over session partitions."""

    @dg.asset(
        partitions_def=trading_days(settings.history.start_date),
        group_name=GROUP,
        pool=DATABASE_WRITE_POOL,
        kinds={"pandas", "sqlite"},
        deps=[TRAINED_ENSEMBLE],
        ins={
            # at 3,000 symbols the out-of-fold frame is 52 M rows: read the columns the backtest uses,
            # symbol and model as categoricals (5.99 GB peak for Task 4's body instead of 7.79 GB)
            "oof_predictions": dg.AssetIn(metadata={"columns": OOF_COLUMNS, "categorical": ["symbol", "model"]}),
            "adjusted_prices": dg.AssetIn(),
        },
        retry_policy=retry_policy_for(settings.task(TaskId.BACKTEST_GENERATOR)),
        description="Walk-forward, out-of-fold backtest of the ensemble's signals and of each base learner: "
        "long the BUY names (backtest section of the config), traded at the next open after fees and "
        "slippage, against the equal-weight buy-and-hold universe, the index symbol and 20 permuted-signal "
        "strategies; tables backtest_runs, backtest_results, backtest_equity and backtest_trades in "
        "TurboMode.db.",
    )
    def backtest_report(
        context: dg.AssetExecutionContext,
        turbomode: TurboModeHome,
        oof_predictions: pd.DataFrame,
        adjusted_prices: SessionDataset,
    ) -> dg.MaterializeResult:
        cfg = turbomode.settings()
        day = context.partition_key
        prices = adjusted_prices.read(oof_predictions["date"].min(), day, columns=PRICE_COLUMNS)
        try:
            params = params_from_settings(cfg)
            report = run_backtest(prices, oof_predictions, params, day, _model_version(context, day))
        except ValueError as exc:
            raise dg.Failure(description=f"backtest of {day} cannot run: {exc}", allow_retries=False) from exc
        db = TurboModeDB.at_home(turbomode.path())
        written = db.replace_backtest(day, report.tables())
        metadata = _metadata(report, written)
        metadata["turbomode_db_bytes"] = dg.MetadataValue.int(turbomode.stored_bytes(db.path))
        return dg.MaterializeResult(metadata=metadata)

    return backtest_report


def _model_version(context: dg.AssetExecutionContext, day: str) -> str | None:
    """The model version of the training run whose out-of-fold predictions are traded, from its metadata."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=TRAINED_ENSEMBLE, asset_partitions=[day]), limit=1
    ).records
    if not records:
        context.log.warning(f"no materialisation of trained_ensemble for {day} on this instance: model_version unset")
        return None
    value = records[0].asset_materialization.metadata.get("model_version")
    return None if value is None else str(value.value)


def _metadata(report: BacktestReport, written: dict[str, int]) -> dict[str, object]:
    """What a person looks at on the asset page, and the numbers the Plots tab trends."""
    chance = report.chance
    png = equity_png(
        report.equity(ENSEMBLE),
        ENSEMBLE,
        report.benchmark,
        f"{report.session}: ensemble vs {report.benchmark}, out of fold, net of costs",
    )
    trended = {label: report.metric(ENSEMBLE, name) for name, label in TRENDED.items()}
    return {
        "model_version": report.model_version or "unknown",
        "period": f"{report.period[0]} .. {report.period[1]}",
        "benchmark": report.benchmark,
        **{k: dg.MetadataValue.float(v) for k, v in trended.items()},
        "equity_curve": png_markdown(png, "equity curve and drawdown"),
        "metrics": preview_table(headline_table(report), len(HEADLINE_METRICS)),
        "strategies": preview_table(strategy_table(report), 2 * len(report.legs)),
        "gross_sharpe": dg.MetadataValue.float(report.metric(ENSEMBLE, "sharpe", basis=GROSS)),
        "benchmark_net_sharpe": dg.MetadataValue.float(report.metric(report.benchmark, "sharpe")),
        "benchmark_net_cagr": dg.MetadataValue.float(report.metric(report.benchmark, "cagr")),
        "chance_percentile": dg.MetadataValue.float(chance.percentile_rank),
        "chance_net_sharpe": dg.MetadataValue.json(
            {
                "mean": chance.mean,
                "p5": chance.percentile(5),
                "p95": chance.percentile(95),
                "seeds": len(chance.sharpes),
            }
        ),
        "trades": dg.MetadataValue.int(int(report.metric(ENSEMBLE, "number_of_trades"))),
        "fees": dg.MetadataValue.float(report.metric(ENSEMBLE, "total_fees")),
        "rows_written": dg.MetadataValue.json(written),
    }
