#!/usr/bin/env bash
# Installs the Debian packages that the tests and benchmarks use as real peers (and the headless
# browser that renders the status page, and Node.js with npm, which run the OpenTelemetry
# JavaScript SDK against the monitor), only when one of their binaries is missing. Services
# are not started by the packages (policy-rc.d denies it): every test starts its own server on a
# free 127.0.0.1 port.
set -euo pipefail
need=(promtool prometheus prometheus-alertmanager prometheus-blackbox-exporter nginx wrk chromium node npm)
missing=0
for b in "${need[@]}"; do
  if ! command -v "$b" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$b" ]; then missing=1; fi
done
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: missing Debian packages and not root; run as root:" >&2
  echo "  apt-get install prometheus prometheus-alertmanager prometheus-blackbox-exporter nginx wrk chromium nodejs npm" >&2
  exit 1
fi
policy=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created=1
fi
trap '[ "$created" = 1 ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  prometheus prometheus-alertmanager prometheus-blackbox-exporter nginx wrk chromium nodejs npm \
  >/dev/null
