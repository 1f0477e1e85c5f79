"""A user's notebook lost with their volume comes back with `berth restore`, seen in a browser.

The admin's server gets a notebook (through its contents API), `berth backup admin` archives
the volume, the server is stopped and the volume deleted, `berth restore ARCHIVE admin` brings
it back; then the admin logs in with Chromium, the spawn flow starts the server on the restored
volume (the spawner's ownership check accepts it), and the notebook is in JupyterLab's file
browser and opens with its cell.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import docker
import pytest
from deployment import Deployment
from playwright.sync_api import expect
from test_browser import (
    LAB_TIMEOUT_MS,
    news_toast,
    say_no_to_news,
    shot,
    submit_login,
    wait_for_lab,
)

pytestmark = pytest.mark.e2e

NOTEBOOK = "restored.ipynb"
SOURCE = "print('this notebook came back from a backup')"


def test_a_restored_notebook_opens_in_the_browser(
    hub_deployment: Deployment, page: Any, artifacts: Path, tmp_path: Path
) -> None:
    dep = hub_deployment
    dep.start_server("admin")
    model = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": SOURCE,
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    saved = dep.api(
        "PUT", f"/user/admin/api/contents/{NOTEBOOK}", json={"type": "notebook", "content": model}
    )
    assert saved.status_code in (200, 201), saved.text
    made = dep.berth("backup", "admin", "--to", str(tmp_path), timeout=600)
    assert made.returncode == 0, made.stderr
    archive = made.stdout.strip().splitlines()[-1]

    dep.stop_server("admin")
    volume = dep.config["storage"]["volume_name_template"].format(username="admin")
    engine = docker.from_env()
    try:
        engine.volumes.get(volume).remove()
        restored = dep.berth("restore", archive, "admin", timeout=600)
        assert restored.returncode == 0, restored.stderr
        assert engine.volumes.get(volume).attrs["Labels"]["berth.user"] == "admin"
    finally:
        engine.close()

    page.goto(f"{dep.url}/hub/login")
    submit_login(page, dep, "admin", dep.admin_password)
    wait_for_lab(page)
    page.add_locator_handler(news_toast(page), say_no_to_news)
    entry = page.locator(".jp-DirListing-content").get_by_text(NOTEBOOK, exact=True)
    expect(entry).to_be_visible(timeout=LAB_TIMEOUT_MS)
    entry.dblclick()
    expect(page.get_by_role("tab", name=re.compile(re.escape(NOTEBOOK)))).to_be_visible()
    opened = page.locator(".jp-NotebookPanel:visible")
    expect(opened.locator(".jp-Cell .cm-content").first).to_have_text(SOURCE)
    shot(page, artifacts, "backup-01-restored-notebook")
