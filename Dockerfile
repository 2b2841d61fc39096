# blipee-monitor image: the wheel built in one stage and installed into a virtual environment
# (/opt/blipee-monitor), which is copied into a slim runtime in another.
#
#   docker build -t blipee-monitor .      (or: make image, with podman or buildah)
#   docker run -p 3000:3000 -p 9464:9464 -v monitor-data:/var/lib/blipee-monitor blipee-monitor
#
# Without a config file the packaged default runs (self check, the seed's five rules, a console
# channel). Mount your own as /etc/blipee-monitor/config.toml (it is picked up as ./config.toml).
#
# PYTHON_IMAGE is any Debian-based image with python3 and its venv module: the official
# python:3.11-slim-bookworm by default, or a local Debian bookworm base (scripts/build-image.sh
# makes one with mmdebstrap when no registry is reachable). Without PyPI, pip installs from a
# directory of wheels mounted at build time: PIP_NO_INDEX=1 and PIP_FIND_LINKS=<that directory>
# (see docs/deploy.md). The environment keeps the image free of Debian's system Python packages.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG PIP_NO_INDEX=0
ARG PIP_FIND_LINKS=
RUN python3 -m venv /opt/blipee-monitor
WORKDIR /src
COPY pyproject.toml README.md ./
COPY supervisor ./supervisor
COPY actors ./actors
RUN /opt/blipee-monitor/bin/pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels . \
 && /opt/blipee-monitor/bin/pip install --no-cache-dir --disable-pip-version-check --no-index /wheels/*.whl

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --home-dir /var/lib/blipee-monitor --shell /usr/sbin/nologin monitor \
 && mkdir -p /etc/blipee-monitor /var/lib/blipee-monitor \
 && chown monitor /var/lib/blipee-monitor
COPY --from=build /opt/blipee-monitor /opt/blipee-monitor
ENV PATH=/opt/blipee-monitor/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BLIPEE_MONITOR_DB=/var/lib/blipee-monitor/monitor.db \
    BLIPEE_LOG_FORMAT=json
WORKDIR /etc/blipee-monitor
VOLUME ["/etc/blipee-monitor", "/var/lib/blipee-monitor"]
USER 10001
EXPOSE 3000 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["/opt/blipee-monitor/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/api/health/live', timeout=5)"]
ENTRYPOINT ["/opt/blipee-monitor/bin/blipee-monitor"]
CMD ["run"]
