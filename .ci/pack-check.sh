#!/usr/bin/env bash
# The package as a user installs it (issue 26): `npm pack` gives a tarball that installs into an
# empty folder, `npx ferry --help` lists the commands there, and `npx ferry serve` answers HTTP
# with the defaults. Run from the repository root after a build.
set -euo pipefail
root="$(pwd)"
work="$(mktemp -d)"
trap 'kill -- -"${serve_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
mkdir "$work/app"
cd "$work/app"
npm init -y >/dev/null
npm install --no-audit --no-fund --prefer-offline "$work/$tarball" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; echo "pack check: installing $tarball into an empty folder failed"; exit 1; }

help="$(npx --no-install ferry --help)"
for command in serve org user listen; do
  grep -q "^  $command" <<<"$help" || { echo "$help"; echo "pack check: 'ferry --help' does not list $command"; exit 1; }
done

port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
set -m
PORT="$port" npx --no-install ferry serve >"$work/serve.log" 2>&1 &
serve_pid=$!
set +m
for _ in $(seq 1 600); do
  if curl -s -o /dev/null "http://127.0.0.1:$port/elements/api-v2/elements"; then
    test -f data/credentials.json || { echo "pack check: the server did not write data/credentials.json"; exit 1; }
    echo "pack check: $tarball installs into an empty folder, 'ferry --help' lists its commands, 'ferry serve' answers on port $port"
    exit 0
  fi
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.2
done
cat "$work/serve.log"
echo "pack check: 'npx ferry serve' did not answer"
exit 1
