"""Masking: every URL's password, every secret the config declares, wherever the tool writes."""

from __future__ import annotations

import json

import pytest

from fraiseql_checks.config import Masker as ConfigMasker
from fraiseql_checks.masking import Masker, mask_urls, url_passwords
from tests.support.checkdir import CheckDir

URLS = [
    ("postgresql://app:hunter22@db:5432/app", "postgresql://app:***@db:5432/app"),
    ("postgresql://u:p@ss@host/db", "postgresql://u:***@host/db"),
    ("postgresql://u:p@ss@w@rd@host:5432/db", "postgresql://u:***@host:5432/db"),
    ("postgresql://app:pg/secret@91@db:5432/app", "postgresql://app:***@db:5432/app"),
    ("postgresql://app:p%40ss%2Fw@db/app", "postgresql://app:***@db/app"),
    ("redis://:pa:ss:wd@cache:6379/0", "redis://:***@cache:6379/0"),
    ("postgresql://app:pw@[::1]:5432/app", "postgresql://app:***@[::1]:5432/app"),
    ("postgresql://app:pw@h1:5432,h2:5433/app", "postgresql://app:***@h1:5432,h2:5433/app"),
    ("postgresql://app:pw@/app?host=/var/run/postgresql", "postgresql://app:***@/app?host=/var/run/postgresql"),
    ("postgresql://app:pw@db/app?application_name=a@b", "postgresql://app:***@db/app?application_name=a@b"),
    ("postgresql://app@db/app?password=s3cret&sslmode=require", "postgresql://app@db/app?password=***&sslmode=require"),
    (
        "postgresql://app@db/app?sslmode=verify-full&sslpassword=k3y",
        "postgresql://app@db/app?sslmode=verify-full&sslpassword=***",
    ),
    ("rediss://cache:6380?db=1&PASSWORD=x%26y", "rediss://cache:6380?db=1&PASSWORD=***"),
    (
        "https://api.example.com/v1?access_token=abc.def&client_secret=xyz&api_key=k&apikey=k2&pwd=p&passwd=q#top",
        "https://api.example.com/v1?access_token=***&client_secret=***&api_key=***&apikey=***&pwd=***&passwd=***#top",
    ),
    (
        "postgresql://a:pw1@db1/x, redis://:pw2@cache/0 and http://u:pw3@h:80",
        "postgresql://a:***@db1/x, redis://:***@cache/0 and http://u:***@h:80",
    ),
    ('{"dsn": "postgresql://u:p@ss@db/app", "who": "a@b"}', '{"dsn": "postgresql://u:***@db/app", "who": "a@b"}'),
    ('{"store":"postgresql://u@db/x?password=pw1","n":1}', '{"store":"postgresql://u@db/x?password=***","n":1}'),
    ("cannot connect to 'redis://:pw@cache/0': refused", "cannot connect to 'redis://:***@cache/0': refused"),
    ("(see <http://u:pw@host/x>).", "(see <http://u:***@host/x>)."),
    ("`mysql://root:pw@db`", "`mysql://root:***@db`"),
    # Nothing to hide: the text stays as it is.
    ("http://127.0.0.1:8000/graphql?query=%7B__typename%7D", "http://127.0.0.1:8000/graphql?query=%7B__typename%7D"),
    ("https://example.com/users/a@b.com", "https://example.com/users/a@b.com"),
    ("postgresql://monitor@db/app", "postgresql://monitor@db/app"),
    ("mail a@b.com: password=x token=y", "mail a@b.com: password=x token=y"),
]


@pytest.mark.parametrize(("text", "masked"), URLS, ids=[text[:40] for text, _ in URLS])
def test_url_passwords_are_masked_exactly(text: str, masked: str) -> None:
    assert mask_urls(text) == masked
    assert Masker()(text) == masked
    assert mask_urls(masked) == masked


def test_url_passwords_are_found_as_written() -> None:
    assert url_passwords("postgresql://u:p%40ss@db/x?sslpassword=k%2Fy&password=z") == ["p%40ss", "k%2Fy", "z"]
    assert url_passwords("postgresql://u:p@ss/w@db/x") == ["p@ss/w"]
    assert url_passwords("https://hooks.slack.com/services/T0/B0/XYZ") == []


def test_known_secrets_are_masked_as_written_decoded_and_encoded() -> None:
    mask = Masker()
    mask.add("tok-123456")
    mask.add("p@ss/word")
    assert mask("Bearer tok-123456, ?t=tok-123456") == "Bearer ***, ?t=***"
    assert mask("password p@ss/word, encoded p%40ss%2Fword") == "password ***, encoded ***"
    mask.add("ab")  # too short to mask without destroying the text
    assert mask("abc") == "abc"


def test_a_url_secret_masks_its_password_in_every_form() -> None:
    mask = Masker()
    mask.add("postgresql://app:dsn%40pa55@db:5432/app")
    assert mask("postgresql://app:dsn%40pa55@db:5432/app") == "postgresql://app:***@db:5432/app"
    assert mask("login with dsn@pa55 or dsn%40pa55") == "login with *** or ***"


