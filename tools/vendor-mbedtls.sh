#!/bin/sh
# make vendor-mbedtls TARBALL=path SHA256=hex: replaces vendor/mbedtls with
# the library sources of an mbedTLS release tarball whose sha256 is the
# one given, records both in vendor/mbedtls/VERSION, and rewrites the
# rockspec's list of vendored sources. Only what the library build needs
# is kept (sources, headers, the Everest and p256-m third-party code, the
# licence); tests, programs, scripts and docs are left out. Our own
# configuration (vendor/config/smtp_mbedtls_config.h) is not touched.
set -eu
cd "$(dirname "$0")/.."

tarball=${1:?usage: vendor-mbedtls.sh TARBALL SHA256}
want=${2:?usage: vendor-mbedtls.sh TARBALL SHA256}
got=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "vendor-mbedtls: $tarball has sha256 $got, not $want" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$tarball" -C "$tmp" --strip-components=1
src=$tmp
[ -f "$src/include/mbedtls/build_info.h" ] || { echo "vendor-mbedtls: not an mbedTLS 3.x source tarball" >&2; exit 1; }
version=$(sed -n 's/^#define MBEDTLS_VERSION_STRING *"\([0-9.]*\)".*/\1/p' "$src/include/mbedtls/build_info.h")

new=vendor/mbedtls.new
rm -rf "$new"
mkdir -p "$new/library" "$new/3rdparty"
cp "$src/LICENSE" "$new/"
cp -R "$src/include" "$new/include"
find "$new/include" -type f ! -name '*.h' -delete
cp "$src"/library/*.c "$src"/library/*.h "$new/library/"
for d in everest p256-m; do
  cp -R "$src/3rdparty/$d" "$new/3rdparty/$d"
  find "$new/3rdparty/$d" -type f ! -name '*.c' ! -name '*.h' ! -name 'README.md' -delete
done
printf 'mbedTLS %s\nfrom %s\nsha256 %s\n' "$version" "$(basename "$tarball")" "$want" >"$new/VERSION"
rm -rf vendor/mbedtls
mv "$new" vendor/mbedtls

# The rockspec lists the same sources as the Makefile (build_spec.lua).
list=$(make -s --no-print-directory print-mbedtls-srcs | tr ' ' '\n' | sed '/^$/d' \
       | sed 's/.*/        "&",/')
awk -v list="$list" '
  /-- vendored mbedTLS sources: begin/ { print; print list; skip = 1; next }
  /-- vendored mbedTLS sources: end/ { skip = 0 }
  !skip { print }' rockspec/lua-smtp-scm-1.rockspec >rockspec/lua-smtp-scm-1.rockspec.new
mv rockspec/lua-smtp-scm-1.rockspec.new rockspec/lua-smtp-scm-1.rockspec
echo "vendor-mbedtls: vendor/mbedtls is mbedTLS $version ($want)"
