# syntax=docker/dockerfile:1
# The return service's image: its API and its workers (voluntary_return.entrypoints.consumer), chosen by the command.
# Build from the repository root (the context needs requirements.lock, openapi/, libs/, config/):
#  docker build -f docker/return.Dockerfile -t <registry>/thb/return:<version> .
# The chart (helm/) runs it as user 10001 with a read-only root filesystem; docs/deploy.md.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/thb
WORKDIR /src
# The one locked, hashed set of dependencies of every deployable.
COPY requirements.lock ./
RUN /opt/thb/bin/pip install --require-hashes -r requirements.lock
COPY openapi/ openapi/
COPY libs/plumbing/ libs/plumbing/
COPY services/return/ services/return/
RUN /opt/thb/bin/pip install --no-deps ./openapi ./libs/plumbing ./services/return

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 thb && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin thb
COPY --from=build /opt/thb /opt/thb
COPY config/ /app/config/
WORKDIR /app
ENV PATH=/opt/thb/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    THB_MODE=production THB_CONFIG=/app/config/platform.yaml
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "-c", "python:plumbing.gunicorn_conf", "voluntary_return.entrypoints.http:app"]