def test_a_url_that_is_the_secret_is_masked_whole() -> None:
    mask = Masker()
    webhook = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX"
    mask.add(webhook)
    assert mask(f"posting to {webhook} failed") == "posting to *** failed"
    assert (
        mask("https://hooks.slack.com/services/T0000/B0000/other")
        == "https://hooks.slack.com/services/T0000/B0000/other"
    )


def test_add_url_hides_only_the_passwords() -> None:
    mask = Masker()
    mask.add_url("postgresql://checks@db/results?password=st0re-pw")
    mask.add_url("postgresql://checks:an0ther@db/results")
    assert mask("results to postgresql://checks@db/results") == "results to postgresql://checks@db/results"
    assert mask("st0re-pw and an0ther") == "*** and ***"


def test_text_without_urls_or_secrets_is_returned_as_is() -> None:
    text = "a message with user:password@host but no scheme"
    assert Masker()(text) is text
    assert mask_urls(text) is text


def test_the_config_module_keeps_its_masker() -> None:
    assert ConfigMasker is Masker


SECRETS = {
    "grafana": "glsa_grafana-token-5e1f",
    "slack": "https://hooks.slack.com/services/T0000/B0000/slack-hook-77c1",
    "smtp": "smtp-pa55-e2b9",
    "pagerduty": "pd-routing-key-0a9d",
    "dsn_password": "dsn@pa55/9c",
    "prometheus": "prom-token-31d4",
    "store_password": "store-pw-6b2a",
}

CHECK_PRINTING_SECRETS = """
import os
import urllib.parse


def check_leaks(config):
    grafana = config.get("grafana")["token"]
    alertmanager = config.get("alertmanager")
    slack = os.environ["SLACK_WEBHOOK_URL"]
    smtp = alertmanager["smtp_auth_password"]
    pagerduty = os.environ["PAGERDUTY_ROUTING_KEY"]
    dsn = config.get("database")["dsn"]
    dsn_password = urllib.parse.unquote(urllib.parse.urlsplit(dsn).password)
    prometheus = config.get("prometheus")["token"]
    store = config.get("store")
    store_password = urllib.parse.parse_qs(urllib.parse.urlsplit(store).query)["password"][0]
    values = [grafana, slack, smtp, pagerduty, dsn, dsn_password, prometheus, store, store_password]
    print("printed:", " | ".join(values))
    raise RuntimeError("raised: " + " | ".join(values))
"""


def test_every_declared_secret_is_masked_whichever_command_uses_it(checkdir: CheckDir) -> None:
    checkdir.write(
        "fraiseql-checks.yaml",
        f"""
        paths: [checks]
        grafana:
          url: http://127.0.0.1:3000
          token: {SECRETS["grafana"]}
        alertmanager:
          smtp_auth_password: {SECRETS["smtp"]}
          smtp_auth_password_file: /run/secrets/smtp
        database:
          dsn: postgresql://app:dsn%40pa55%2F9c@127.0.0.1:5432/test
        prometheus:
          url: http://127.0.0.1:9090
          token: {SECRETS["prometheus"]}
        """,
    )
    checkdir.write("checks/check_leaks.py", CHECK_PRINTING_SECRETS)
    env = {
        "SLACK_WEBHOOK_URL": SECRETS["slack"],
        "PAGERDUTY_ROUTING_KEY": SECRETS["pagerduty"],
        "FRAISEQL_CHECKS_STORE": f"postgresql://checks@127.0.0.1/test?password={SECRETS['store_password']}",
    }

    shown = checkdir.run("-s", env=env)
    assert shown.ret == 1, shown.stdout + shown.stderr
    assert "printed: *** | *** | *** | *** | postgresql://app:***@127.0.0.1:5432/test | *** | ***" in shown.stdout
    assert "raised: *** | ***" in shown.stdout

    reported = checkdir.run("--junitxml", "j.xml", "--report-json", "r.json", env=env)
    assert reported.ret == 1
    report = (checkdir.path / "r.json").read_text()
    junit = (checkdir.path / "j.xml").read_text()
    (result,) = json.loads(report)["results"]
    assert result["message"].startswith("RuntimeError: raised: *** | *** | ***")
    assert "postgresql://checks@127.0.0.1/test?password=***" in result["message"]
    assert "printed: ***" in result["stdout"]

    for secret in SECRETS.values():
        for where, text in {
            "-s stdout": shown.stdout,
            "-s stderr": shown.stderr,
            "stdout": reported.stdout,
            "stderr": reported.stderr,
            "r.json": report,
            "j.xml": junit,
        }.items():
            assert secret not in text, f"{secret} in {where}"
    assert "slack-hook-77c1" not in shown.stdout + reported.stdout + report + junit


def test_a_secret_in_a_bad_value_is_masked_in_the_usage_error(checkdir: CheckDir) -> None:
    checkdir.write("checks/check_ok.py", "def check_ok(): pass")
    checkdir.write("fraiseql-checks.yaml", "grafana:\n  token: [glsa_in-a-list-42]\n")
    result = checkdir.run()
    assert result.ret == 4
    assert result.stderr.splitlines() == [
        "ERROR: fraiseql-checks.yaml: grafana: token: expected a string, got list ['***']"
    ]
