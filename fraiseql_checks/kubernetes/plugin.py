"""The ``kubernetes`` plugin: the ``kubernetes`` settings, their flags, and the generator.

```toml
[tool.fraiseql-checks.kubernetes]
name = "fraiseql-check"          # the objects' names (and the app.kubernetes.io/instance label)
namespace = "monitoring"
image = "registry.example.com/fraiseql-checks:1.4.0"
labels = {release = "kube-prometheus-stack"}   # on every object: what Prometheus selects on
secret = "fraiseql-check"        # the Secret the watcher's environment comes from
```

``fraiseql-check generate kubernetes --namespace NS --image IMAGE --name NAME --label K=V``
overrides them for one run. The objects are built in ``kubernetes/manifests.py`` (and put in
a Helm chart by ``kubernetes/helm.py``, ``generate helm``), imported when a generator runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fraiseql_checks.config import Config, Parser, Setting, as_positive_int, as_str, as_str_list, section
from fraiseql_checks.generate import Generator, Generators
from fraiseql_checks.hookspec import hookimpl

DEFAULT_NAME = "fraiseql-check"
DEFAULT_NAMESPACE = "monitoring"
DEFAULT_IMAGE = "fraiseql-checks:latest"
DEFAULT_WORKERS = 2

# Patterns, compiled by re's cache at their first use (not at every start of every command).
#: A DNS-1123 label: object names, namespaces (at most 63 characters).
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
#: A label key: an optional DNS-subdomain prefix and a name of 63 characters at most.
_LABEL_NAME = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_QUANTITY = r"[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?"


def as_dns_label(value: Any) -> str:
    text = as_str(value)
    if len(text) > 63 or not re.fullmatch(_DNS_LABEL, text):
        raise ValueError(f"expected a lower-case name of letters, digits and '-' (at most 63), got {text!r}")
    return text


def _label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if (
        not name
        or len(name) > 63
        or not re.fullmatch(_LABEL_NAME, name)
        or (prefix and (len(prefix) > 253 or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", prefix)))
    ):
        raise ValueError(f"{key!r} is not a Kubernetes label name")
    return key


def as_labels(value: Any) -> dict[str, str]:
    """Kubernetes labels: a table of names to values (``release = "prometheus"``)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a table of label names to values, got {value!r}")
    labels = {}
    for key, item in value.items():
        text = item if isinstance(item, str) else None
        if text is None or len(text) > 63 or not re.fullmatch(_LABEL_NAME, text):
            raise ValueError(f"label {key!r}: expected a value of letters, digits, '-', '_', '.' (at most 63)")
        labels[_label_key(str(key))] = text
    return labels


def as_image(value: Any) -> str:
    text = as_str(value)
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"expected an image reference such as registry.example.com/fraiseql-checks:1.0, got {text!r}")
    return text


def as_quantity(value: Any) -> str:
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not re.fullmatch(_QUANTITY, text):
        raise ValueError(f"expected a Kubernetes quantity such as 250m, 512Mi or 1Gi, got {value!r}")
    return text


def as_env_names(value: Any) -> list[str]:
    names = as_str_list(value)
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"expected environment variable names, got {name!r}")
    return names


SETTINGS = [
    Setting("name", as_dns_label, help=f"the objects' names and app.kubernetes.io/instance (default {DEFAULT_NAME})"),
    Setting("namespace", as_dns_label, help=f"the namespace of every object (default {DEFAULT_NAMESPACE})"),
    Setting("image", as_image, help=f"the watcher's image, built by your pipeline (default {DEFAULT_IMAGE})"),
    Setting("labels", as_labels, help="labels on every object, e.g. the `release` label Prometheus selects on"),
    Setting("secret", as_dns_label, help="the Secret holding the watcher's environment (default: the name)"),
    Setting(
        "alertmanager_secret",
        as_dns_label,
        help="the Secret holding the receivers' secrets of the AlertmanagerConfig (default: <name>-alertmanager)",
    ),
    Setting("env", as_env_names, help="more environment variables the watcher reads from the Secret"),
    Setting("workers", as_positive_int, help=f"the watcher's worker processes (--workers; default {DEFAULT_WORKERS})"),
    Setting("cpu", as_quantity, help="CPU the pod requests (default 100m + 100m per worker)"),
    Setting("memory", as_quantity, help="memory the pod requests (default 256Mi)"),
    Setting("memory_limit", as_quantity, help="the pod's memory limit (default: room for every worker's limit)"),
]


@hookimpl
def fraiseql_addoption(parser: Parser) -> None:
    parser.addsetting(
        Setting("kubernetes", section(SETTINGS), {}, "generate kubernetes: names, namespace, image, labels, resources")
    )
    if parser.command != "generate":
        return
    group = "generate kubernetes"
    parser.addoption("--name", dest="k8s_name", metavar="NAME", help="the objects' names", group=group)
    parser.addoption("--namespace", dest="k8s_namespace", metavar="NS", help="their namespace", group=group)
    parser.addoption("--image", dest="k8s_image", metavar="IMAGE", help="the watcher's image", group=group)
    parser.addoption(
        "--label",
        dest="k8s_labels",
        metavar="KEY=VALUE",
        action="append",
        help="a label on every object (again for more)",
        group=group,
    )


def kubernetes_settings(config: Config) -> dict[str, Any]:
    """The ``kubernetes`` settings, with the command line's flags on top; ``UsageError`` on a bad flag."""
    from fraiseql_checks.config import UsageError

    values = dict(config.get("kubernetes"))
    for key, option, check in (
        ("name", "k8s_name", as_dns_label),
        ("namespace", "k8s_namespace", as_dns_label),
        ("image", "k8s_image", as_image),
    ):
        given = config.getoption(option)
        if given is not None:
            try:
                values[key] = check(given)
            except ValueError as exc:
                raise UsageError(f"--{key}: {exc}") from None
    for pair in config.getoption("k8s_labels") or []:
        key, sep, value = str(pair).partition("=")
        try:
            if not sep:
                raise ValueError(f"expected KEY=VALUE, got {pair!r}")
            values["labels"] = {**values.get("labels", {}), **as_labels({key: value})}
        except ValueError as exc:
            raise UsageError(f"--label: {exc}") from None
    return values


def _make(config: Config) -> dict[str, str]:
    from fraiseql_checks.kubernetes.manifests import make

    return make(config)


def _make_chart(config: Config) -> dict[str, str]:
    from fraiseql_checks.kubernetes.helm import make

    return make(config)


@hookimpl
def fraiseql_add_generators(generators: Generators) -> None:
    generators.add(
        Generator(
            "kubernetes",
            "a kustomize base in deploy/kubernetes/: the watcher, ServiceMonitor, PrometheusRules,"
            " dashboard ConfigMaps, AlertmanagerConfig; overlays/ha/",
            _make,
        )
    )
    generators.add(
        Generator(
            "helm",
            "the same objects as a Helm chart in deploy/helm/fraiseql-check/ (values: image, labels, ha)",
            _make_chart,
        )
    )
