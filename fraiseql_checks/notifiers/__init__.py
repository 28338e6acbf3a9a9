"""The built-in notifier types, one module each: ``slack``, ``email``, ``pagerduty``,
``webhook``, ``apprise``. Each is a plugin that registers its ``Notifier`` subclass
(``fraiseql_checks.notify.notifier``) in ``fraiseql_add_notifiers``."""
