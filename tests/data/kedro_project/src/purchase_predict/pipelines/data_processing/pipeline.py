from kedro.pipeline import Node, Pipeline

from .nodes import prepare_data, split_data


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(prepare_data, ["purchases_raw"], "purchases", name="prepare_data", tags=["data"]),
            Node(split_data, ["purchases", "params:data"], ["train_set", "test_set"], name="split_data",
                 tags=["data"]),
        ]
    )
