"""``fraiseql-check generate alertmanager``: Alertmanager routing for the generated alerts.

Critical alerts page (PagerDuty), warnings go to Slack, info to email. Alerts are
grouped by alert name and service, and inhibition keeps a cause from drowning in
its consequences: a database that is down silences the errors, latency, pool and
health alerts that follow from it; Redis down silences the cache hit rate; a
watcher that is down silences its stale checks; an alert about one check
silences that check's generic ``FraiseQLCheckFailing``.

The receivers come from the ``alertmanager`` table of the config or the
environment. A secret (routing key, webhook URL, SMTP password) is written into
the file, which is Alertmanager's config, and masked wherever the tool prints;
each also has a ``*_file`` setting to name a file Alertmanager reads it from, so
the generated config can be committed without secrets.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fraiseql_checks.alerting.rules import (
    DEPENDS_ON,
    DESCRIPTION,
    FAILING,
    FOLDER,
    RUNBOOK_URL,
    STALE,
    SUMMARY,
    WATCHER_DOWN,
    yaml_text,
)
from fraiseql_checks.config import (
    Config,
    Parser,
    Setting,
    as_bool,
    as_duration,
    as_str,
    resolve_section,
    section,
)
from fraiseql_checks.durations import format_duration
from fraiseql_checks.generate import Generator, Generators, collect_checks
from fraiseql_checks.hookspec import hookimpl

if TYPE_CHECKING:
    from fraiseql_checks.alerting.alerts import AlertSpec

PATH = f"{FOLDER}/alertmanager.yml"
PAGERDUTY, SLACK, EMAIL = "pagerduty", "slack", "email"
#: Where each severity goes.
ROUTES = {"critical": PAGERDUTY, "warning": SLACK, "info": EMAIL}
GROUP_BY = ("alertname", "service")

SETTINGS = [
    Setting(
        "pagerduty_routing_key",
        as_str,
        help="PagerDuty Events v2 routing key",
        env="PAGERDUTY_ROUTING_KEY",
        secret=True,
    ),
    Setting("pagerduty_routing_key_file", as_str, help="a file Alertmanager reads the routing key from, instead"),
    Setting("pagerduty_url", as_str, help="PagerDuty's events endpoint (default Alertmanager's; e.g. the EU one)"),
    Setting("slack_webhook_url", as_str, help="Slack incoming-webhook URL", env="SLACK_WEBHOOK_URL", secret=True),
    Setting("slack_webhook_url_file", as_str, help="a file Alertmanager reads the webhook URL from, instead"),
    Setting("slack_channel", as_str, help="the Slack channel (default: the webhook's own)", env="SLACK_CHANNEL"),
    Setting("email_to", as_str, help="address info alerts go to", env="ALERT_EMAIL_TO"),
    Setting("email_from", as_str, help="sender address", env="ALERT_EMAIL_FROM"),
    Setting("smtp_smarthost", as_str, help="SMTP server, host:port", env="SMTP_SMARTHOST"),
    Setting("smtp_auth_username", as_str, help="SMTP user", env="SMTP_USERNAME"),
    Setting("smtp_auth_password", as_str, help="SMTP password", env="SMTP_PASSWORD", secret=True),
    Setting("smtp_auth_password_file", as_str, help="a file Alertmanager reads the SMTP password from, instead"),
    Setting("smtp_require_tls", as_bool, help="require STARTTLS (default true)"),
    Setting("group_wait", as_duration, help="wait before the first notification of a group (default 30s)"),
    Setting("group_interval", as_duration, help="wait before notifying a group's changes (default 5m)"),
    Setting("repeat_interval", as_duration, help="wait before repeating a notification (default 4h)"),
]
DEFAULTS = {"group_wait": 30.0, "group_interval": 300.0, "repeat_interval": 14400.0}

#: Our severities are PagerDuty's (Alertmanager would send "error" for all).
PAGERDUTY_SEVERITY = "{{ if .CommonLabels.severity }}{{ .CommonLabels.severity }}{{ else }}critical{{ end }}"


def _each_firing(annotation: str, separator: str, otherwise: str = "") -> str:
    """An Alertmanager template: the group's common ``annotation``, else each firing alert's
    (``otherwise`` for one without it), joined by ``separator``."""
    each = f"$alert.Annotations.{annotation}"
    if otherwise:
        each = f"or {each} {otherwise}"
    common = f".CommonAnnotations.{annotation}"
    return (
        f"{{{{ if {common} }}}}{{{{ {common} }}}}{{{{ else }}}}{{{{ range $i, $alert := .Alerts.Firing }}}}"
        f"{{{{ if $i }}}}{separator}{{{{ end }}}}{{{{ {each} }}}}{{{{ end }}}}{{{{ end }}}}"
    )


#: The incident's title (Events v2 ``payload.summary``): the alerts' summaries (an alert's name
#: when it has none), rather than Alertmanager's "[FIRING:1] DatabaseDown fraiseql (...)" of labels.
PAGERDUTY_SUMMARY = _each_firing(SUMMARY, "; ", otherwise="$alert.Labels.alertname")
#: The affected system: the alerts' service (a label they are grouped by).
PAGERDUTY_SOURCE = "{{ if .CommonLabels.service }}{{ .CommonLabels.service }}{{ else }}Alertmanager{{ end }}"
_FIRST = "(index .Alerts 0).Annotations"
#: The runbook: the group's own, else its first alert's, named (each alert's runbook is also in
#: Alertmanager's ``firing`` detail). Alertmanager leaves out a link whose href is empty.
PAGERDUTY_LINKS = [
    {
        "href": f"{{{{ {_FIRST}.{RUNBOOK_URL} }}}}",
        "text": f"Runbook{{{{ if not .CommonAnnotations.{RUNBOOK_URL} }}}}: {{{{ {_FIRST}.{SUMMARY} }}}}{{{{ end }}}}",
    }
]
#: Added to Alertmanager's own details (``firing``, ``resolved``, ``num_firing``, ``num_resolved``).
PAGERDUTY_DETAILS = {DESCRIPTION: _each_firing(DESCRIPTION, '{{ "\\n" }}')}
SLACK_TEXT = (
    "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n"
    "{{ if .Annotations.runbook_url }}Runbook: {{ .Annotations.runbook_url }}\n{{ end }}{{ end }}"
)


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addsetting(
        Setting("alertmanager", section(SETTINGS), {}, "receivers and timing of the generated Alertmanager config")
    )


@dataclasses.dataclass
class Receivers:
    """The receivers, from the settings; ``missing`` says which could not be filled, and how to fill them."""

    settings: dict[str, Any]
    missing: list[str] = dataclasses.field(default_factory=list)

    def _secret(self, config: dict[str, Any], key: str, setting: str) -> bool:
        value, path = self.settings.get(setting), self.settings.get(f"{setting}_file")
        if value:
            config[key] = value
        elif path:
            config[f"{key}_file"] = path
        return bool(value or path)

    def pagerduty(self) -> list[dict[str, Any]]:
        config: dict[str, Any] = {}
        if not self._secret(config, "routing_key", "pagerduty_routing_key"):
            self.missing.append(
                "critical alerts go to PagerDuty, which has no routing key: set alertmanager.pagerduty_routing_key"
                " (or PAGERDUTY_ROUTING_KEY, or alertmanager.pagerduty_routing_key_file)"
            )
            return []
        if self.settings.get("pagerduty_url"):
            config["url"] = self.settings["pagerduty_url"]
        config["description"] = PAGERDUTY_SUMMARY
        config["source"] = PAGERDUTY_SOURCE
        config["severity"] = PAGERDUTY_SEVERITY
        config["links"] = PAGERDUTY_LINKS
        config["details"] = PAGERDUTY_DETAILS
        config["send_resolved"] = True
        return [config]

    def slack(self) -> list[dict[str, Any]]:
        config: dict[str, Any] = {}
        if not self._secret(config, "api_url", "slack_webhook_url"):
            self.missing.append(
                "warnings go to Slack, which has no webhook URL: set alertmanager.slack_webhook_url"
                " (or SLACK_WEBHOOK_URL, or alertmanager.slack_webhook_url_file)"
            )
            return []
        if self.settings.get("slack_channel"):
            config["channel"] = self.settings["slack_channel"]
        config["send_resolved"] = True
        config["text"] = SLACK_TEXT
        return [config]

    def email(self) -> list[dict[str, Any]]:
        wanted = {"to": "email_to", "from": "email_from", "smarthost": "smtp_smarthost"}
        absent = [setting for setting in wanted.values() if not self.settings.get(setting)]
        if absent:
            self.missing.append(
                "info alerts go to email, which is not configured: set "
                + ", ".join(f"alertmanager.{name}" for name in absent)
            )
            return []
        config: dict[str, Any] = {key: self.settings[setting] for key, setting in wanted.items()}
        if self.settings.get("smtp_auth_username"):
            config["auth_username"] = self.settings["smtp_auth_username"]
        self._secret(config, "auth_password", "smtp_auth_password")
        if self.settings.get("smtp_require_tls") is not None:
            config["require_tls"] = self.settings["smtp_require_tls"]
        config["send_resolved"] = True
        return [config]


def _is(name: str, value: str) -> str:
    return f'{name}="{value}"'


def _mentions(name: str, item: str) -> str:
    """A comma-separated label value (``depends_on``) that lists ``item``."""
    return f'{name}=~"(.*,)?{item}(,.*)?"'


def inhibit_rules(alerts: Sequence[AlertSpec]) -> list[dict[str, Any]]:
    """A cause silences its consequences (for the same service, or the same watcher or check).

    Derived from what the alerts declare: an alert that is the cause of a target's
    outage (``@alert(cause_of="database")``) silences every alert that depends on
    that target (``depends_on``, an ``@alert``'s own or a check's, from its fixtures)."""
    rules: list[dict[str, Any]] = []
    for spec in sorted((a for a in alerts if a.cause_of), key=lambda a: (a.cause_of or "", a.name)):
        rules.append(
            {
                "source_matchers": [_is("alertname", spec.name)],
                "target_matchers": [_mentions(DEPENDS_ON, str(spec.cause_of))],
                "equal": ["service"],
            }
        )
    rules += [
        {
            "source_matchers": [_is("alertname", WATCHER_DOWN)],
            "target_matchers": [_is("alertname", STALE)],
            "equal": ["job", "instance"],
        },
        {
            # DatabaseDown, HighFailedAuthAttempts... read one check's series: that check's
            # generic failing alert says the same thing again.
            "source_matchers": [f'alertname!="{FAILING}"', 'check=~".+"'],
            "target_matchers": [_is("alertname", FAILING)],
            "equal": ["check"],
        },
    ]
    return rules


def alertmanager_config(settings: dict[str, Any], alerts: Sequence[AlertSpec] = ()) -> tuple[dict[str, Any], list[str]]:
    """The Alertmanager config (inhibition from the ``alerts``' facts), and what could not be filled in."""
    receivers = Receivers(settings)
    timing = {key: format_duration(settings.get(key) or default) for key, default in DEFAULTS.items()}
    configs = {
        PAGERDUTY: ("pagerduty_configs", receivers.pagerduty()),
        SLACK: ("slack_configs", receivers.slack()),
        EMAIL: ("email_configs", receivers.email()),
    }
    document: dict[str, Any] = {
        "route": {
            "receiver": SLACK,
            "group_by": list(GROUP_BY),
            **timing,
            "routes": [
                {"receiver": receiver, "matchers": [_is("severity", severity)]} for severity, receiver in ROUTES.items()
            ],
        },
        # A receiver without configs drops what it gets (and the generator said why).
        "receivers": [{"name": name, **({key: items} if items else {})} for name, (key, items) in configs.items()],
        "inhibit_rules": inhibit_rules(alerts),
    }
    return document, receivers.missing


HEADER = """\
# Generated by `fraiseql-check generate alertmanager`; receivers from the `alertmanager`
# table of the config and the environment. Generate again rather than edit.
# Secrets set in the config or the environment are written here: keep this file out of
# version control then, or use the *_file settings to have Alertmanager read them.
"""


def _make(config: Config) -> dict[str, str]:
    from fraiseql_checks.alerting.alerts import AlertSpec  # imported by a generator's run, not every start

    settings = resolve_section(config, "alertmanager", SETTINGS)
    alerts = [check.spec.alert for check in collect_checks(config).checks if isinstance(check.spec.alert, AlertSpec)]
    document, missing = alertmanager_config(settings, alerts)
    for problem in missing:
        sys.stderr.write(f"WARNING: {problem}\n")
    return {PATH: HEADER + yaml_text(document)}


@hookimpl
def fraiseql_add_generators(generators: Generators) -> None:
    generators.add(
        Generator(
            "alertmanager",
            "Alertmanager routing: critical to PagerDuty, warning to Slack, info to email; grouping, inhibition",
            _make,
        )
    )
