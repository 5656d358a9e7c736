"""The purchase-predict API: a Flask app, served by gunicorn (see Dockerfile)."""
import os

from predict import predict


def create_app():
    from flask import Flask, jsonify, request  # imported here: tests need no Flask

    app = Flask(__name__)

    @app.get("/health")
    def health():
        return jsonify(status="ok", env=os.environ.get("ENV", "local"))

    @app.post("/predict")
    def predict_route():
        return jsonify(predict(request.get_json(force=True)))

    return app


app = create_app() if os.environ.get("FLASK_APP_NO_CREATE") is None else None
