"""Package definition for the TurboMode Dagster code location (metadata lives here, tools in pyproject)."""

from setuptools import find_packages, setup

DAGSTER = "1.13.27"

setup(
    name="turbomode_dagster",
    version="0.1.0",
    description="TurboMode nightly market-data-to-signals pipeline as a Dagster asset platform",
    packages=find_packages(exclude=["turbomode_dagster_tests*"]),
    package_data={"turbomode_dagster": ["*.json"], "turbomode_dagster.orchestration": ["*.yaml"]},
    python_requires=">=3.10",
    install_requires=[
        f"dagster=={DAGSTER}",
        f"dagster-webserver=={DAGSTER}",
        # cuDF 25.x supports pandas < 2.4; one tested pandas line serves both backends.
        "pandas>=2.2,<2.4",
        "numpy>=1.26",
        "pyarrow>=15",
        # The Master DB's bulk reads: SQLite straight into Arrow, no Python object per row (storage/columnar.py).
        "adbc-driver-sqlite==1.13.0",
        "xgboost>=2.1",
        "scikit-learn>=1.4",
        "shap>=0.46",
        "scipy>=1.11",
        "yfinance>=1.0",
        # yfinance's HTTP client; sources/yahoo.py subclasses its Session to cap every request's timeout.
        "curl_cffi>=0.15,<0.18",
        "exchange_calendars>=4.5",
        "pydantic>=2.6",
        "matplotlib==3.11.2",  # the backtest's equity-curve picture (Agg canvas, no display)
        # Process liveness for freeing pool slots of killed runs (dagster itself does not require it).
        "psutil>=5.9,<8",
        "pytest>=8",
    ],
    extras_require={
        # dagster-postgres 0.29.27 is the release for dagster 1.13.27 (unpinned, an ancient one resolves).
        "postgres": ["dagster-postgres==0.29.27"],
        "ibkr": ["ib_insync>=0.9.86"],
        "ib_async": ["ib_async>=1.0"],
        # cudf-cu12 26.8 and later require pandas 3; 26.6 is the last line that accepts pandas < 2.4.
        "gpu": ["cudf-cu12>=24.10,<26.8"],
        # compute.executor "dask": dagster-dask 0.29.27 is the integration line of dagster 1.13.27; pip resolves
        # distributed (and dask) 2026.8.0 beside it, pinned so a scheduler and its workers run one version.
        "dask": ["dagster-dask==0.29.27", "distributed==2026.8.0", "dask==2026.8.0"],
        # Kubernetes run launcher and executor (README, Executors); documented, not exercised here.
        "k8s": ["dagster-k8s==0.29.27"],
        # vectorbt is the backtest engine's parity reference and benchmark rival only; 1.0.0 imports
        # with the project's pandas only beside plotly < 6. empyrical checks the metric formulas.
        "test": [
            "pytest>=8",
            "dagster-postgres==0.29.27",  # the PostgreSQL-backed instance tests (turbomode_dagster_tests/postgres/)
            "ta-lib>=0.5",
            "ruff>=0.6",
            "ib_insync>=0.9.86",
            "vectorbt==1.0.0",
            "plotly==5.24.1",
            "empyrical-reloaded==0.7.1",
            "hypothesis==6.170.17",
            "playwright==1.58.0",  # the browser test drives Debian's /usr/bin/chromium (no `playwright install`)
            # test_executors runs the nightly's first two tasks on a two-worker Dask LocalCluster.
            "dagster-dask==0.29.27",
            "distributed==2026.8.0",
            "dask==2026.8.0",
        ],
    },
    entry_points={"console_scripts": ["turbomode=turbomode_dagster.cli:main"]},
)
