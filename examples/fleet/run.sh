#!/usr/bin/env bash
# A fleet on one machine: the quickstart's dev IdP and demo CRM, three behalf
# gateways sharing Redis (sessions, single-use state) and PostgreSQL (the audit
# trail), and nginx in front, round robin. Development only (dev IdP, demo data).
#
#   npm run build && examples/fleet/run.sh      # Ctrl-C stops everything
#
# Redis and PostgreSQL are the machine's own; override with BEHALF_REDIS_URL and
# BEHALF_PG_URL. Ports: nginx 8800, gateways 8801-8803, IdP 9400, CRM 9401.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUN="${BEHALF_FLEET_DIR:-$ROOT/.behalf-fleet}"
export BEHALF_REDIS_URL="${BEHALF_REDIS_URL:-redis://127.0.0.1:6379}"
PG_ADMIN="${BEHALF_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export BEHALF_PG_URL="${BEHALF_PG_URL:-postgres://postgres@127.0.0.1:5432/behalf_fleet}"

[ -f "$ROOT/dist/src/cli/main.js" ] || { echo "run 'npm run build' first" >&2; exit 1; }
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$NGINX" ] || { echo "nginx is not installed (Debian: apt-get install nginx)" >&2; exit 1; }

# The fleet's audit database, created once (its trail carries on across runs).
DB="${BEHALF_PG_URL##*/}"
if [ -z "$(psql "$PG_ADMIN" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
  psql "$PG_ADMIN" -qc "CREATE DATABASE $DB"
fi

rm -rf "$RUN" && mkdir -p "$RUN/nginx" && chmod 700 "$RUN"
PIDS=()
stop() {
  trap - INT TERM EXIT
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

node "$ROOT/dist/demo/fleet/backends-main.js" --dir "$RUN" --idp-port 9400 --crm-port 9401 \
  --public-url http://127.0.0.1:8800 >"$RUN/backends.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$RUN/users.json" ] && break; sleep 0.2; done
[ -s "$RUN/users.json" ] || { cat "$RUN/backends.log" >&2; exit 1; }

cp "$ROOT/examples/policy.yaml" "$RUN/policy.yaml"
for n in 1 2 3; do
  mkdir -p "$RUN/gw-$n"
  cp "$RUN/keys.json" "$RUN/gw-$n/keys.json"
  sed "s/^  port: 8801$/  port: 880$n/" "$HERE/gateway.yaml" >"$RUN/gw-$n/gateway.yaml"
  node "$ROOT/dist/src/cli/main.js" gateway --config "$RUN/gw-$n/gateway.yaml" --instance-id "gw-$n" \
    >"$RUN/gw-$n/out.log" 2>&1 &
  PIDS+=($!)
done
for n in 1 2 3; do
  for _ in $(seq 100); do grep -q 'listening on' "$RUN/gw-$n/out.log" && break; sleep 0.2; done
  grep -q 'listening on' "$RUN/gw-$n/out.log" || { cat "$RUN/gw-$n/out.log" >&2; exit 1; }
done

sed -e "s#@LISTEN@#127.0.0.1:8800#" -e "s#@GW1@#127.0.0.1:8801#" -e "s#@GW2@#127.0.0.1:8802#" \
  -e "s#@GW3@#127.0.0.1:8803#" -e "s#@DIR@#$RUN/nginx#g" "$HERE/nginx.conf.template" >"$RUN/nginx/nginx.conf"
"$NGINX" -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -g "daemon off; pid $RUN/nginx/nginx.pid;" &
PIDS+=($!)

cat <<INFO

behalf fleet is running (development only: dev IdP, demo data).

  MCP endpoint (nginx, round robin)  http://127.0.0.1:8800/mcp/crm
  gateways                            127.0.0.1:8801, :8802, :8803  (logs: $RUN/gw-N/out.log)
  headers for each user               $RUN/users.json  (alice, bob: reps; carol: manager)
  audit trail (PostgreSQL)            npx behalf audit verify --postgres env:BEHALF_PG_URL
                                      (BEHALF_PG_URL=$BEHALF_PG_URL)

Ctrl-C stops everything.
INFO
wait
