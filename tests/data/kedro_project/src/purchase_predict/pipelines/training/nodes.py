"""Training nodes: a logistic regression by batch gradient descent, in plain
Python (standard library only), so that the project runs anywhere."""
import logging
import math
import time

log = logging.getLogger(__name__)


def _sigmoid(z: float) -> float:
    if z < -60:
        return 0.0
    if z > 60:
        return 1.0
    return 1.0 / (1.0 + math.exp(-z))


def _standardize(X, mean, std):
    return [[(v - m) / s for v, m, s in zip(row, mean, std)] for row in X]


def train_model(train_set: dict, params: dict) -> dict:
    lr = float(params["learning_rate"])
    epochs = int(params["n_epochs"])
    l2 = float(params.get("l2", 0.0))
    if lr <= 0:
        raise ValueError(f"model.learning_rate must be positive, got {lr}")
    if epochs < 1:
        raise ValueError(f"model.n_epochs must be at least 1, got {epochs}")
    slow = float(params.get("slow_seconds", 0) or 0)
    if slow > 0:  # lets tests cancel a run while a node is busy
        time.sleep(slow)

    X, y = train_set["X"], train_set["y"]
    n, k = len(X), len(X[0])
    mean = [sum(r[j] for r in X) / n for j in range(k)]
    std = [math.sqrt(sum((r[j] - mean[j]) ** 2 for r in X) / n) or 1.0 for j in range(k)]
    Xs = _standardize(X, mean, std)
    w, b = [0.0] * k, 0.0
    for _ in range(epochs):
        gw, gb = [0.0] * k, 0.0
        for row, target in zip(Xs, y):
            err = _sigmoid(sum(wi * xi for wi, xi in zip(w, row)) + b) - target
            for j in range(k):
                gw[j] += err * row[j]
            gb += err
        w = [wi - lr * (g / n + l2 * wi) for wi, g in zip(w, gw)]
        b -= lr * gb / n
    log.info("Trained on %d rows for %d epochs", n, epochs)
    return {
        "type": "logistic_regression",
        "features": train_set["features"],
        "mean": mean,
        "std": std,
        "weights": w,
        "bias": b,
        "learning_rate": lr,
        "n_epochs": epochs,
        "l2": l2,
    }


def evaluate_model(model: dict, test_set: dict, params: dict) -> dict:
    Xs = _standardize(test_set["X"], model["mean"], model["std"])
    y = test_set["y"]
    correct, loss = 0, 0.0
    for row, target in zip(Xs, y):
        p = _sigmoid(sum(wi * xi for wi, xi in zip(model["weights"], row)) + model["bias"])
        correct += int((p >= 0.5) == bool(target))
        p = min(max(p, 1e-12), 1 - 1e-12)
        loss -= target * math.log(p) + (1 - target) * math.log(1 - p)
    metrics = {
        "accuracy": round(correct / len(y), 4),
        "log_loss": round(loss / len(y), 4),
        "n_test": len(y),
        "n_epochs": model["n_epochs"],
        "learning_rate": model["learning_rate"],
    }
    log.info("Model accuracy on %d test rows: %.3f", len(y), metrics["accuracy"])
    return metrics
