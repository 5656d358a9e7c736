"""Scoring, without Flask, so that it can be tested anywhere."""


def predict(features):
    """A stand-in model: the probability of a purchase from basket size."""
    n = float(features.get("num_items", 0))
    score = min(1.0, n / 10.0)
    return {"purchase_probability": round(score, 3), "model": "baseline"}
