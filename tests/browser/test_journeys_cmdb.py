"""The infra team's journey in Chromium: browse the CMDB, open a CI and its map, run a
what-if on a whole site, read the weak points; every page checked with axe-core."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_infra_what_if_journey(pages):
    pages.sign_in("t.girard")
    pages.visit("/cmdb?kind=host")
    assert "host:" in pages.text
    pages.check("cmdb-browse")
    pages.click_and_wait("main table tbody tr:first-child a")
    assert pages.path.startswith("/cmdb/")
    assert pages.find("figure.map svg")
    pages.check("cmdb-ci")
    pages.visit("/cmdb/simulation")
    pages.fill({"site": "site:siim94"})
    pages.submit()
    assert (
        "Adhérents qui perdent le service" in pages.text or "Members losing service" in pages.text
    )
    pages.check("cmdb-what-if")
    pages.visit("/cmdb/fragilites")
    assert "Points de défaillance uniques" in pages.text or "Single points of failure" in pages.text
    pages.check("cmdb-weak-points")
