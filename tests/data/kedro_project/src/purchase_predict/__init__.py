"""purchase_predict: a tiny Kedro project for kiln's kedro-train tests."""

__version__ = "0.1.0"
