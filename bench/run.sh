#!/usr/bin/env bash
# Benchmark: wso2img against `docker build` + `docker push` on the same
# customization, in one run per size:
#
#  small: a 110 MB customization of a ~700 MB WSO2-like base (legacy builder
#         and BuildKit): cold (fresh runner), no change (rerun), one jar changed.
#  large: a 1.2 GB customization (200 jars of 5 MB, 50,000 theme files) of a
#         small 4.3-shaped base, against BuildKit: cold, no change on a fresh
#         runner (no file-digest cache) and on a warm one, one jar changed, an
#         unchanged rebuild into an OCI layout, and the registry's own ingest
#         time for the bytes wso2img uploaded (one plain PUT), with the targets
#         of issue 12 as ratios. The sub-second rows (no change, both sides,
#         and the layout rebuild) are the median of REPEAT runs each, taken
#         round by round (BuildKit, fresh, warm, layout) so that the VM's
#         drifting speed weighs on every row alike.
#
# Prints each time, the ratios, wso2img's peak memory and the bytes it
# uploaded. Run as root on Debian: bench/run.sh [small|large|all] (default all)
set -euo pipefail
which=${1:-all}
case "$which" in small | large | all) ;; *) echo "usage: bench/run.sh [small|large|all]" >&2; exit 2 ;; esac
cd "$(dirname "$0")/.."
root=$(pwd)

for p in docker.io docker-registry skopeo curl time; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-registry skopeo curl time >/dev/null
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

