"""Our SLO rules against Sloth's: Sloth's own example specs, and the rules Sloth generated for them.

The specs and Sloth's output are copied from github.com/slok/sloth (tests/data/slo/sloth,
see its README for the commit). Each spec goes through our loader and rule generator;
what comes out is compared with Sloth's file structurally: the same groups, recording
rule names, windows, labels and (parsed) expressions; the same alert names, page/ticket
split, labels, windows and burn thresholds; Sloth's ``title``. The differences that
remain are intended, and each is asserted here with the reason:

- **numbers** are written exactly (``vector(0.999)``, budget ``0.001``) where Sloth writes
  binary floats (``vector(0.9990000000000001)``, ``1-0.999...``, ``0.0009999999999999432``):
  compared as numbers;
- **``sloth_slo_info``** says who generated the rules: ``sloth_mode="fraiseql-check"``, and no
  ``sloth_spec``/``sloth_version`` (they would name a Sloth that did not run);
- **alert labels**: ours also carry ``sloth_id``/``sloth_service``/``sloth_slo`` (Sloth's alerts
  get them from the expression's result: the same labels on the firing alert), ``service``
  (this project's Alertmanager routes on it) and, where the spec sets none, ``severity``
  (``critical`` for the page, ``warning`` for the ticket);
- **annotations**: ours add ``description`` (the windows and thresholds in words) and
  ``runbook_url``; where the spec sets no ``summary``, ours is written in words
  (``SLO home-wifi/x burns its error budget too fast``) where Sloth's is a template;
- **files**: one per service (``alerts/slo/<service>.rules.yml``), SLOs sorted by name, where
  Sloth writes one per spec file in the spec's order: compared group by group;
- **the inner order of a burn condition** (``long and short`` for us, ``short and long`` for
  Sloth): ``and`` of two conditions, compared as sets;
- Sloth's **plugins** are not run: a spec whose SLI is a plugin is refused in one line, an
  SLO plugin chain is ignored (``contrib-slo-plugins``: Sloth's group ``interval`` and extra
  info labels are missing from ours — asserted as the only differences); a spec written in
  MetricsQL (``victoria-metrics``) is refused in one line, since our rules are PromQL.
"""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from fraiseql_checks.alerting.rules import RuleSettings
from fraiseql_checks.slo.load import load_files
from fraiseql_checks.slo.model import SLO, SLOError
from fraiseql_checks.slo.rules import slo_groups, slo_rule_files
from tests.support import REPO
from tests.support.checkdir import CheckDir

SLOTH = REPO / "tests/data/slo/sloth/examples"
#: The examples our generator supports, and those it refuses (with the reason it gives).
COMPARED = ["getting-started", "home-wifi", "kubernetes-apiserver", "multifile", "no-alerts", "raw-home-wifi"]
REFUSED = {
    "plugin-getting-started": "Sloth SLI plugins are not supported",
    "victoria-metrics": "unknown function with name 'histogram_share'",
}
#: Labels of Sloth's files that are not Sloth's rules: its examples script adds ``cmd``.
EXTRA = {"cmd": "examplesgen.sh"}
#: Which windows each alert reads: the Google SRE workbook's, as Sloth's defaults.
PAGE_WINDOWS = {"5m", "1h", "30m", "6h"}
TICKET_WINDOWS = {"2h", "1d", "6h", "3d"}

#: Rule groups by name: ``{"name": ..., "rules": [...]}`` (and Sloth's ``interval`` where a plugin set one).
Groups = dict[str, dict[str, Any]]


def sloths(name: str) -> Groups:
    """The groups Sloth generated for ``examples/<name>.yml``."""
    documents = [d for d in yaml.safe_load_all((SLOTH / "_gen" / f"{name}.yml").read_text()) if d]
    return {group["name"]: group for document in documents for group in document["groups"]}


def load(name: str) -> list[SLO]:
    return load_files([(SLOTH / f"{name}.yml", f"{name}.yml")])


