"""Data processing nodes: plain Python, standard library only."""
import csv
import io
import logging
import random

FEATURES = ["visits", "duration", "num_views", "cart_adds"]
TARGET = "purchased"

log = logging.getLogger(__name__)


def prepare_data(purchases_raw: str) -> list:
    """Parse the raw CSV text into rows of floats."""
    reader = csv.DictReader(io.StringIO(purchases_raw))
    missing = [c for c in FEATURES + [TARGET] if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"purchases.csv lacks the columns {missing}")
    rows = []
    for row in reader:
        rows.append([float(row[c]) for c in FEATURES] + [int(row[TARGET])])
    log.info("Parsed %d purchase sessions", len(rows))
    return rows


def split_data(rows: list, params: dict) -> tuple:
    """Shuffle with the seed and split into train and test sets."""
    ratio = float(params["test_ratio"])
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"data.test_ratio must be between 0 and 1, got {ratio}")
    rows = list(rows)
    random.Random(int(params["seed"])).shuffle(rows)
    n_test = max(1, int(len(rows) * ratio))

    def as_set(part):
        return {"features": FEATURES, "X": [r[:-1] for r in part], "y": [r[-1] for r in part]}

    return as_set(rows[n_test:]), as_set(rows[:n_test])
