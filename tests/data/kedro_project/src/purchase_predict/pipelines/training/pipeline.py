from kedro.pipeline import Node, Pipeline

from .nodes import evaluate_model, train_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(train_model, ["train_set", "params:model"], "model", name="train_model", tags=["training"]),
            Node(evaluate_model, ["model", "test_set", "params:model"], "metrics", name="evaluate_model",
                 tags=["training"]),
        ]
    )
