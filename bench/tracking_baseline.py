"""The baseline the engine's MLflow consumer is measured against: MLflow's own Python client
logging a training run's metrics to a tracking server.

    $BRIGHTRUN_TRACKING_BIN/python bench/tracking_baseline.py URI N

URI: the tracking server (tests/fixtures/mlflow_server.sh DIR PORT serves
http://127.0.0.1:PORT). Creates the experiment `bench-baseline` (or reuses it) and a new run,
logs N metric points, `train_loss` and `learning_rate` alternating as a training run reports
them (one step per pair, steps 1..), with `MlflowClient.log_batch` in batches of MLflow's
maximum (MAX_METRICS_PER_BATCH, 1000), then ends the run. Only the logging is timed. Prints:

    mlflow python client: N points in X s = Y points/s
"""

import os
import sys
import time

# No "View run ... at" lines on stdout when the run ends, no usage telemetry (no network here).
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import mlflow  # noqa: E402 (after the environment it reads)
from mlflow.entities import Metric  # noqa: E402
from mlflow.utils.validation import MAX_METRICS_PER_BATCH  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: tracking_baseline.py URI N")
    uri, n = sys.argv[1], int(sys.argv[2])
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("bench-baseline")
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("bench-baseline")
    )
    run_id = client.create_run(experiment_id, run_name=f"baseline-{n}").info.run_id

    start_ms = int(time.time() * 1000)
    points = []
    for i in range(n):
        step = i // 2 + 1
        if i % 2 == 0:
            points.append(Metric("train_loss", 2.0 / step**0.5, start_ms + step, step))
        else:
            points.append(Metric("learning_rate", 2e-4 * (1 - step / (n // 2 + 1)), start_ms + step, step))

    began = time.perf_counter()
    for i in range(0, n, MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=points[i : i + MAX_METRICS_PER_BATCH])
    elapsed = time.perf_counter() - began
    client.set_terminated(run_id)

    print(f"mlflow python client: {n} points in {elapsed:.2f} s = {n / elapsed:.0f} points/s")


if __name__ == "__main__":
    main()
