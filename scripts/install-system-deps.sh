#!/usr/bin/env bash
# Installs the Debian packages that the tests and benchmarks use as real peers (and the headless
# browser that renders the status page, and Node.js with npm, which run the OpenTelemetry
# JavaScript SDK against the monitor), only those whose binary is missing: a machine that already
# has Node.js from another source (whose nodejs package conflicts with Debian's npm) keeps it.
# Services are not started by the packages (policy-rc.d denies it): every test starts its own
# server on a free 127.0.0.1 port.
set -euo pipefail
# binary:package
need=(
  promtool:prometheus
  prometheus:prometheus
  prometheus-alertmanager:prometheus-alertmanager
  prometheus-blackbox-exporter:prometheus-blackbox-exporter
  nginx:nginx
  wrk:wrk
  chromium:chromium
  node:nodejs
  npm:npm
)
packages=()
for pair in "${need[@]}"; do
  b=${pair%%:*} p=${pair#*:}
  if ! command -v "$b" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$b" ]; then
    case " ${packages[*]-} " in *" $p "*) ;; *) packages+=("$p") ;; esac
  fi
done
[ "${#packages[@]}" = 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-system-deps: missing Debian packages and not root; run as root:" >&2
  echo "  apt-get install ${packages[*]}" >&2
  exit 1
fi
policy=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created=1
fi
trap '[ "$created" = 1 ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
echo "install-system-deps: installing ${packages[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
