"""``python -m fraiseql_checks`` runs ``fraiseql-check``."""

from fraiseql_checks.cli import console_main

console_main()