def ours(slos: list[SLO]) -> Groups:
    """Our groups for the SLOs, from the rule files the generator writes (every service's)."""
    found: Groups = {}
    for text in slo_rule_files(slos, RuleSettings()).values():
        for group in yaml.safe_load(text)["groups"]:
            found[group["name"]] = group
    return found


# ---- comparing ---------------------------------------------------------------------------


def canonical(expr: str) -> str:
    """The parsed expression, printed one way (matchers sorted, no outer parentheses)."""
    tree = promql_parser.parse(expr)
    while isinstance(tree, promql_parser.ParenExpr):
        tree = tree.expr
    return str(tree.prettify())


def number(expr: str) -> Fraction:
    """``vector(0.999)`` or ``vector(1-0.9990000000000001)``, as a number (rounded to 1e-9)."""
    match = re.fullmatch(r"vector\((?P<a>[0-9.]+)(?:\s*-\s*(?P<b>[0-9.]+))?\)", expr.strip())
    assert match, expr
    value = Fraction(match["a"]) - (Fraction(match["b"]) if match["b"] else 0)
    return Fraction(round(value * 10**9), 10**9)


_CONDITION = re.compile(
    r"max\(slo:sli_error:ratio_rate(?P<window>\w+)(?P<selector>\{[^}]*\})"
    r" > \((?P<factor>[0-9.]+) \* (?P<budget>[0-9.e-]+)\)\) without \(sloth_window\)"
)


def burn_conditions(expr: str) -> set[frozenset[tuple[str, str, Fraction, Fraction]]]:
    """A burn-rate alert as ``{(window, selector, factor, budget) and ...} or ...``, numbers rounded."""
    pairs = set()
    for part in expr.strip().split("\nor\n"):
        found = [
            (
                m["window"],
                m["selector"],
                Fraction(round(Fraction(m["factor"]) * 10**6), 10**6),
                Fraction(round(Fraction(m["budget"]) * 10**9), 10**9),
            )
            for m in _CONDITION.finditer(part)
        ]
        assert len(found) == 2, part
        pairs.add(frozenset(found))
    return pairs


def without(labels: dict[str, Any], *names: str) -> dict[str, str]:
    return {k: str(v) for k, v in labels.items() if k not in names}


def assert_recordings_match(slo_id: str, sloth: Groups, mine: Groups) -> None:
    for kind in ("sli", "meta"):
        name = f"sloth-slo-{kind}-recordings-{slo_id}"
        theirs, ours_ = sloth[name]["rules"], mine[name]["rules"]
        assert [r["record"] for r in ours_] == [r["record"] for r in theirs], name
        for their, our in zip(theirs, ours_, strict=True):
            record = their["record"]
            if record == "sloth_slo_info":
                # Who generated the rules: us, not a Sloth of some version.
                assert our["labels"]["sloth_mode"] == "fraiseql-check"
                assert without(our["labels"], "sloth_mode") == without(
                    their["labels"], *EXTRA, "sloth_mode", "sloth_spec", "sloth_version"
                ), record
            else:
                assert without(our["labels"], *EXTRA) == without(their["labels"], *EXTRA), (name, record)
            if record in ("slo:objective:ratio", "slo:error_budget:ratio", "slo:time_period:days"):
                assert number(our["expr"]) == number(their["expr"]), (record, our["expr"], their["expr"])
            else:
                assert canonical(our["expr"]) == canonical(their["expr"]), (record, our["expr"], their["expr"])


