#!/usr/bin/env bash
# Benchmark: wso2img against `docker build` + `docker push` (legacy builder and
# BuildKit) on the same customization of a ~700 MB WSO2-like base held in a
# local registry, in three scenarios: cold (fresh runner), no change (rerun),
# one jar changed. Prints each time, the ratios, wso2img's peak memory and the
# bytes it uploaded. Run as root on Debian: bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

for p in docker.io docker-registry skopeo; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-registry skopeo >/dev/null
    break
  }
done
cargo build --release --quiet --bin wso2img --example bench-fixture
W="$root/target/release/wso2img"
DOCKER=/usr/bin/docker   # Debian's 20.10 client: has BuildKit (DOCKER_BUILDKIT=1)

work=$(mktemp -d /var/lib/wso2img-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 5055)
reg="127.0.0.1:$port"
cat >"$work/registry.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $work/registry }, delete: { enabled: true } }
http: { addr: $reg }
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
export DOCKER_HOST="unix://$work/docker.sock"
dockerd --bridge=none --iptables=false --ip-masq=false --host "$DOCKER_HOST" \
  --data-root "$work/docker" --exec-root "$work/exec" --pidfile "$work/docker.pid" >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
cleanup() {
  kill "$dockerd_pid" "$reg_pid" 2>/dev/null || true
  wait "$dockerd_pid" "$reg_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 120); do $DOCKER info >/dev/null 2>&1 && break; sleep 0.5; done

echo "== fixture"
"$root/target/release/examples/bench-fixture" "$work/ctx" "$reg/wso2/wso2am:4.3.0" --base-layout "$work/base"
skopeo copy -q --dest-tls-verify=false "oci:$work/base:4.3.0" "docker://$reg/wso2/wso2am:4.3.0"
home=/home/wso2carbon/wso2am-4.3.0
cat >"$work/ctx/Dockerfile" <<DF
FROM $reg/wso2/wso2am:4.3.0
COPY --chown=10001:10001 jars/ $home/repository/components/lib/
COPY --chown=10001:10001 themes/devportal/ $home/repository/deployment/server/webapps/devportal/site/public/theme/
COPY --chown=10001:10001 keystores/ $home/repository/resources/security/
COPY --chown=10001:10001 overlays/ $home/
DF
printf 'Dockerfile\n' >"$work/ctx/.dockerignore"
sed -i "s#^repository = .*#repository = \"$reg/acme/wso2img\"#" "$work/ctx/wso2img.toml"
cd "$work/ctx"

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
declare -A T
fresh_docker() {
  $DOCKER image ls -q | sort -u | xargs -r $DOCKER rmi -f >/dev/null 2>&1 || true
  DOCKER_BUILDKIT=1 $DOCKER builder prune -af >/dev/null 2>&1 || true
}
docker_run() { # name buildkit tag
  local t0; t0=$(now)
  DOCKER_BUILDKIT=$2 $DOCKER build -q -t "$reg/acme/$1:$3" . >/dev/null
  $DOCKER push -q "$reg/acme/$1:$3" >/dev/null
  sub "$(now)" "$t0"
}
wso2img_run() { # scenario
  local t0 out; t0=$(now)
  out=$(/usr/bin/time -f '%M' -o "$work/rss" "$W" -q build --push --json)
  T[wso2img_$1]=$(sub "$(now)" "$t0")
  T[wso2img_rss_$1]=$(cat "$work/rss")
  T[wso2img_up_$1]=$(echo "$out" | sed -n 's/.*"uploaded_bytes": \([0-9]*\).*/\1/p')
  T[wso2img_status_$1]=$(echo "$out" | sed -n 's/.*"status": "\([a-z-]*\)".*/\1/p' | head -1)
}
change_jar() { # rewrite one byte inside a jar's stored entry: still a valid jar
  printf 'X' | dd of="$work/ctx/jars/lib-small-000-1.0.0.jar" bs=1 seek=200 conv=notrunc status=none
}

echo "== cold (nothing local; base only in the registry)"
fresh_docker; T[legacy_cold]=$(docker_run legacy 0 v1)
fresh_docker; T[buildkit_cold]=$(docker_run buildkit 1 v1)
wso2img_run cold
echo "== no change (rerun)"
T[legacy_nochange]=$(docker_run legacy 0 v1)
T[buildkit_nochange]=$(docker_run buildkit 1 v1)
wso2img_run nochange
echo "== one jar changed"
change_jar 1
T[legacy_onejar]=$(docker_run legacy 0 v2)
T[buildkit_onejar]=$(docker_run buildkit 1 v2)
wso2img_run onejar

printf '\n%-12s %10s %10s %10s %9s %9s %10s %12s %s\n' scenario legacy buildkit wso2img "vs best" "" "peak RSS" uploaded status
for s in cold nochange onejar; do
  l=${T[legacy_$s]}; b=${T[buildkit_$s]}; w=${T[wso2img_$s]}
  ratio=$(awk -v l="$l" -v b="$b" -v w="$w" 'BEGIN { m = (l < b) ? l : b; printf "%.1f", m / w }')
  printf '%-12s %9.2fs %9.2fs %9.3fs %8sx %9s %8d kB %12s %s\n' "$s" "$l" "$b" "$w" "$ratio" "" \
    "${T[wso2img_rss_$s]}" "${T[wso2img_up_$s]:-0}" "${T[wso2img_status_$s]}"
done
