"""The routing of ``generate alertmanager`` as an ``AlertmanagerConfig`` (``monitoring.coreos.com/v1alpha1``).

The Prometheus Operator merges an AlertmanagerConfig into the Alertmanager it runs.
Its shape is Alertmanager's config in camelCase, with two differences this module
translates: matchers are objects (``{name, matchType, value}``), not strings; and
every secret (a routing key, a webhook URL, a password) is a ``secretKeyRef`` to a
Secret in the AlertmanagerConfig's namespace, never a value. The Secret's keys are
the names of the ``alertmanager`` settings that hold them (``pagerduty_routing_key``,
``slack_webhook_url``, ``smtp_auth_password``), so one Secret serves both forms.

A key this module does not know is an error, not a silent drop: the translation
covers what ``generate alertmanager`` writes, and a test holds it to that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

API_VERSION = "monitoring.coreos.com/v1alpha1"
KIND = "AlertmanagerConfig"

#: The secret fields of each receiver type, and the ``alertmanager`` setting (the Secret's key) behind each.
SECRETS: dict[str, dict[str, str]] = {
    "pagerduty_configs": {"routing_key": "pagerduty_routing_key"},
    "slack_configs": {"api_url": "slack_webhook_url"},
    "email_configs": {"auth_password": "smtp_auth_password"},
}
#: Each receiver type's plain fields, by Alertmanager's name: the AlertmanagerConfig's name.
FIELDS: dict[str, dict[str, str]] = {
    "pagerduty_configs": {
        "url": "url",
        "description": "description",
        "source": "source",
        "severity": "severity",
        "send_resolved": "sendResolved",
    },
    "slack_configs": {"channel": "channel", "text": "text", "send_resolved": "sendResolved"},
    "email_configs": {
        "to": "to",
        "from": "from",
        "smarthost": "smarthost",
        "auth_username": "authUsername",
        "require_tls": "requireTLS",
        "send_resolved": "sendResolved",
    },
}
RECEIVER_TYPES = {
    "pagerduty_configs": "pagerdutyConfigs",
    "slack_configs": "slackConfigs",
    "email_configs": "emailConfigs",
}
ROUTE_FIELDS = {
    "receiver": "receiver",
    "group_by": "groupBy",
    "group_wait": "groupWait",
    "group_interval": "groupInterval",
    "repeat_interval": "repeatInterval",
    "continue": "continue",
}
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*')


class TranslationError(ValueError):
    """Something in the Alertmanager config has no AlertmanagerConfig form here."""


def matcher(text: str) -> dict[str, str]:
    """``severity="critical"`` as ``{name: severity, matchType: "=", value: critical}``."""
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise TranslationError(f"cannot translate the matcher {text!r}")
    name, operator, quoted = found.groups()
    return {"name": name, "matchType": operator, "value": json.loads(quoted)}


def _route(route: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in route.items():
        if key in ROUTE_FIELDS:
            out[ROUTE_FIELDS[key]] = value
        elif key == "matchers":
            out["matchers"] = [matcher(m) for m in value]
        elif key == "routes":
            out["routes"] = [_route(r) for r in value]
        else:
            raise TranslationError(f"route: cannot translate {key!r}")
    return out


def _receiver_config(kind: str, config: Mapping[str, Any], secret: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    secrets, fields = SECRETS[kind], FIELDS[kind]
    for key, value in config.items():
        field = key.removesuffix("_file")
        if field in secrets:  # a value or a file: in Kubernetes, always the Secret's key
            out[_camel(field)] = {"name": secret, "key": secrets[field]}
        elif key in fields:
            out[fields[key]] = value
        elif kind == "pagerduty_configs" and key == "links":
            out["pagerDutyLinkConfigs"] = [{"href": link["href"], "alt": link["text"]} for link in value]
        elif kind == "pagerduty_configs" and key == "details":
            out["details"] = [{"key": k, "value": v} for k, v in value.items()]
        else:
            raise TranslationError(f"{kind}: cannot translate {key!r}")
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join("URL" if part == "url" else part.capitalize() for part in rest)


def spec(document: Mapping[str, Any], secret: str) -> dict[str, Any]:
    """The AlertmanagerConfig's ``spec`` for an Alertmanager config (``generate alertmanager``'s,
    parsed), its secrets referenced in the Secret ``secret``. ``TranslationError`` on a key it
    cannot translate."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        if key == "route":
            out["route"] = _route(value)
        elif key == "receivers":
            receivers = []
            for receiver in value:
                translated: dict[str, Any] = {}
                for rkey, items in receiver.items():
                    if rkey == "name":
                        translated["name"] = items
                    elif rkey in RECEIVER_TYPES:
                        translated[RECEIVER_TYPES[rkey]] = [_receiver_config(rkey, item, secret) for item in items]
                    else:
                        raise TranslationError(f"receiver {receiver.get('name')!r}: cannot translate {rkey!r}")
                receivers.append(translated)
            out["receivers"] = receivers
        elif key == "inhibit_rules":
            out["inhibitRules"] = [_inhibit_rule(rule) for rule in value]
        else:
            raise TranslationError(f"cannot translate {key!r}")
    return out


def _inhibit_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in rule.items():
        if key == "source_matchers":
            out["sourceMatch"] = [matcher(m) for m in value]
        elif key == "target_matchers":
            out["targetMatch"] = [matcher(m) for m in value]
        elif key == "equal":
            out["equal"] = list(value)
        else:
            raise TranslationError(f"inhibit_rules: cannot translate {key!r}")
    return out
