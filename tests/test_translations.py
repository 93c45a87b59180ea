"""The app speaks German and French: its pages, an error page, the admin's messages, commands and checks.

Pages are asked for as a browser would, with ``Accept-Language`` and Django's LocaleMiddleware
(added for these tests only: the rest of the suite runs in English, LANGUAGE_CODE's default).
Each test checks real translated text and that the English source is gone.
"""

from __future__ import annotations

import logging
import re
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import translation

from django_bigoauth.checks import check_settings
from django_bigoauth.rotation import RotationReport

LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")]
MIDDLEWARE = [
    *django_settings.MIDDLEWARE[:2],  # security, sessions
    "django.middleware.locale.LocaleMiddleware",  # after sessions, before common (as Django's docs say)
    *django_settings.MIDDLEWARE[2:],
]

#: What each language must show, per page; the English it replaces must not be there.
ACCOUNTS_PAGE = {
    "de": [
        "Verknüpfte Konten",
        "Rechenzentrum",
        "Token läuft ab",
        "Aktiv",
        "Neu verbinden",
        "Trennen",
        "in 59\xa0Minuten",
    ],
    "fr": [
        "Comptes liés",
        "Centre de données",
        "Expiration du jeton",
        "Actif",
        "Reconnecter",
        "Déconnecter",
        "dans 59\xa0minutes",
    ],
}
ACCOUNTS_PAGE_ENGLISH = [
    "Linked accounts",
    "Data centre",
    "Token expires",
    "Active",
    "Reconnect",
    "Disconnect",
    "in 59\xa0minutes",
]

CALLBACK_400 = {
    "de": ["Diese Anmeldung kann nicht verwendet werden", "Die Anmeldung kam ohne ihren state-Parameter zurück.",
           "Fehlercode 400.", "Bigin erneut verbinden", "Zurück zu den verknüpften Konten"],
    "fr": ["Cette connexion ne peut pas être utilisée", "La connexion est revenue sans son paramètre state.",
           "Code d’erreur 400.", "Connecter Bigin à nouveau", "Retour aux comptes liés"],
}  # fmt: skip
CALLBACK_400_ENGLISH = [
    "This sign-in cannot be used",
    "without its state parameter",
    "Error code 400",
    "Connect Bigin again",
    "Back to the linked accounts",
]

localised = override_settings(LANGUAGES=LANGUAGES, MIDDLEWARE=MIDDLEWARE)


def assert_translated(text: str, expected: list[str], english: list[str]) -> None:
    missing = [phrase for phrase in expected if phrase not in text]
    # Whole words: French "Reconnecter" holds "Reconnect".
    left = [phrase for phrase in english if re.search(rf"\b{re.escape(phrase)}\b", text)]
    assert missing == [] and left == [], f"missing {missing}, still in English {left}"


@pytest.fixture(params=["de", "fr"])
def lang(request):
    return request.param


@localised
def test_the_accounts_page(lang, signed_in, alice, make_account):
    make_account("bigin", user=alice, label="Acme CRM", expires_in=3600)
    response = signed_in.get(reverse("bigoauth:accounts"), headers={"accept-language": lang})
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<html lang="{lang}">' in html
    assert_translated(html, ACCOUNTS_PAGE[lang], ACCOUNTS_PAGE_ENGLISH)


@localised
def test_the_callbacks_error_page(lang, signed_in, fake_provider):
    response = signed_in.get(
        reverse("bigoauth:callback", args=["bigin"]),
        {"code": fake_provider.issue_code(), "accounts-server": fake_provider.url},
        headers={"accept-language": lang},
    )
    assert response.status_code == 400
    assert_translated(response.content.decode(), CALLBACK_400[lang], CALLBACK_400_ENGLISH)


