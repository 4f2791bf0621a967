"""TurboMode on Dagster: a nightly market-data-to-signals pipeline as software-defined assets."""

__version__ = "0.1.0"
