"""Service level objectives: declared on checks or in files, computed, gated, compiled to rules.

``model`` says what an SLO is, ``load`` reads the definitions, ``compute`` turns
history into SLIs, budgets and burn rates, ``command`` is ``fraiseql-check slo``,
``rules`` generates the burn-rate rules and ``export`` gives watch mode its gauges.
"""
