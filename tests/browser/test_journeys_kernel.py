"""Journeys through the kernel's pages: sign in, the start page, errors, languages, sign out."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_sign_in_page_is_accessible_and_french(pages):
    pages.visit("/")
    assert pages.path.startswith("/connexion")
    assert "Connexion" in pages.text and "Identifiant" in pages.text
    pages.check("signin")


def test_wrong_password_shows_one_message_and_keeps_the_username(pages):
    pages.visit("/connexion")
    pages.fill({"username": "admin", "password": "not the password"})
    pages.submit()
    assert "Identifiant inconnu ou mot de passe erroné." in pages.text
    assert pages.find("#username").get_attribute("value") == "admin"
    pages.check("signin-error")


def test_sign_in_reaches_the_start_page_then_sign_out(pages):
    pages.sign_in("admin")
    assert pages.path == "/"
    assert "Bienvenue" in pages.text
    pages.check("home")
    pages.sign_out()
    assert pages.path.startswith("/connexion") and "Vous êtes déconnecté." in pages.text


def test_unknown_page_is_a_french_404_page(pages):
    pages.sign_in("admin")
    pages.visit("/nulle-part")
    assert "404" in pages.text and "Page introuvable" in pages.text
    pages.check("not-found")


def test_pages_switch_to_english(pages):
    pages.sign_in("admin")
    pages.fill({"lang": "en"})
    pages.click_and_wait("header form.inline button")
    assert "Welcome" in pages.text
    pages.fill({"lang": "fr"})
    pages.click_and_wait("header form.inline button")
    assert "Bienvenue" in pages.text
