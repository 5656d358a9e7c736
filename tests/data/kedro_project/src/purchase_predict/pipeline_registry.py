"""Project pipelines."""
from kedro.pipeline import Pipeline

from purchase_predict.pipelines import data_processing, training


def register_pipelines() -> dict[str, Pipeline]:
    data_pipeline = data_processing.create_pipeline()
    training_pipeline = training.create_pipeline()
    return {
        "data_processing": data_pipeline,
        "training": training_pipeline,
        "__default__": data_pipeline + training_pipeline,
    }