def assert_alerts_match(slo: SLO, sloth: Groups, mine: Groups) -> None:
    name = f"sloth-slo-alerts-{slo.id}"
    if name not in sloth:
        assert name not in mine, f"{slo.id}: Sloth generates no alert, we do"
        return
    theirs, ours_ = sloth[name]["rules"], mine[name]["rules"]
    assert [(r["alert"], r["labels"]["sloth_severity"]) for r in ours_] == [
        (r["alert"], r["labels"]["sloth_severity"]) for r in theirs
    ], name
    for their, our in zip(theirs, ours_, strict=True):
        severity = their["labels"]["sloth_severity"]
        # The page/ticket split, windows and burn thresholds, numbers compared as numbers.
        conditions = burn_conditions(our["expr"])
        assert conditions == burn_conditions(their["expr"]), (name, severity)
        windows = {window for pair in conditions for window, *_ in pair}
        assert windows == (PAGE_WINDOWS if severity == "page" else TICKET_WINDOWS)
        # Every label Sloth sets, ours sets the same; what we add is listed (module docstring).
        their_labels = without(their["labels"], *EXTRA)
        our_labels = without(our["labels"])
        assert {k: our_labels.get(k) for k in their_labels} == their_labels, (name, severity)
        added = set(our_labels) - set(their_labels)
        assert added <= {"sloth_id", "sloth_service", "sloth_slo", "service", "severity"}, added
        if "severity" in added:
            assert our_labels["severity"] == ("critical" if severity == "page" else "warning")
        assert (our_labels["sloth_id"], our_labels["sloth_service"], our_labels["sloth_slo"]) == (
            slo.id,
            slo.service,
            slo.name,
        )
        # Annotations: Sloth's title word for word; the spec's own annotations as given.
        their_notes, our_notes = their["annotations"], our["annotations"]
        assert our_notes["title"] == their_notes["title"]
        for key, value in slo.alerting.annotations.items():
            assert our_notes[key] == their_notes[key] == value
        assert set(our_notes) - set(their_notes) <= {"description", "runbook_url"}
        assert set(their_notes) <= set(our_notes)


def assert_same_as_sloth(slos: list[SLO], sloth: Groups) -> None:
    mine = ours(slos)
    assert set(mine) == set(sloth), "the same groups, one sli, one meta and (unless disabled) one alerts per SLO"
    for slo in slos:
        assert_recordings_match(slo.id, sloth, mine)
        assert_alerts_match(slo, sloth, mine)


# ---- the examples ------------------------------------------------------------------------


def test_every_prometheus_v1_example_of_sloth_is_here_with_what_sloth_generated() -> None:
    specs = sorted(p.stem for p in SLOTH.glob("*.yml"))
    assert specs == sorted([*COMPARED, *REFUSED, "contrib-slo-plugins", "slo-plugin-getting-started"])
    for name in specs:
        assert yaml.safe_load((SLOTH / f"{name}.yml").read_text().split("\n---\n")[-1])["version"] == "prometheus/v1"
        assert (SLOTH / "_gen" / f"{name}.yml").read_text().startswith("\n---\n# Code generated by Sloth")


@pytest.mark.parametrize("name", COMPARED)
def test_our_rules_are_sloths_for_sloths_examples(name: str) -> None:
    assert_same_as_sloth(load(name), sloths(name))


def test_an_slo_plugin_chain_that_changes_nothing_gives_sloths_rules() -> None:
    """Sloth's debug plugin only logs: ignoring it changes nothing."""
    assert_same_as_sloth(load("slo-plugin-getting-started"), sloths("slo-plugin-getting-started"))


def test_the_contrib_plugins_are_not_run_and_that_is_the_only_difference() -> None:
    """Sloth's info-labels and rule-intervals plugins: their labels and interval are missing from ours."""
    sloth = sloths("contrib-slo-plugins")
    info = "sloth-slo-meta-recordings-myservice-requests-availability-contrib-plugin-info-labels-v1"
    plugin_labels = {"plug-l1", "plug-l2", "plug-l3"}
    (their_info,) = [r for r in sloth[info]["rules"] if r["record"] == "sloth_slo_info"]
    assert plugin_labels <= set(their_info["labels"])
    their_info["labels"] = without(their_info["labels"], *plugin_labels)
    intervals = {name: group.pop("interval") for name, group in sloth.items() if "interval" in group}
    assert set(intervals.values()) == {"5m"} and len(intervals) == 3, intervals
    assert_same_as_sloth(load("contrib-slo-plugins"), sloth)


