"""allauth's messages we show whose German says "du".

The Back Office addresses its staff formally ("Sie"). Our catalogue
(locale/de, LOCALE_PATHS) wins over an app's, so these allauth msgids are
listed here for `makemessages` and translated formally there. Nothing
imports this module.
"""

from django.utils.translation import gettext_noop

ALLAUTH_MSGIDS = (
    gettext_noop("Please type your current password."),
    gettext_noop("Be patient, you are sending too many requests."),
    gettext_noop("You must type the same password each time."),
    gettext_noop("Thank you for using %(site_name)s!\n%(site_domain)s"),
    gettext_noop("Your password has been changed."),
    gettext_noop("You have signed out."),
    gettext_noop("You are about to generate a new set of recovery codes for your account."),
    gettext_noop(
        "You are about to deactivate authenticator app based authentication. Are you sure?"
    ),
)

# allauth's messages whose German breaks docs/glossary.md (e.g.
# "Authentifizierungs-App", "Passwortlos", a stray quote after the date):
# translated along the glossary in our catalogue.
ALLAUTH_GLOSSARY_MSGIDS = (
    gettext_noop("MFA"),
    gettext_noop("Use authenticator app or code"),
    gettext_noop("Recovery Codes"),
    gettext_noop("Passwordless"),
    gettext_noop(
        "Enabling passwordless operation allows you to sign in using just this key, "
        "but imposes additional requirements such as biometrics or PIN protection."
    ),
    gettext_noop("Change Email"),
    gettext_noop(
        "If you do not recognize this change then please take proper security "
        "precautions immediately. The change to your account originates from:\n"
        "\n"
        "- IP address: %(ip)s\n"
        "- Browser: %(user_agent)s\n"
        "- Date: %(timestamp)s"
    ),
)
