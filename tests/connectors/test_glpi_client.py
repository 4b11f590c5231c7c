"""The GLPI client and the paging walk, against the fake GLPI on loopback."""

from __future__ import annotations

import pytest
import requests

from connectors.glpi_client import GlpiClient, GlpiError, keyed_pages, parse_json_body
from connectors.http import Masker, make_session
from tests.connectors.fake_glpi import APP_TOKEN, USER_TOKEN, Fault, small_instance


@pytest.fixture()
def instance(glpi_server):
    fake = small_instance()
    for i in range(1, 101):
        fake.add_ticket(i)
    glpi_server.switch.fake = fake
    return fake


def _client(glpi_server, **kw):
    return GlpiClient(
        glpi_server.url, user_token=USER_TOKEN, app_token=APP_TOKEN, backoff=0.01, **kw
    )


def test_default_range_is_15_rows_and_206_with_content_range(glpi_server, instance):
    s = requests.Session()
    s.headers["App-Token"] = APP_TOKEN
    token = s.get(
        f"{glpi_server.url}/initSession", headers={"Authorization": f"user_token {USER_TOKEN}"}
    ).json()["session_token"]
    resp = s.get(f"{glpi_server.url}/Ticket", headers={"Session-Token": token})
    assert resp.status_code == 206 and len(resp.json()) == 15
    assert resp.headers["Content-Range"] == "0-14/100"
    whole = s.get(f"{glpi_server.url}/Ticket?range=0-199", headers={"Session-Token": token})
    assert whole.status_code == 200 and whole.headers["Content-Range"] == "0-99/100"


def test_range_beyond_the_total_ends_the_listing(glpi_server, instance):
    with _client(glpi_server) as client:
        page = client.page("Ticket", 150, 10, {"is_deleted": "false"})
        assert page.rows == [] and page.total is None
        edge = client.page("Ticket", 100, 10, {"is_deleted": "false"})  # start == total
        assert edge.rows == []
    assert any("range=150-159" in line for line in instance.log)


def test_keyed_pages_skip_nothing_when_rows_vanish_between_pages(glpi_server, instance):
    seen: list[int] = []
    with _client(glpi_server) as client:

        def fetch(start, size):
            page = client.page("Ticket", start, size, {"is_deleted": "false"})
            if start and 30 <= start < 40:  # rows vanish before the window
                for i in range(1, 26):
                    instance.tickets.pop(i, None)
            return page

        for _page, rows, _pos in keyed_pages(fetch, lambda r: r["id"], size=10):
            seen.extend(r["id"] for r in rows)
    assert seen == sorted(set(seen))  # no duplicates, in order
    assert set(range(26, 101)) <= set(seen)  # nothing that stayed was skipped


def test_trash_is_hidden_unless_asked(glpi_server, instance):
    instance.tickets[5]["is_deleted"] = 1
    with _client(glpi_server) as client:
        live = client.page("Ticket", 0, 200, {"is_deleted": "false"})
        trash = client.page("Ticket", 0, 200, {"is_deleted": "true"})
    assert 5 not in {r["id"] for r in live.rows}
    assert [r["id"] for r in trash.rows] == [5]


def test_session_expiry_reopens_once(glpi_server, instance):
    instance.session_calls = 2
    with _client(glpi_server) as client:
        for start in range(0, 100, 10):
            assert len(client.page("Ticket", start, 10, {"is_deleted": "false"}).rows) == 10
        assert client.reinits >= 4
    # killSession is always sent (here the session it names had expired meanwhile).
    assert instance.log[-1].startswith("GET killSession")


def test_503_then_success_is_retried_and_timeouts_too(glpi_server, instance):
    instance.faults += [Fault("Ticket", "503", times=3), Fault("Ticket", "timeout", delay=1.2)]
    with _client(glpi_server, timeout=(1.0, 0.5)) as client:
        assert len(client.page("Ticket", 0, 10, {"is_deleted": "false"}).rows) == 10
        assert len(client.page("Ticket", 10, 10, {"is_deleted": "false"}).rows) == 10


def test_errors_are_glpi_errors_with_codes(glpi_server, instance):
    instance.faults.append(Fault("Ticket", "error500"))
    with _client(glpi_server, retries=0) as client, pytest.raises(GlpiError) as err:
        client.page("Ticket", 0, 10, {})
    assert err.value.code == "ERROR_SQL"
    bad = GlpiClient(glpi_server.url, user_token=USER_TOKEN, app_token="nope", retries=0)
    with pytest.raises(GlpiError) as err:
        bad.open()
    assert err.value.code == "ERROR_WRONG_APP_TOKEN_PARAMETER"


def test_parse_json_body_after_a_php_notice():
    body, notice = parse_json_body('<br />\n<b>Notice</b>: Undefined index\n[{"id": 1}]')
    assert body == [{"id": 1}] and notice and "Notice" in notice
    with pytest.raises(ValueError):
        parse_json_body('[{"id": 1, "name": "trunc')


def test_masker_hides_tokens():
    m = Masker(["s3cret-token-value"])
    text = m("GET x?user_token=abcdefgh failed; Session-Token: zzzzzz; s3cret-token-value")
    assert "abcdefgh" not in text and "zzzzzz" not in text and "s3cret" not in text


def test_session_factory_sets_timeout_and_user_agent():
    session = make_session(timeout=(1.0, 2.0))
    assert session.default_timeout == (1.0, 2.0)
    assert session.headers["User-Agent"].startswith("syndic-connectors/")
    retry = session.get_adapter("http://x").max_retries
    assert retry.is_retry("POST", 503) and not retry.is_retry("GET", 404)
