#!/bin/sh
# Regenerates the sample entrypoint's bytes (x86_64.bin, aarch64.bin) from
# x86_64.S and aarch64.S with Debian's binutils: `binutils` for amd64 and
# `binutils-aarch64-linux-gnu` for arm64. Each .S is a whole ELF image, so the
# .text section copied out by objcopy is the program; no linker runs.
# Usage: build.sh [OUT_DIR]   (default: this folder)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
as --64 -o "$tmp/x86_64.o" "$here/x86_64.S"
objcopy -O binary -j .text "$tmp/x86_64.o" "$out/x86_64.bin"
aarch64-linux-gnu-as -o "$tmp/aarch64.o" "$here/aarch64.S"
aarch64-linux-gnu-objcopy -O binary -j .text "$tmp/aarch64.o" "$out/aarch64.bin"
