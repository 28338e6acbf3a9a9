"""Kubernetes: ``fraiseql-check generate kubernetes`` writes a kustomize base of the watcher and its artefacts."""
