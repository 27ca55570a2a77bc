"""The product's words on the pages the layout owns: "Log in" / "Logged in",
never "Sign in" / "Signed in", in English and German."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/account/", "/account/sessions/"])
def test_logged_in_not_signed_in(admin, path):
    html = admin.get(path).content.decode()
    assert "Sign in" not in html and "Signed in" not in html and "sign in" not in html


def test_sessions_say_when_each_logged_in(admin, root_user):
    html = admin.get("/account/sessions/").content.decode()
    assert '<th class="col-nowrap">Logged in</th>' in html
    root_user.language = "de"
    root_user.save()
    html = admin.get("/account/sessions/").content.decode()
    assert "Angemeldet" in html and "Angemeldet seit" not in html
