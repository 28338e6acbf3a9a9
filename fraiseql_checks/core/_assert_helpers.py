"""What rewritten asserts call, loaded from pytest when a failing assert first asks.

pytest's rewriter makes each module import ``_pytest.assertion.rewrite`` for the
helpers that build a failing assert's message. That import brings pytest's whole
configuration machinery (~90 ms of every start) and a passing assert uses none of
it, so ``_pytest_compat.rewrite_module`` points the import here instead, and any
helper asked for is taken from pytest's module at that moment. Nothing but
``explain``, ``__getattr__`` and ``_Any`` may be defined here: every
other name is pytest's.
"""

from typing import Any as _Any

#: The comparison explainer of the run under way (``explain_comparisons``), to hand
#: to pytest's assertion code when the first failing assert loads it.
explain: _Any = None


def __getattr__(name: str) -> _Any:
    if name.startswith("__"):  # the import system's own questions (__path__, __file__ ...)
        raise AttributeError(name)
    from _pytest.assertion import rewrite, util

    if explain is not None and util._reprcompare is None:
        util._reprcompare = explain
    return getattr(rewrite, name)
