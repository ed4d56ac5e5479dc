# syntax=docker/dockerfile:1
# The gateway's image.
# Build from the repository root (the context needs requirements.lock, openapi/, libs/, config/):
#  docker build -f docker/gateway.Dockerfile -t <registry>/thb/gateway:<version> .
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
COPY gateway/ gateway/
RUN /opt/thb/bin/pip install --no-deps ./openapi ./libs/plumbing ./gateway

FROM ${PYTHON_IMAGE}
RUN groupadd --gid 10001 thb && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin thb
COPY --from=build /opt/thb /opt/thb
COPY config/ /app/config/
WORKDIR /app
ENV PATH=/opt/thb/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    THB_MODE=production THB_CONFIG=/app/config/platform.yaml
USER 10001:10001
EXPOSE 8080
CMD ["python", "-m", "gateway", "--host", "0.0.0.0"]
