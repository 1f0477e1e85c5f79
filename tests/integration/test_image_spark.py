"""Spark in pyspark-notebook and all-spark-notebook: real notebooks that start a local Spark
session (a JVM from Debian's Java 17, Spark from the PyPI package) and run jobs on it, executed
with `jupyter nbconvert --execute` as a user's "Run All" would; in all-spark-notebook an R
notebook does the same through reticulate.

The `full` tier: each notebook starts a JVM and Spark, about a minute on a busy 2-CPU machine,
and the images are built only by `berth images build --all` (scripts/test.sh --full does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from stack_images import Server, execute_notebook, notebook, outputs_text, stack_image, start_server

pytestmark = [pytest.mark.integration, pytest.mark.full]

SPARK_SESSION = (
    "import os\n"
    "from pyspark.sql import SparkSession, functions as F\n"
    "spark = SparkSession.builder.master('local[2]').appName('berth-test').getOrCreate()\n"
    "print(spark.version, os.environ['SPARK_HOME'], os.environ['JAVA_HOME'])"
)

PYSPARK_ANALYSIS = notebook(
    [
        ("markdown", "# Spark in a notebook"),
        ("code", SPARK_SESSION),
        (
            "code",
            "df = spark.createDataFrame([(n, n % 3) for n in range(30)], ['n', 'group'])\n"
            "totals = df.groupBy('group').agg(F.sum('n').alias('total')).collect()\n"
            "print(sorted((row['group'], row['total']) for row in totals))",
        ),
        (
            "code",
            "df.createOrReplaceTempView('numbers')\n"
            "print(spark.sql('SELECT count(*) AS c FROM numbers WHERE n > 9').first()['c'])",
        ),
        (
            "code",
            "spark.conf.set('spark.sql.execution.arrow.pyspark.enabled', 'true')\n"
            "frame = df.toPandas()\n"
            "print(type(frame).__name__, len(frame), int(frame['n'].sum()))",
        ),
        (
            "code",
            # The session's web UI (what EXPOSE 4040 publishes), asked from inside the container.
            "import urllib.request\n"
            "url = spark.sparkContext.uiWebUrl\n"
            "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
            "with opener.open(url + '/jobs/', timeout=60) as page:\n"
            "    print(url.rsplit(':', 1)[1], page.status, b'Spark Jobs' in page.read())",
        ),
        ("code", "spark.stop()\nprint('stopped')"),
    ]
)

R_SPARK_ANALYSIS = notebook(
    [
        ("markdown", "# Spark from R"),
        (
            "code",
            "library(reticulate)\n"
            "sql <- import('pyspark.sql', convert = FALSE)\n"
            "builder <- sql$SparkSession$builder$master('local[2]')$appName('berth-r')\n"
            "spark <- builder$getOrCreate()\n"
            "cat('spark', py_to_r(spark$version), '\\n')",
        ),
        (
            # Columns come back through a dict of lists: Debian's reticulate 1.28 cannot convert
            # a pandas 2 DataFrame itself (docs/images.md).
            "code",
            "cars <- spark$createDataFrame(r_to_py(mtcars))\n"
            "invisible(cars$createOrReplaceTempView('cars'))\n"
            "by_cyl <- spark$sql('SELECT cyl, count(*) AS n, round(avg(mpg), 1) AS mpg "
            "FROM cars GROUP BY cyl ORDER BY cyl')\n"
            "columns <- py_to_r(by_cyl$toPandas()$to_dict('list'))\n"
            "print(as.data.frame(columns), row.names = FALSE)",
        ),
        ("code", "invisible(spark$stop())\ncat('stopped\\n')"),
    ],
    kernel="ir",
    language="R",
)


def assert_the_home_belongs_to_the_user(server: Server) -> None:
    code, output = server.exec("find /home/jovyan ! -user jovyan")
    assert code == 0 and output == "", output


def run_pyspark_notebook(server: Server) -> None:
    executed = execute_notebook(server, "spark.ipynb", PYSPARK_ANALYSIS)
    texts = outputs_text(executed)
    # Exactly what the cells print: the JVM's own log lines (WARN …, stage progress) go to the
    # server's log, not into the cells (ipython_kernel_config.py).
    version, spark_home, java_home = texts[0].split()
    assert version.startswith("4."), texts[0]
    assert (spark_home, java_home) == ("/usr/local/spark", "/usr/lib/jvm/default-java")
    assert texts[1:] == [
        "[(0, 135), (1, 145), (2, 155)]\n",
        "20\n",
        "DataFrame 30 435\n",
        "4040 200 True\n",
        "stopped\n",
    ], texts


@pytest.fixture(scope="module")
def pyspark_server(docker_client: Any, run_container_module: Any) -> Iterator[Server]:
    yield start_server(run_container_module, stack_image(docker_client, "pyspark-notebook"))


@pytest.fixture(scope="module")
def all_spark_server(docker_client: Any, run_container_module: Any) -> Iterator[Server]:
    yield start_server(run_container_module, stack_image(docker_client, "all-spark-notebook"))


def test_pyspark_notebook_runs_a_local_spark_session(pyspark_server: Server) -> None:
    run_pyspark_notebook(pyspark_server)
    assert_the_home_belongs_to_the_user(pyspark_server)


def test_pyspark_notebook_is_set_up_as_docker_stacks(
    docker_client: Any, run_container: Any
) -> None:
    """SPARK_HOME, JAVA_HOME, spark-submit on PATH, Java 17, and the UI port exposed."""
    image = stack_image(docker_client, "pyspark-notebook")
    config = docker_client.images.get(image).attrs["Config"]
    assert "4040/tcp" in config["ExposedPorts"], config["ExposedPorts"]
    environment = dict(item.split("=", 1) for item in config["Env"])
    assert environment["SPARK_HOME"] == "/usr/local/spark"
    assert environment["JAVA_HOME"] == "/usr/lib/jvm/default-java"
    assert environment["PATH"].endswith(":/usr/local/spark/bin"), environment["PATH"]
    container = run_container(
        image,
        command=["bash", "-c", "spark-submit --version 2>&1 && java -version 2>&1"],
    )
    assert container.wait(timeout=180)["StatusCode"] == 0, container.logs().decode()
    output = container.logs().decode()
    assert re.search(r"version 4\.\d+\.\d+", output), output
    assert 'version "17.' in output, output


def test_all_spark_notebook_runs_spark_from_r(all_spark_server: Server) -> None:
    executed = execute_notebook(all_spark_server, "spark-r.ipynb", R_SPARK_ANALYSIS)
    assert executed["metadata"]["kernelspec"]["name"] == "ir"
    texts = outputs_text(executed)
    assert texts[0].startswith("spark 4."), texts[0]
    table = [line.split() for line in texts[1].splitlines()]
    assert table == [
        ["cyl", "n", "mpg"],
        ["4", "11", "26.7"],
        ["6", "7", "19.7"],
        ["8", "14", "15.1"],
    ], texts[1]
    assert texts[2] == "stopped\n"


def test_all_spark_notebook_runs_pyspark_and_offers_both_kernels(all_spark_server: Server) -> None:
    run_pyspark_notebook(all_spark_server)
    status, _, body = all_spark_server.get("api/kernelspecs")
    assert status == 200, body
    assert {"python3", "ir"} <= set(json.loads(body)["kernelspecs"])
    assert_the_home_belongs_to_the_user(all_spark_server)