@localised
def test_an_admin_actions_message(lang, admin_client, make_account, fake_provider):
    account = make_account(
        "bigin", label="Acme CRM", refresh_token=fake_provider.issue_refresh_token(), accounts_server=fake_provider.url
    )
    changelist = reverse("admin:django_bigoauth_linkedaccount_changelist")
    response = admin_client.post(
        changelist,
        {"action": "refresh_now", "_selected_action": [account.pk]},
        headers={"accept-language": lang},
        follow=True,
    )
    assert response.status_code == 200 and fake_provider.refresh_calls() == 1
    expected = {
        "de": "Das Bigin-Konto „Acme CRM“ (Website) wurde erneuert.",
        "fr": "Le compte Bigin «\xa0Acme CRM\xa0» (site) a été rafraîchi.",
    }[lang]
    html = response.content.decode()
    assert expected in html  # the message, as the changelist it redirected to shows it
    assert "Refreshed" not in html and "account “Acme CRM”" not in html
    # The action's name in the actions menu, and the model's name, are translated too.
    assert {"de": "Jetzt erneuern", "fr": "Rafraîchir maintenant"}[lang] in html
    assert {"de": "Verknüpfte Konten", "fr": "Comptes liés"}[lang] in html


def test_a_system_check_message_and_hint(lang, settings):
    settings.BIGOAUTH = {**settings.BIGOAUTH, "PROVIDERS": {"bigin": {"CLIENT_SECRET": "s"}}}
    with translation.override(lang):
        (message,) = check_settings()
    assert message.id == "django_bigoauth.E002"
    expected = {
        "de": ("hat kein CLIENT_ID.", "Kopieren Sie die Client-ID"),
        "fr": ("n’a pas de CLIENT_ID.", "Copiez l’identifiant client"),
    }[lang]
    assert expected[0] in message.msg and expected[1] in message.hint
    assert "has no" not in message.msg and "Copy the" not in message.hint


@pytest.mark.django_db
def test_a_commands_output(lang):
    out = StringIO()
    with translation.override(lang):
        call_command("bigoauth_accounts", stdout=out)
    assert out.getvalue().strip() == {"de": "Keine verknüpften Konten.", "fr": "Aucun compte lié."}[lang]


def test_the_accounts_a_key_rotation_could_not_read_in_the_commands_language_and_in_english_in_the_log(lang, caplog):
    report = RotationReport(failed=[(3, "bigin"), (9, "biggerplate"), (12, "bigin")])
    with translation.override(lang):
        text = report.failed_accounts(limit=2)
    assert (
        text
        == {
            "de": "Konto 3 (bigin), Konto 9 (biggerplate), und 1 weiteres",
            "fr": "compte 3 (bigin), compte 9 (biggerplate), et 1 autre",
        }[lang]
    )
    with translation.override("en"):
        assert report.failed_accounts(limit=2) == "account 3 (bigin), account 9 (biggerplate), and 1 more"


@pytest.mark.django_db
def test_a_key_rotations_log_record_stays_in_english(lang, settings, make_account, caplog):
    from cryptography.fernet import Fernet

    from django_bigoauth.rotation import rotate_keys
    from tests.test_crypto import use_keys

    lost, kept = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(settings, lost)
    account = make_account("bigin")
    use_keys(settings, kept)  # the key the token was written with is gone
    with translation.override(lang), caplog.at_level(logging.ERROR, logger="django_bigoauth"):
        report = rotate_keys()
    assert report.failed == [(account.pk, "bigin")]
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage().endswith(f": account {account.pk} (bigin)")


def test_model_names_and_choices(lang):
    from django_bigoauth.models import LinkedAccount, Token

    with translation.override(lang):
        names = [
            str(LinkedAccount._meta.verbose_name),
            str(Token._meta.verbose_name_plural),
            str(LinkedAccount.Status.NEEDS_REAUTH.label),
        ]
    assert (
        names
        == {
            "de": ["verknüpftes Konto", "Tokens", "Muss neu autorisiert werden"],
            "fr": ["compte lié", "jetons", "Nouvelle autorisation requise"],
        }[lang]
    )


COMMANDS = [
    "bigoauth_accounts",
    "bigoauth_exchange_code",
    "bigoauth_refresh",
    "bigoauth_revoke",
    "bigoauth_rotate_keys",
]


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_every_commands_help_prints_in_the_active_language(name, language):
    from django.core.management import load_command_class

    command = load_command_class("django_bigoauth", name)
    with translation.override(language):
        text = command.create_parser("manage.py", name).format_help()
        description = translation.gettext(type(command).help)
    # argparse rewraps the description: compare its words.
    assert " ".join(description.split()) in " ".join(text.split())
    assert (description == type(command).help) is (language == "en")