@pytest.mark.parametrize(("name", "reason"), sorted(REFUSED.items()))
def test_what_we_cannot_generate_is_refused_in_one_line(name: str, reason: str) -> None:
    with pytest.raises(SLOError) as info:
        load(name)
    assert str(info.value).startswith(f"{name}.yml: SLO ")
    assert reason in str(info.value) and "\n" not in str(info.value)


def test_no_alerts_when_sloth_disables_both() -> None:
    (slo,) = load("no-alerts")
    assert "sloth-slo-alerts-myapp-http-availability" not in ours([slo])


# ---- one alert disabled ----------------------------------------------------------------------
# Sloth (internal/plugin/slo/core/alert_rules_v1/plugin.go at the commit of the README)
# generates the page rule unless page_alert.disable, the ticket rule unless
# ticket_alert.disable; none of its examples disables just one: the expected rules are
# its getting-started example's without the disabled one.


@pytest.mark.parametrize(("disabled", "kept"), [("ticket", "page"), ("page", "ticket")])
def test_an_slo_that_disables_one_alert_gets_only_the_other(disabled: str, kept: str) -> None:
    (slo,) = load("getting-started")
    if disabled == "page":
        alerting = dataclasses.replace(slo.alerting, page_enabled=False)
    else:
        alerting = dataclasses.replace(slo.alerting, ticket_enabled=False)
    one = dataclasses.replace(slo, alerting=alerting)
    sloth = sloths("getting-started")
    alerts = f"sloth-slo-alerts-{slo.id}"
    sloth[alerts]["rules"] = [r for r in sloth[alerts]["rules"] if r["labels"]["sloth_severity"] == kept]
    assert_same_as_sloth([one], sloth)
    (rule,) = slo_groups(one, RuleSettings())[alerts]
    assert rule["labels"]["sloth_severity"] == kept


@pytest.mark.parametrize(("disabled", "kept"), [("ticket", "page"), ("page", "ticket")])
def test_a_sloth_spec_that_disables_one_alert_generates_only_the_other(
    checkdir: CheckDir, disabled: str, kept: str
) -> None:
    spec = (SLOTH / "getting-started.yml").read_text()
    spec = spec.replace(f"      {disabled}_alert:\n", f"      {disabled}_alert:\n        disable: true\n")
    checkdir.write("checks/check_a.py", "def check_a():\n    pass\n")
    checkdir.write("sloth.yml", spec)
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\nslo: {files: [sloth.yml]}\n")
    result = checkdir.run("generate", "slo-rules")
    assert result.ret == 0, result.stderr
    groups = yaml.safe_load(Path(checkdir.path / "alerts/slo/myservice.rules.yml").read_text())["groups"]
    (alerts,) = [g for g in groups if g["name"] == "sloth-slo-alerts-myservice-requests-availability"]
    assert [r["labels"]["sloth_severity"] for r in alerts["rules"]] == [kept]


def test_sloths_getting_started_through_the_command(checkdir: CheckDir) -> None:
    """The user's path: the spec named in slo.files, ``generate slo-rules``, the file it writes."""
    checkdir.write("checks/check_a.py", "def check_a():\n    pass\n")
    checkdir.write("sloth.yml", (SLOTH / "getting-started.yml").read_text())
    checkdir.write("fraiseql-checks.yaml", "paths: [checks]\nslo: {files: [sloth.yml]}\n")
    result = checkdir.run("generate", "slo-rules")
    assert result.ret == 0, result.stderr
    document = yaml.safe_load((checkdir.path / "alerts/slo/myservice.rules.yml").read_text())
    mine = {group["name"]: group for group in document["groups"]}
    sloth = sloths("getting-started")
    assert set(mine) == set(sloth)
    (slo,) = load("getting-started")
    assert_recordings_match(slo.id, sloth, mine)
    assert_alerts_match(slo, sloth, mine)
