"""``TargetError``: a watched service could not be reached or answered wrongly.

Fixtures raise it for faults outside the check's code — connection refused, a name
that does not resolve, a TLS failure, a timeout, HTTP 5xx, a body that is not JSON,
wrong credentials, a missing table or extension. The runner reports it as one line
without a traceback (the traceback comes back with ``-v``): the message already
says which target failed and how.
"""

from __future__ import annotations


class TargetError(Exception):
    """A target (FraiseQL, PostgreSQL, Redis, Prometheus) failed; the message says which and how.

    Raised while a check runs, the check *fails* (the watched service is unhealthy);
    raised while a fixture is set up, the check is an *error*.
    """

    def __init__(self, message: str, *, target: str = "", unreachable: bool = False) -> None:
        super().__init__(message)
        #: Which kind of target: ``"fraiseql"``, ``"database"``, ``"cache"``, ``"prometheus"``, ``"http"``.
        self.target = target
        #: The target could not be reached at all (refused, unresolvable, timed out
        #: connecting, connection lost): it is down, not merely answering wrongly.
        #: Watch mode blames the failures of the checks that depend on it on it.
        self.unreachable = unreachable

    def retarget(self, target: str) -> TargetError:
        """The same fault, blamed on ``target``: a client built on the ``http`` client
        (FraiseQL, Prometheus) names its own target."""
        if self.target != "http":
            return self
        error = TargetError(str(self), target=target, unreachable=self.unreachable)
        error.__cause__ = self.__cause__
        return error


class TargetNotConfigured(TargetError):
    """A check needs a target that is not configured, and ``--require-targets`` is on.

    Always an *error*: the run is misconfigured, the target did not fail.
    """