now() { date +%s.%N; }
REPEAT=7 # runs per sub-second row (large: no change, layout rebuild); the median counts
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
wso2img_run() { # key [wso2img args...]: times one build, keeps its peak RSS, uploaded bytes and status
  local key=$1 t0 out; shift
  t0=$(now)
  out=$(/usr/bin/time -f '%M' -o "$work/rss" "$W" -q build --json "$@")
  T[wso2img_$key]=$(sub "$(now)" "$t0")
  T[wso2img_rss_$key]=$(tail -1 "$work/rss")
  T[wso2img_up_$key]=$(echo "$out" | sed -n 's/.*"uploaded_bytes": \([0-9]*\).*/\1/p')
  T[wso2img_status_$key]=$(echo "$out" | sed -n 's/.*"status": "\([a-z-]*\)".*/\1/p' | head -1)
  echo "$out" >"$work/last.json"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
declare -A SAMPLES
wso2img_sample() { # key [wso2img args...]: one more run of a row whose median counts (wso2img_settle), keeping its highest peak RSS
  local key=$1 rss=${T[wso2img_rss_$1]:-0}; shift
  wso2img_run "$key" "$@"
  SAMPLES[$key]="${SAMPLES[$key]:-} ${T[wso2img_$key]}"
  if [ "$rss" -gt "${T[wso2img_rss_$key]}" ]; then T[wso2img_rss_$key]=$rss; fi
}
wso2img_settle() { T[wso2img_$1]=$(printf '%s\n' ${SAMPLES[$1]} | median); }
dockerfile() { # base-ref: the four COPY steps every peer builds
  local home=/home/wso2carbon/wso2am-4.3.0
  cat >Dockerfile <<DF
FROM $1
COPY --chown=10001:10001 jars/ $home/repository/components/lib/
COPY --chown=10001:10001 themes/devportal/ $home/repository/deployment/server/webapps/devportal/site/public/theme/
COPY --chown=10001:10001 keystores/ $home/repository/resources/security/
COPY --chown=10001:10001 overlays/ $home/
DF
  printf 'Dockerfile\n' >.dockerignore
}

small() {
  echo "== small: fixture"
  "$root/target/release/examples/bench-fixture" "$work/ctx" "$reg/wso2/wso2am:4.3.0" --base-layout "$work/base"
  skopeo copy -q --dest-tls-verify=false "oci:$work/base:4.3.0" "docker://$reg/wso2/wso2am:4.3.0"
  sed -i "s#^repository = .*#repository = \"$reg/acme/wso2img\"#" "$work/ctx/wso2img.toml"
  cd "$work/ctx"
  dockerfile "$reg/wso2/wso2am:4.3.0"
  export XDG_CACHE_HOME="$work/cache-small"

  change_jar() { # rewrite one byte inside a jar's stored entry: still a valid jar
    printf 'X' | dd of="$work/ctx/jars/lib-small-000-1.0.0.jar" bs=1 seek=200 conv=notrunc status=none
  }

  echo "== cold (nothing local; base only in the registry)"
  fresh_docker; T[legacy_cold]=$(docker_run legacy 0 v1)
  fresh_docker; T[buildkit_cold]=$(docker_run buildkit 1 v1)
  wso2img_run cold --push
  echo "== no change (rerun)"
  T[legacy_nochange]=$(docker_run legacy 0 v1)
  T[buildkit_nochange]=$(docker_run buildkit 1 v1)
  wso2img_run nochange --push
  echo "== one jar changed"
  change_jar 1
  T[legacy_onejar]=$(docker_run legacy 0 v2)
  T[buildkit_onejar]=$(docker_run buildkit 1 v2)
  wso2img_run onejar --push

  printf '\n%-12s %10s %10s %10s %9s %9s %10s %12s %s\n' scenario legacy buildkit wso2img "vs best" "" "peak RSS" uploaded status
  for s in cold nochange onejar; do
    l=${T[legacy_$s]}; b=${T[buildkit_$s]}; w=${T[wso2img_$s]}
    ratio=$(awk -v l="$l" -v b="$b" -v w="$w" 'BEGIN { m = (l < b) ? l : b; printf "%.1f", m / w }')
    printf '%-12s %9.2fs %9.2fs %9.3fs %8sx %9s %8d kB %12s %s\n' "$s" "$l" "$b" "$w" "$ratio" "" \
      "${T[wso2img_rss_$s]}" "${T[wso2img_up_$s]:-0}" "${T[wso2img_status_$s]}"
  done
}

# The registry's own ingest time for the bytes of the given blobs: one plain
# monolithic PUT of their concatenation into a second, empty registry.
ingest_time() { # blob-digest...
  local port2 reg2 pid2 data t0 loc d
  port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  reg2="127.0.0.1:$port2"
  sed -e "s#rootdirectory: $work/registry#rootdirectory: $work/registry2#" -e "s#addr: $reg#addr: $reg2#" \
    "$work/registry.yml" >"$work/registry2.yml"
  docker-registry serve "$work/registry2.yml" >"$work/registry2.log" 2>&1 &
  pid2=$!
  for _ in $(seq 1 100); do curl -fs "http://$reg2/v2/" >/dev/null && break; sleep 0.1; done
  data="$work/ingest.bin"
  : >"$data"
  for d in "$@"; do
    cat "$work/registry/docker/registry/v2/blobs/sha256/${d:7:2}/${d:7}/data" >>"$data"
  done
  d="sha256:$(sha256sum "$data" | cut -d' ' -f1)"
  sync
  t0=$(now)
  loc=$(curl -fsS -X POST -D - -o /dev/null "http://$reg2/v2/ingest/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case "$loc" in http*) ;; *) loc="http://$reg2$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' -T "$data" "$loc" -o /dev/null
  sub "$(now)" "$t0"
  kill "$pid2" 2>/dev/null; wait "$pid2" 2>/dev/null || true
  rm -rf "$work/registry2" "$data"
}

large() {
  echo "== large: fixture (1.2 GB customization, small base)"
  "$root/target/release/examples/bench-fixture" "$work/large" "$reg/wso2/small:4.3.0" --base-layout "$work/lbase" --large
  skopeo copy -q --dest-tls-verify=false "oci:$work/lbase:4.3.0" "docker://$reg/wso2/small:4.3.0"
  sed -i "s#^repository = .*#repository = \"$reg/acme/large\"#" "$work/large/wso2img.toml"
  cd "$work/large"
  dockerfile "$reg/wso2/small:4.3.0"
  local jar_bytes
  jar_bytes=$(du -sb jars | cut -f1)

  echo "== large: cold (nothing local; base only in the registry)"
  # Each cold row and the ingest start with nothing left to write back.
  fresh_docker; sync; T[bk_cold]=$(docker_run bk-large 1 v1)
  sync; XDG_CACHE_HOME="$work/cache-warm" wso2img_run lcold --push
  mapfile -t blobs < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); [print(l["digest"]) for l in r["layers"]]' "$work/last.json")
  T[ingest]=$(ingest_time "${blobs[@]}")
  T[ingest_bytes]=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(l["size"] for l in r["layers"]))' "$work/last.json")
  echo "== large: first write into an OCI layout"
  XDG_CACHE_HOME="$work/cache-warm" wso2img_run llayout1 --to "oci:$work/llayout"
  sync # the first write's 1.1 GB is on disk before anything is timed
  echo "== large: no change and unchanged layout rebuild ($REPEAT rounds, each row the median)"
  # Round by round, so that the VM's drifting speed weighs on every row alike.
  local bk=() i
  for i in $(seq 1 "$REPEAT"); do
    bk+=("$(docker_run bk-large 1 v1)")
    rm -rf "$work/cache-fresh"
    XDG_CACHE_HOME="$work/cache-fresh" wso2img_sample lfresh --push
    XDG_CACHE_HOME="$work/cache-warm" wso2img_sample lwarm --push
    XDG_CACHE_HOME="$work/cache-warm" wso2img_sample llayout2 --to "oci:$work/llayout"
  done
  T[bk_nochange]=$(printf '%s\n' "${bk[@]}" | median)
  for k in lfresh lwarm llayout2; do wso2img_settle "$k"; done
  echo "== large: one jar changed"
  printf 'X' | dd of="$work/large/jars/acme-module000-1.0.0.jar" bs=1 seek=4096 conv=notrunc status=none
  T[bk_onejar]=$(docker_run bk-large 1 v2)
  XDG_CACHE_HOME="$work/cache-warm" wso2img_run lonejar --push

  local b
  printf '\n%-34s %10s %10s %10s %12s %13s %s\n' "large scenario" buildkit wso2img ratio "peak RSS" uploaded status
  row() { # label key buildkit-time
    local w=${T[wso2img_$2]} r="-"
    [ "$3" = "-" ] || r=$(awk -v b="$3" -v w="$w" 'BEGIN { printf "%.1fx", b / w }')
    printf '%-34s %10s %9.3fs %10s %9d kB %13s %s\n' "$1" "$3" "$w" "$r" "${T[wso2img_rss_$2]}" \
      "${T[wso2img_up_$2]:-0}" "${T[wso2img_status_$2]}"
  }
  row "cold push" lcold "${T[bk_cold]}"
  row "no change, fresh runner" lfresh "${T[bk_nochange]}"
  row "no change, warm cache" lwarm "${T[bk_nochange]}"
  row "one 5 MB jar changed" lonejar "${T[bk_onejar]}"
  row "unchanged rebuild into OCI layout" llayout2 -
  printf '%-34s %10s %9.3fs %10s %12s %13s\n' "registry ingest, one plain PUT" - "${T[ingest]}" - - "${T[ingest_bytes]}"

  echo
  echo "targets (issue 12), from this run:"
  check() { # description value op limit
    awk -v v="$2" -v l="$4" -v op="$3" -v d="$1" 'BEGIN {
      ok = (op == ">=") ? (v >= l) : (v <= l)
      printf "  %-58s %8.3f %s %-6s %s\n", d, v, op, l, ok ? "ok" : "MISSED" }'
  }
  b=${T[bk_cold]}
  check "cold: BuildKit / wso2img" "$(awk -v b="$b" -v w="${T[wso2img_lcold]}" 'BEGIN { print b / w }')" ">=" 6
  check "cold: wso2img / registry ingest of the same bytes" \
    "$(awk -v i="${T[ingest]}" -v w="${T[wso2img_lcold]}" 'BEGIN { print w / i }')" "<=" 1.3
  b=${T[bk_nochange]}
  check "no change, fresh runner: wso2img / BuildKit warm" "$(awk -v b="$b" -v w="${T[wso2img_lfresh]}" 'BEGIN { print w / b }')" "<=" 0.5
  check "no change, warm cache: wso2img / BuildKit warm" "$(awk -v b="$b" -v w="${T[wso2img_lwarm]}" 'BEGIN { print w / b }')" "<=" 0.1
  check "one jar changed: BuildKit / wso2img" "$(awk -v b="${T[bk_onejar]}" -v w="${T[wso2img_lonejar]}" 'BEGIN { print b / w }')" ">=" 30
  check "one jar changed: uploaded / jar bytes" "$(awk -v u="${T[wso2img_up_lonejar]:-0}" -v j="$jar_bytes" 'BEGIN { print u / j }')" "<=" 0.25
  check "OCI layout rebuild / no change (warm cache)" \
    "$(awk -v a="${T[wso2img_llayout2]}" -v w="${T[wso2img_lwarm]}" 'BEGIN { print a / w }')" "<=" 1.2
  local peak=0 k
  for k in lcold lfresh lwarm lonejar llayout1 llayout2; do
    [ "${T[wso2img_rss_$k]}" -gt "$peak" ] && peak=${T[wso2img_rss_$k]}
  done
  check "peak memory of any wso2img run (MB)" "$(awk -v p="$peak" 'BEGIN { print p / 1024 }')" "<=" 100
}

case "$which" in
  small) small ;;
  large) large ;;
  all) small; large ;;
esac
