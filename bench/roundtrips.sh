#!/usr/bin/env bash
# Requests, connections and sequential round trips per scenario, counted by
# bench/rtproxy.py between wso2img and a loopback docker-registry (the
# figures of docs/performance.md). Base and destination are one registry
# host; the customization is bench-fixture's default (about 110 MB on a
# 700 MB base).
#
#   cold        first push, no digest cache
#   warm        no change, warm digest cache
#   fresh       no change, no digest cache (a fresh CI runner)
#   fresh-jar   one jar removed, no digest cache
#
# Usage (Debian, docker-registry and skopeo installed):
#   bench/roundtrips.sh BIN FIXTURE [DELAY_MS]
# DELAY_MS (default 0) is added to every chunk each way; with it, the wall
# time shows what each round trip costs.
set -euo pipefail
bin=$1 fixture=$2 delay=${3:-0}
here=$(cd "$(dirname "$0")" && pwd)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d "${WORK:-/var/lib}/wso2img-rt.XXXXXX")
rport=$(free_port) pport=$(free_port)
reg="127.0.0.1:$rport" px="127.0.0.1:$pport"
cat >"$work/registry.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $work/registry } }
http: { addr: $reg }
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
python3 "$here/rtproxy.py" "$pport" "$reg" "$work/seen.json" "$delay" &
px_pid=$!
trap 'kill $px_pid $reg_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "http://$reg/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
"$fixture" "$work/c" "$px/wso2/base:4.3.0" --base-layout "$work/lbase" >/dev/null 2>&1
skopeo copy -q --dest-tls-verify=false "oci:$work/lbase:4.3.0" "docker://$reg/wso2/base:4.3.0"
cd "$work/c"
kill -USR1 $px_pid; sleep 0.3
run() {
  local name=$1 cache=$2
  local t0 t1
  t0=$(date +%s.%N)
  XDG_CACHE_HOME="$cache" "$bin" -q build --json --to "docker://$px/acme/apim:v1" >/dev/null
  t1=$(date +%s.%N)
  kill -USR1 $px_pid; sleep 0.3
  python3 - "$work/seen.json" "$name" "$t0" "$t1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
r = sorted(s["requests"], key=lambda q: q["sent"])
depth = []
for i, q in enumerate(r):
    depth.append(1 + max([depth[j] for j in range(i) if r[j]["answered"] <= q["sent"]], default=0))
seq = max(depth, default=0) + min(s["tls_probes"], 1)
before = next((i for i, q in enumerate(r) if "/blobs/" in q["path"]), len(r))
print(f"{sys.argv[2]:10} requests {len(r):4}  sequential {seq:3}  before-first-blob {before:3}  "
      f"connections {s['connections']:3} (TLS probes {s['tls_probes']})  wall {float(sys.argv[4]) - float(sys.argv[3]):6.2f} s")
PY
}
run cold "$work/cache-a"
run warm "$work/cache-a"
run fresh "$work/cache-b"
rm -f "$(ls jars/*.jar | head -1)"
run fresh-jar "$work/cache-c"
