# Berth pyspark-notebook: the JVM that a SparkSession starts writes its log (WARN lines, stage
# progress bars) to the kernel's stderr file descriptor. Left uncaptured, those lines go to the
# server's log instead of filling every notebook cell that touches Spark.
c.IPKernelApp.capture_fd_output = False  # noqa: F821 (the config object IPython provides)
