"""A password reset through the pages and the mail it sends."""

import re

NEW_PASSWORD = "a brand new passphrase 42"


def request_reset(client, email):
    return client.post("/password/reset/", {"email": email})


def link_from_mail(message) -> str:
    return re.search(r"http://testserver(/password/reset/key/\S+/)", message.body).group(1)


def set_password(client, link, password=NEW_PASSWORD, again=None):
    response = client.get(link)
    assert response.status_code == 302, "the key is moved into the session first"
    form_url = response["Location"]
    return client.post(form_url, {"password1": password, "password2": again or password})
