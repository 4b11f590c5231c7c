"""A technician's journey in Chromium: sign in, open a ticket, log time, solve it, find the
time in the week's timesheet; every page checked with axe-core."""

from __future__ import annotations

import datetime as dt

import pytest

pytestmark = pytest.mark.e2e


def test_technician_ticket_journey(pages):
    pages.sign_in("n.leroy")
    pages.visit("/tickets")
    assert "Ma file" in pages.text
    pages.check("technician-queue")

    pages.visit("/tickets/nouveau")
    pages.check("ticket-new")
    pages.fill(
        {
            "tenant": "ville-ivry",
            "type": "incident",
            "title": "Imprimante du 2e étage en panne",
            "urgency": "2",
            "impact": "3",
            "description": "Bourrage papier récurrent.",
            "requester_name": "Agent d'accueil",
        }
    )
    pages.submit()
    assert pages.path.startswith("/tickets/")
    ticket_path = pages.path
    assert "Imprimante du 2e étage en panne" in pages.text and "nouveau" in pages.text

    pages.click_and_wait("form input[name=to][value=in_progress] ~ button")
    assert "en cours" in pages.text

    today = dt.date.today().isoformat()
    pages.fill(
        {"date": today, "minutes": "50", "activity": "assistance", "note": "Nettoyage du rouleau"}
    )
    pages.click_and_wait("#temps button[type=submit]")
    assert "Temps saisi : 50 min" in pages.text

    pages.fill({"comment": "Rouleau d'entraînement remplacé."})
    pages.click_and_wait("form input[name=to][value=solved] ~ button")
    assert "résolu" in pages.text and "Rouleau d'entraînement remplacé." in pages.text
    pages.check("ticket-solved")

    pages.visit(f"/temps?date={today}")
    assert "Nettoyage du rouleau" in pages.text
    assert ticket_path.rsplit("/", 1)[-1] in pages.text
    pages.check("timesheet")


def test_form_errors_are_shown_next_to_the_fields(pages):
    pages.sign_in("n.leroy")
    pages.visit("/tickets/nouveau")
    pages.fill({"tenant": "ville-ivry", "title": ""})
    pages.submit()
    assert pages.find("#f-title").get_attribute("aria-invalid") == "true"
    assert pages.find("#err-title").text
    pages.check("ticket-new-errors")
