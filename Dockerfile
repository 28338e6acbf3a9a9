# syntax=docker/dockerfile:1
# The watcher's image: the tool, your checks and your config; `fraiseql-check --watch` runs.
#
# Your pipeline builds it (no container engine runs on our machines; CI runs the install
# steps below in a clean virtual environment and starts the watcher from it), from the
# project folder holding checks/ and the config:
#
#   docker build -t registry.example.com/fraiseql-checks:1.0 .
#
# Here the tool is installed from this repository. In a project of your own, install it
# from PyPI instead: RUN /opt/venv/bin/pip install fraiseql-checks==<version>
# docs/kubernetes.md goes from this image to a watcher scraped by Prometheus.

# ---- build: a virtual environment holding the tool and what it needs ----
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY pyproject.toml README.md /src/
COPY fraiseql_checks /src/fraiseql_checks
COPY checks /src/checks
RUN /opt/venv/bin/pip install /src

# ---- the image: the environment, the checks and the config; no compiler, no pip cache ----
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The watcher runs as this user; the Kubernetes manifests name the same uid (runAsUser).
RUN groupadd --system --gid 10001 fraiseql \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home fraiseql
COPY --from=build /opt/venv /opt/venv
# The root directory: the config is here, so the SQLite store and the cache go to .fraiseql-checks/
# (an emptyDir in Kubernetes, where the root filesystem is read-only).
WORKDIR /app
RUN mkdir .fraiseql-checks && chown 10001:10001 .fraiseql-checks
# The config ([tool.fraiseql-checks]; or fraiseql-checks.yaml), the SLOs, the checks, and the
# rules and dashboards the metrics-contract check reads.
COPY pyproject.toml slos.yaml ./
COPY checks/ checks/
COPY alerts/ alerts/
COPY dashboards/ dashboards/
USER 10001:10001
EXPOSE 9470
STOPSIGNAL SIGTERM
ENTRYPOINT ["fraiseql-check", "--watch"]
CMD ["--listen", "0.0.0.0:9470"]
