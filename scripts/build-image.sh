#!/usr/bin/env bash
# Builds the hostprint container image locally, without any registry: the static binary with cargo,
# then `podman build` from scratch (see Containerfile). Prints the image name as its last line.
#
#   scripts/build-image.sh                      # localhost/hostprint:<version from Cargo.toml>
#   IMAGE=registry.example.com/hostprint:0.1.0 scripts/build-image.sh
#
# The name without IMAGE is the one deploy/kubernetes/daemonset.yaml uses. Needs cargo, the Rust
# toolchain's static glibc (libc6-dev on Debian) and podman; podman reads CONTAINERS_CONF and the
# rest of its usual configuration, so a caller can choose the runtime (scripts/ci-container.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || { echo "build-image: no version in Cargo.toml" >&2; exit 1; }
image=${IMAGE:-localhost/hostprint:$version}
target=$(rustc -vV | sed -n 's/^host: //p')

# Static: the image has no libc to link against. hostprint makes no NSS lookups (no users, no hosts),
# the one part of glibc that does not work statically.
echo "build-image: cargo build --release --target $target (static)" >&2
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --quiet --target "$target"
binary=target/$target/release/hostprint

# Refuse a binary that would need a loader the image does not have.
if readelf -l "$binary" 2>/dev/null | grep -q 'Requesting program interpreter'; then
  echo "build-image: $binary is dynamically linked" >&2
  exit 1
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/hostprint"
cp Containerfile "$context/Containerfile"

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's time, not the clock's, so that the same commit gives the same labels.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

echo "build-image: podman build -t $image" >&2
podman build --quiet --layers=false --pull=never --network=none \
  --build-arg VERSION="$version" \
  --build-arg REVISION="$revision" \
  --build-arg CREATED="$created" \
  --tag "$image" \
  --file "$context/Containerfile" "$context" >&2
echo "$image"
