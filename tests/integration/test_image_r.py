"""R in r-notebook and datascience-notebook: a real R notebook executed with the image's "ir"
kernel (IRkernel) by `jupyter nbconvert --execute`, as a user's "Run All" would run it, and the
kernel offered by the server the way JupyterLab's launcher lists it. datascience-notebook also
runs a Python notebook with scipy-notebook's packages, in the same image.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from stack_images import (
    Server,
    execute_notebook,
    notebook,
    output_types,
    outputs_text,
    stack_image,
    start_server,
)

pytestmark = pytest.mark.integration

R_ANALYSIS = notebook(
    [
        ("markdown", "# Fuel use by cylinders"),
        (
            "code",
            "suppressPackageStartupMessages(library(tidyverse))\n"
            "by_cyl <- mtcars %>% group_by(cyl) %>% summarise(n = n(), mpg = round(mean(mpg), 1))\n"
            "print(as.data.frame(by_cyl))",
        ),
        (
            "code",
            "ggplot(mtcars, aes(wt, mpg, colour = factor(cyl))) + geom_point()",
        ),
        (
            "code",
            "fit <- lm(mpg ~ wt, data = mtcars)\n"
            "cat(sprintf('slope %.2f\\n', coef(fit)[['wt']]))\n"
            "model <- randomForest::randomForest(mpg ~ ., data = mtcars, ntree = 50)\n"
            "cat('random forest', inherits(model, 'randomForest'), '\\n')",
        ),
        (
            "code",
            "for (pkg in c('caret', 'e1071', 'forecast', 'data.table', 'RSQLite', 'rmarkdown',"
            " 'shiny', 'hexbin', 'htmlwidgets', 'RCurl', 'crayon'))\n"
            "  stopifnot(suppressMessages(requireNamespace(pkg, quietly = TRUE)))\n"
            "cat('packages ok\\n')",
        ),
        (
            "code",
            "lib <- .libPaths()[1]\n"
            "cat(lib, file.access(lib, 2) == 0, getOption('repos')[['CRAN']], '\\n')",
        ),
    ],
    kernel="ir",
    language="R",
)

PYTHON_ANALYSIS = notebook(
    [
        (
            "code",
            "import numpy as np, pandas as pd, scipy.stats as st\n"
            "frame = pd.DataFrame({'x': np.arange(10.0)})\n"
            "print(frame.x.sum(), round(st.norm.cdf(0), 2))",
        ),
    ]
)


def run_r_notebook(server: Server) -> None:
    executed = execute_notebook(server, "fuel.ipynb", R_ANALYSIS)
    assert executed["metadata"]["kernelspec"]["name"] == "ir"
    assert executed["metadata"]["language_info"]["name"] == "R"
    texts = outputs_text(executed)
    table = [line.split() for line in texts[0].splitlines()]
    assert table == [
        ["cyl", "n", "mpg"],
        ["1", "4", "11", "26.7"],
        ["2", "6", "7", "19.7"],
        ["3", "8", "14", "15.1"],
    ], texts[0]
    assert "image/png" in output_types(executed)[1], output_types(executed)  # the ggplot
    assert texts[2] == "slope -5.34\nrandom forest TRUE \n", texts[2]
    assert texts[3] == "packages ok\n", texts[3]
    # install.packages() lands in a library the notebook user owns, from CRAN over HTTPS.
    assert texts[4] == "/usr/local/lib/R/site-library TRUE https://cloud.r-project.org \n"


def assert_home_belongs_to_the_user(server: Server) -> None:
    """Installing R must not leave root-owned files in the user's home (jupyter's runtime dir
    there, made by root at build time, stopped every server from starting)."""
    code, output = server.exec("find /home/jovyan ! -user jovyan")
    assert code == 0 and output == "", output


def assert_ir_kernel_is_offered(server: Server) -> None:
    import json

    status, _, body = server.get("api/kernelspecs")
    assert status == 200, body
    specs = json.loads(body)["kernelspecs"]
    assert {"python3", "ir"} <= set(specs), specs
    assert specs["ir"]["spec"]["language"] == "R"


@pytest.fixture(scope="module")
def r_server(docker_client: Any, run_container_module: Any) -> Iterator[Server]:
    yield start_server(run_container_module, stack_image(docker_client, "r-notebook"))


@pytest.fixture(scope="module")
def datascience_server(docker_client: Any, run_container_module: Any) -> Iterator[Server]:
    yield start_server(run_container_module, stack_image(docker_client, "datascience-notebook"))


def test_r_notebook_offers_the_ir_kernel(r_server: Server) -> None:
    assert_ir_kernel_is_offered(r_server)
    assert_home_belongs_to_the_user(r_server)


def test_r_notebook_runs_an_r_notebook(r_server: Server) -> None:
    run_r_notebook(r_server)


def test_datascience_notebook_offers_the_ir_kernel(datascience_server: Server) -> None:
    assert_ir_kernel_is_offered(datascience_server)
    assert_home_belongs_to_the_user(datascience_server)


def test_datascience_notebook_runs_an_r_notebook(datascience_server: Server) -> None:
    run_r_notebook(datascience_server)


def test_datascience_notebook_runs_a_python_notebook(datascience_server: Server) -> None:
    executed = execute_notebook(datascience_server, "numbers.ipynb", PYTHON_ANALYSIS)
    assert outputs_text(executed) == ["45.0 0.5\n"]
