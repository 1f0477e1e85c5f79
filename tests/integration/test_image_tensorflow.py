"""TensorFlow in tensorflow-notebook: a real notebook that trains a tiny Keras model (a line,
y = 3x + 1, learnt by SGD) and uses it, executed with `jupyter nbconvert --execute`.

The `full` tier: the image is built only by `berth images build --all` (scripts/test.sh --full).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from stack_images import Server, execute_notebook, notebook, stack_image, start_server

pytestmark = [pytest.mark.integration, pytest.mark.full]

TRAINING = notebook(
    [
        ("markdown", "# A line, learnt"),
        (
            "code",
            "import numpy as np, tensorflow as tf, keras\n"
            "print(tf.__version__.split('.')[0], keras.__version__.split('.')[0], "
            "tf.config.list_physical_devices('GPU'))",
        ),
        (
            "code",
            "keras.utils.set_random_seed(0)\n"
            "x = np.random.default_rng(0).uniform(-1, 1, (256, 1)).astype('float32')\n"
            "y = 3 * x + 1\n"
            "model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])\n"
            "model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss='mse')\n"
            "history = model.fit(x, y, epochs=40, batch_size=32, verbose=0)\n"
            "weight, bias = model.layers[0].get_weights()\n"
            "print(round(float(weight[0, 0]), 2), round(float(bias[0]), 2), "
            "history.history['loss'][-1] < 1e-4, "
            "history.history['loss'][0] > 100 * history.history['loss'][-1])",
        ),
        (
            "code",
            "prediction = model.predict(np.array([[2.0]], dtype='float32'), verbose=0)\n"
            "print(round(float(prediction[0, 0]), 1))",
        ),
        (
            "code",
            # A saved model comes back: the format people move models between images with.
            "model.save('line.keras')\n"
            "again = keras.models.load_model('line.keras')\n"
            "print(np.allclose(again.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0)))",
        ),
    ]
)


def stdout_per_cell(executed: dict[str, Any]) -> list[str]:
    """What each code cell printed to stdout (TensorFlow's C++ log lines go to stderr)."""
    return [
        "".join(
            "".join(output["text"])
            for output in cell["outputs"]
            if output["output_type"] == "stream" and output["name"] == "stdout"
        )
        for cell in executed["cells"]
        if cell["cell_type"] == "code"
    ]


def errors(executed: dict[str, Any]) -> list[str]:
    return [
        f"{output['ename']}: {output['evalue']}"
        for cell in executed["cells"]
        for output in cell.get("outputs", [])
        if output["output_type"] == "error"
    ]


@pytest.fixture(scope="module")
def server(docker_client: Any, run_container_module: Any) -> Iterator[Server]:
    yield start_server(run_container_module, stack_image(docker_client, "tensorflow-notebook"))


def test_a_notebook_trains_a_tiny_model(server: Server) -> None:
    executed = execute_notebook(server, "line.ipynb", TRAINING)
    assert errors(executed) == []
    assert stdout_per_cell(executed) == [
        "2 3 []\n",  # TensorFlow 2, Keras 3, CPU only
        "3.0 1.0 True True\n",
        "7.0\n",
        "True\n",
    ]
    code, output = server.exec("find /home/jovyan ! -user jovyan")
    assert code == 0 and output == "", output
