"""Notebook conversion in base-notebook, the way JupyterLab's "Save and Export Notebook As" menu
does it: GET /nbconvert/<format>/<path> on the running server, for a real notebook that was first
executed in the image (so the export carries real outputs).

LaTeX is the format that needs pandoc (nbconvert turns Markdown cells into LaTeX with it): on main
before pandoc was added to base-notebook, that export answered HTTP 500 (PandocMissing).

PDF is minimal-notebook's (TeX, as in docker-stacks): nbconvert compiles its LaTeX with xelatex.
"""

from __future__ import annotations

import contextlib
import re
import zlib
from typing import Any

import pytest
from stack_images import Server, execute_notebook, notebook, outputs_text, stack_image, start_server

pytestmark = pytest.mark.integration

REPORT = notebook(
    [
        (
            "markdown",
            "# Quarterly report\n\nThe **total** of the series, and *Euler*: $e^{i\\pi}+1=0$.\n\n"
            "- first point\n- second point",
        ),
        ("code", "values = [3, 4, 5]\nprint('total', sum(values))"),
        ("code", "{'mean': sum(values) / len(values)}"),
    ]
)


def server_with_report(run_container: Any, image: str) -> Server:
    """A server of `image` that has executed REPORT (work/report.executed.ipynb)."""
    running = start_server(run_container, image)
    executed = execute_notebook(running, "report.ipynb", REPORT)
    assert outputs_text(executed) == ["total 12\n", "{'mean': 4.0}"]
    return running


@pytest.fixture(scope="module")
def server(docker_client: Any, run_container_module: Any) -> Server:
    return server_with_report(run_container_module, stack_image(docker_client, "base-notebook"))


@pytest.fixture(scope="module")
def minimal_server(docker_client: Any, run_container_module: Any) -> Server:
    return server_with_report(run_container_module, stack_image(docker_client, "minimal-notebook"))


def export_bytes(server: Server, exporter: str) -> bytes:
    status, headers, body = server.get(
        f"nbconvert/{exporter}/work/report.executed.ipynb?download=true"
    )
    assert status == 200, body[-2000:]
    assert "attachment" in headers.get("Content-Disposition", ""), headers
    return body


def export(server: Server, exporter: str) -> str:
    return export_bytes(server, exporter).decode()


def test_pandoc_is_installed_in_a_version_nbconvert_supports(server: Server) -> None:
    code, output = server.exec(
        "python -c 'from nbconvert.utils.pandoc import check_pandoc_version as c; print(c())'"
    )
    assert code == 0 and output.strip().splitlines()[-1] == "True", output


def test_pandoc_is_unpacked_on_first_use_into_a_private_directory(server: Server) -> None:
    """base-notebook keeps pandoc's Debian package and /usr/bin/pandoc unpacks the program on
    first use (docs/images.md): the program ends up in /tmp, mode 700, never in the home."""
    code, output = server.exec(
        "pandoc --version | head -1 && stat -c '%U %a' /tmp/berth-pandoc-1000-*/ && "
        "dpkg -s pandoc | grep Status && ! find ~ -name pandoc -type f | grep ."
    )
    assert code == 0, output
    assert output.splitlines()[-3:] == [
        "pandoc 2.17.1.1",
        "jovyan 700",
        "Status: install ok installed",
    ], output


def test_a_pandoc_planted_by_another_user_is_never_run(server: Server) -> None:
    """The attack on the unpack-on-first-use pandoc: another user of the container's /tmp makes
    the notebook user's unpack directory first and puts a program of theirs in it. pandoc must
    refuse that directory (not its own, not private) instead of running the program."""
    planted = "/tmp/berth-pandoc-1000-$(basename /usr/lib/berth/pandoc/pandoc_*.deb .deb)"
    code, output = server.exec(f"rm -rf {planted}", user="root")
    assert code == 0, output
    try:
        code, output = server.exec(
            f"mkdir -m 755 {planted} && printf '#!/bin/sh\\ntouch /tmp/planted-ran\\n' "
            f"> {planted}/pandoc && chmod 755 {planted}/pandoc",
            user="nobody",
        )
        assert code == 0, output
        code, output = server.exec("pandoc --version")
        assert code != 0 and "is not a private directory of this user" in output, output
        code, output = server.exec("test ! -e /tmp/planted-ran")
        assert code == 0, "the planted program ran"
    finally:
        server.exec(f"rm -rf {planted} /tmp/planted-ran", user="root")


