"""The walk's checkers (tests/e2e/checks.py) on pages made to break them:
a checker that finds nothing on a broken page would pass every screen."""

import pytest

from tests.e2e import checks

pytestmark = [pytest.mark.e2e]

LAYOUT = '<header class="topbar"><a class="brand" href="/">Back Office</a></header>'


def test_a_table_wider_than_its_box_is_clipped(page):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.set_content(
        f"{LAYOUT}<main id=main style='width:500px'><div style='overflow:auto'>"
        "<table style='width:900px'><thead><tr><th>When</th></tr></thead>"
        "<tbody><tr><td>now</td></tr></tbody></table></div></main>"
    )
    assert checks.no_clipped_table(page) == ["table 1 (When): 900 px in 500 px"]
    page.set_content(f"{LAYOUT}<main id=main><table><tr><td>now</td></tr></table></main>")
    assert checks.no_clipped_table(page) == []


def test_allauth_markup_is_outside_the_layout(page):
    page.set_content(
        "<main><h1>Security Keys</h1><label>Name:</label><ul><li><button>Add</button></li></ul>"
        "</main>"
    )
    assert checks.in_product_layout(page) == [
        "no header.topbar with the brand",
        "no main#main",
    ]
    page.set_content(
        f"{LAYOUT}<main id=main><h1>Security Keys</h1><label>Name:</label>"
        "<ul><li><button>Add</button></li></ul></main>"
    )
    assert checks.in_product_layout(page) == [
        'bulleted button "Add"',
        "label ending in ':' \"Name:\"",
        'allauth heading "Security Keys"',
    ]
    page.set_content(f"{LAYOUT}<main id=main><h1>Sicherheitsschlüssel</h1></main>")
    assert checks.in_product_layout(page) == []


def test_english_of_either_catalogue_on_a_german_page(page):
    page.set_content(
        f"{LAYOUT}<main id=main><h1>Zwei-Faktor-Authentifizierung</h1>"
        "<p>Turn on two-factor authentication</p>"  # ours
        "<input aria-label='Incorrect code.' placeholder='x'>"  # allauth's
        "<p>method: password</p></main>"
    )
    assert checks.no_english_on_german(page) == [
        'English "Incorrect code"',
        'English "Turn on two-factor authentication"',
        'English leftover "method:"',
    ]
    page.set_content(
        f"{LAYOUT}<main id=main><p>Zwei-Faktor-Authentifizierung einschalten</p></main>"
    )
    assert checks.no_english_on_german(page) == []
