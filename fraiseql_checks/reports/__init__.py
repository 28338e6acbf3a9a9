"""What a one-shot run reports: the terminal, JUnit XML and the JSON report, each a plugin."""