def test_export_as_html(server: Server) -> None:
    html = export(server, "html")
    assert "<h1" in html and "Quarterly report" in html
    assert "<strong>total</strong>" in html
    assert "total 12" in html and "<pre>{'mean': 4.0}</pre>" in html


def test_export_as_markdown(server: Server) -> None:
    markdown = export(server, "markdown")
    assert "# Quarterly report" in markdown
    assert "print('total', sum(values))" in markdown
    assert "    total 12" in markdown  # outputs are indented blocks


def test_export_as_latex_converts_markdown_with_pandoc(server: Server) -> None:
    latex = export(server, "latex")
    assert "\\documentclass" in latex and "\\end{document}" in latex
    # Each of these is pandoc's rendering of a Markdown cell:
    assert "\\section{Quarterly report}" in latex
    assert "\\textbf{total}" in latex and "\\emph{Euler}" in latex
    assert "\\(e^{i\\pi}+1=0\\)" in latex
    assert "\\begin{itemize}" in latex
    assert "total 12" in latex


def test_the_command_line_converts_too(server: Server) -> None:
    """`jupyter nbconvert` in the terminal (what the menu's server handler runs in-process)."""
    code, output = server.exec(
        "jupyter nbconvert --to latex report.executed.ipynb --output cli && grep -c section cli.tex"
    )
    assert code == 0, output
    assert output.strip().splitlines()[-1] != "0", output


def pdf_objects(pdf: bytes) -> bytes:
    """The PDF with its compressed streams inflated: PDF 1.5 keeps page and font objects in
    compressed object streams, where a plain search does not see them."""
    parts = [pdf]
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        with contextlib.suppress(zlib.error):
            parts.append(zlib.decompressobj().decompress(stream))
    return b"\n".join(parts)


def test_export_as_pdf_in_minimal_notebook(minimal_server: Server) -> None:
    """The menu's PDF export compiles the notebook with xelatex. On main (no TeX in the image)
    this answered HTTP 500: "xelatex not found on PATH"."""
    pdf = export_bytes(minimal_server, "pdf")
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF"), pdf[:100]
    objects = pdf_objects(pdf)
    assert len(re.findall(rb"/Type\s*/Page\b", objects)) >= 1
    # XeTeX embeds Latin Modern: roman for the text (bold for **total**), mono for the code.
    fonts = set(re.findall(rb"/BaseFont\s*/[A-Z]{6}\+([\w-]+)", objects))
    assert {b"LMRoman10-Regular", b"LMRoman10-Bold", b"LMMono10-Regular"} <= fonts, fonts


def test_the_command_line_converts_to_pdf(minimal_server: Server) -> None:
    """`jupyter nbconvert --to pdf` in a terminal, as the notebook user."""
    code, output = minimal_server.exec(
        "jupyter nbconvert --to pdf report.executed.ipynb --output cli 2>&1 && "
        "head -c 5 cli.pdf && echo && ls -l cli.pdf"
    )
    assert code == 0, output
    assert "PDF successfully created" in output and "%PDF-" in output, output


def test_every_latex_engine_works_in_a_terminal(minimal_server: Server) -> None:
    """The image leaves out LaTeX's -dev formats only: pdflatex, xelatex and lualatex, which
    people run themselves, each still compile a document."""
    document = "\\documentclass{article}\\begin{document}Hello \\textbf{world}\\end{document}\n"
    minimal_server.put("/home/jovyan/work/hello.tex", document.encode())
    for engine in ("pdflatex", "xelatex", "lualatex"):
        code, output = minimal_server.exec(
            f"rm -f hello.pdf && {engine} -interaction=nonstopmode hello.tex && head -c 5 hello.pdf"
        )
        assert code == 0 and output.endswith("%PDF-"), f"{engine}: {output[-1500:]}"
