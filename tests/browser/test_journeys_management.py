"""Management's journey in Chromium: the workload shares with the year-over-year view, the
month's PMO report and its PDF downloaded by the browser, chargeback and the sync status;
every page checked with axe-core and saved as a screenshot."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e


def _downloaded(folder: Path, suffix: str, timeout: float = 30) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == suffix]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} file downloaded into {folder}: {list(folder.iterdir())}")


def test_manager_reads_the_reports_and_downloads_the_pmo_pdf(pages, tmp_path):
    from pypdf import PdfReader

    pages.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    pages.sign_in("manager")
    pages.visit("/rapports")
    pages.check("reports-index")

    pages.visit(
        "/rapports/charge?from=2021-01-01&to=2021-12-31&group_by=activity_class"
        "&compare_to=previous_year"
    )
    assert pages.find("figure.chart svg")
    assert "%" in pages.find("table.report").text
    pages.check("reports-workload")

    pages.visit("/rapports/pmo")
    pages.fill({"month": "2021-06"})
    pages.submit()
    assert "2021-06" in pages.path
    assert pages.find("figure.chart svg")
    pages.check("reports-pmo")
    pages.find("nav.downloads a[href*='telecharger.pdf']").click()
    pdf = _downloaded(tmp_path, ".pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 1
    assert reader.pages[0].extract_text().strip()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "reports-pmo-2021-06.pdf").write_bytes(data)

    pages.visit("/rapports/refacturation?year=2021")
    assert "%" in pages.find("table.report").text
    pages.check("reports-chargeback")

    pages.visit("/rapports/tickets")
    pages.check("reports-tickets")


def test_admin_reads_the_sync_status(pages):
    pages.sign_in("admin")
    pages.visit("/synchronisation")
    assert "Synchronisation" in pages.text
    pages.check("sync-status")
