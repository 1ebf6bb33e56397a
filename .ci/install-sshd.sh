#!/usr/bin/env bash
# Installs Debian's OpenSSH server for the SFTP element's tests (test/helpers/sshd.ts), which
# start their own sshd on a loopback ephemeral port. Idempotent and non-interactive. The
# system sshd on port 22 is never left running: the tests need only the binary.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-sshd: must run as root" >&2
  exit 1
fi

if [ ! -x /usr/sbin/sshd ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's postinst from starting the system service: a policy-rc.d that refuses
  # every start, removed again afterwards unless the machine already had one.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  cleanup() { if [ -n "$own_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; }
  trap cleanup EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
  cleanup
  own_policy=""

  # Should a system sshd have been started all the same (systemd socket activation), stop it
  # and keep it from coming back: the tests never use port 22.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
  fi
  if [ -f /run/sshd.pid ]; then
    kill "$(cat /run/sshd.pid)" 2>/dev/null || true
    rm -f /run/sshd.pid
  fi
fi

# sshd refuses to start without its privilege-separation directory (/run is a tmpfs, so this
# is needed after every boot, not only after the install).
mkdir -p /run/sshd
chmod 755 /run/sshd

/usr/sbin/sshd -V 2>&1 | head -n 1 || true
echo "install-sshd: /usr/sbin/sshd ready"
