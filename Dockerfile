# blipee-monitor image: the wheel built in one stage, installed into a slim runtime in another.
#
#   docker build -t blipee-monitor .      (or: make image, with podman or buildah)
#   docker run -p 3000:3000 -p 9464:9464 -v monitor-data:/var/lib/blipee-monitor blipee-monitor
#
# Without a config file the packaged default runs (self check, the seed's five rules, a console
# channel). Mount your own as /etc/blipee-monitor/config.toml (it is picked up as ./config.toml).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY supervisor ./supervisor
COPY actors ./actors
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --home-dir /var/lib/blipee-monitor --shell /usr/sbin/nologin monitor \
 && mkdir -p /etc/blipee-monitor /var/lib/blipee-monitor \
 && chown monitor /var/lib/blipee-monitor
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BLIPEE_MONITOR_DB=/var/lib/blipee-monitor/monitor.db \
    BLIPEE_LOG_FORMAT=json
WORKDIR /etc/blipee-monitor
VOLUME ["/etc/blipee-monitor", "/var/lib/blipee-monitor"]
USER 10001
EXPOSE 3000 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/api/health/live', timeout=5)"]
ENTRYPOINT ["blipee-monitor"]
CMD ["run"]
