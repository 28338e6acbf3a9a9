"""The shop's storefront, watched every minute: its check SLO is the share of time it passed."""

from fraiseql_checks import check


@check(interval="1m", slo="99.9% / 30d")
def check_storefront_answers() -> None:
    """The storefront answers its home page."""
