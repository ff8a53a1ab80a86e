"""FakeTwilioAPI over real HTTP: Message resource, Basic auth, validation, failures, media."""

from __future__ import annotations

import httpx
import pytest

from eki_whatsapp.testing import FakeTwilioAPI

FORM = {"To": "whatsapp:+5511987654321", "From": "whatsapp:+14155238886", "Body": "Olá"}


@pytest.fixture
def quiet_twilio():
    fake = FakeTwilioAPI(auto_status=(), api_keys={"SK0123": "key-secret"})
    yield fake
    fake.close()


def client(fake, user=None, password=None):
    auth = (user or fake.account_sid, password or fake.auth_token)
    return httpx.Client(auth=auth, timeout=5)


def test_create_message_answers_201_with_the_resource(quiet_twilio):
    with client(quiet_twilio) as c:
        r = c.post(quiet_twilio.messages_url, data=FORM)
    assert r.status_code == 201
    body = r.json()
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    assert (body["status"], body["direction"], body["to"], body["from"]) == (
        "queued",
        "outbound-api",
        "whatsapp:+5511987654321",
        "whatsapp:+14155238886",
    )
    assert body["account_sid"] == quiet_twilio.account_sid and body["error_code"] is None
    assert body["uri"].endswith(f"/Messages/{body['sid']}.json") and "GMT" in body["date_created"]
    sent = quiet_twilio.sent[0]
    assert (sent.id, sent.to, sent.type, sent.text) == (body["sid"], "+5511987654321", "text", "Olá")
    assert quiet_twilio.requests[-1].form_value("Body") == "Olá"
    assert quiet_twilio.requests[-1].headers["Authorization"] == "Basic ***"


def test_media_template_and_service_sends(quiet_twilio):
    with client(quiet_twilio) as c:
        media = c.post(quiet_twilio.messages_url, data={**FORM, "MediaUrl": "https://x.example/a.jpg"}).json()
        template = c.post(
            quiet_twilio.messages_url,
            data={
                "To": FORM["To"],
                "From": FORM["From"],
                "ContentSid": "HX1",
                "ContentVariables": '{"1":"Ana"}',
            },
        )
        service = c.post(
            quiet_twilio.messages_url, data={"To": FORM["To"], "MessagingServiceSid": "MG1", "Body": "x"}
        ).json()
    assert media["sid"].startswith("MM") and media["num_media"] == "1"
    assert template.status_code == 201 and quiet_twilio.sent[1].is_template
    assert service["status"] == "accepted" and service["messaging_service_sid"] == "MG1"


def test_api_key_auth(quiet_twilio):
    with client(quiet_twilio, "SK0123", "key-secret") as c:
        assert c.post(quiet_twilio.messages_url, data=FORM).status_code == 201


@pytest.mark.parametrize("auth", [None, ("AC0123456789abcdef0123456789abcdef", "wrong"), ("SK0123", "nope")])
def test_wrong_credentials_get_20003(quiet_twilio, auth):
    r = httpx.post(quiet_twilio.messages_url, data=FORM, auth=auth)
    assert r.status_code == 401
    assert r.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert not quiet_twilio.sent


def test_other_account_in_path_is_refused(quiet_twilio):
    with client(quiet_twilio) as c:
        r = c.post(f"{quiet_twilio.base_url}/2010-04-01/Accounts/ACother/Messages.json", data=FORM)
    assert r.status_code == 401 and r.json()["code"] == 20003


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": FORM["From"], "Body": "x"}, 21604),
        ({"To": FORM["To"], "Body": "x"}, 21603),
        ({"To": FORM["To"], "From": FORM["From"]}, 21602),
        ({**FORM, "Body": "x" * 1601}, 21617),
        ({**FORM, "ContentVariables": '{"1":"a"}'}, 21654),
        ({**FORM, "ContentSid": "HX1", "ContentVariables": "not json"}, 21656),
        ({**FORM, "To": "+5511987654321"}, 21910),
        ({**FORM, "From": "whatsapp:+15550000000"}, 63007),
        ({**FORM, "To": "whatsapp:+12"}, 21211),
    ],
)
def test_invalid_requests_get_twilio_errors(quiet_twilio, form, code):
    with client(quiet_twilio) as c:
        r = c.post(quiet_twilio.messages_url, data=form)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == code and body["status"] == 400 and body["more_info"].endswith(str(code))
    assert not quiet_twilio.sent


def test_fail_next_and_per_recipient(quiet_twilio):
    quiet_twilio.fail_next(20429)
    quiet_twilio.fail_next(21610, to="whatsapp:+5511000000000", times=None)
    with client(quiet_twilio) as c:
        limited = c.post(quiet_twilio.messages_url, data=FORM)
        ok = c.post(quiet_twilio.messages_url, data=FORM)
        opted_out = c.post(quiet_twilio.messages_url, data={**FORM, "To": "whatsapp:+5511000000000"})
    assert (limited.status_code, limited.json()["code"]) == (429, 20429)
    assert ok.status_code == 201
    assert (opted_out.status_code, opted_out.json()["code"]) == (400, 21610)


def test_outage_503_and_refuse(quiet_twilio):
    with quiet_twilio.outage("503"), client(quiet_twilio) as c:
        r = c.post(quiet_twilio.messages_url, data=FORM)
        assert (r.status_code, r.json()["code"]) == (503, 20503)
    with quiet_twilio.outage(), pytest.raises(httpx.ConnectError), client(quiet_twilio) as c:
        c.post(quiet_twilio.messages_url, data=FORM)
    with client(quiet_twilio) as c:
        assert c.post(quiet_twilio.messages_url, data=FORM).status_code == 201


def test_message_and_account_lookup(quiet_twilio):
    with client(quiet_twilio) as c:
        sid = c.post(quiet_twilio.messages_url, data=FORM).json()["sid"]
        base = f"{quiet_twilio.base_url}/2010-04-01/Accounts/{quiet_twilio.account_sid}"
        assert c.get(f"{base}/Messages/{sid}.json").json()["status"] == "queued"
        assert c.get(f"{base}/Messages/SMnope.json").json()["code"] == 20404
        account = c.get(f"{base}.json").json()
    assert (account["sid"], account["status"], account["type"]) == (
        quiet_twilio.account_sid,
        "active",
        "Full",
    )


def test_media_urls_need_basic_auth_and_redirect(quiet_twilio):
    url = quiet_twilio.add_media(b"\xff\xd8jpeg-bytes", "image/jpeg")
    assert httpx.get(url).status_code == 401
    with client(quiet_twilio) as c:
        first = c.get(url)
        assert first.status_code == 307
        final = c.get(url, follow_redirects=True)
    assert final.content == b"\xff\xd8jpeg-bytes" and final.headers["content-type"] == "image/jpeg"


def test_media_auth_can_be_off():
    with FakeTwilioAPI(enforce_media_auth=False) as fake:
        url = fake.add_media(b"open")
        assert httpx.get(url, follow_redirects=True).content == b"open"


def test_fail_next_rejects_bad_times(quiet_twilio):
    with pytest.raises(ValueError, match="at least 1"):
        quiet_twilio.fail_next(20429, times=0)
    with pytest.raises(ValueError, match="refuse"):
        quiet_twilio.outage("sometimes")  # type: ignore[arg-type]
