#!/usr/bin/env bash
# Installs Debian's Prometheus for the metrics tests (test/observability/): `prometheus`, which
# a test starts on a loopback ephemeral port to scrape a Ferry node, and `promtool`, which
# lints a scrape. Idempotent and non-interactive. The system service is never left running:
# the tests need only the binaries.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-prometheus: must run as root" >&2
  exit 1
fi

if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's postinst from starting the system service (port 9090): a policy-rc.d
  # that refuses every start, removed again afterwards unless the machine already had one.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  cleanup() { if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
  trap cleanup EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  cleanup
  own_policy=""

  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi

/usr/bin/prometheus --version 2>&1 | head -n 1 || true
echo "install-prometheus: /usr/bin/prometheus and /usr/bin/promtool ready"
