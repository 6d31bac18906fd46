#!/bin/sh
# Installs the Debian packages that building, testing and the demo need.
# Idempotent: packages already present are not fetched again.
set -eu

PACKAGES="
build-essential clang pkg-config make git
libclang-rt-14-dev valgrind
lua5.4 liblua5.4-dev luarocks lua-busted lua-check
libmbedtls-dev libgsasl-dev libidn2-dev libidn2-0
python3 python3-aiosmtpd python3-dkim python3-openssl
postfix openssl
dovecot-core dovecot-lmtpd
dante-server tinyproxy
lua5.1 liblua5.1-0-dev lua5.3 liblua5.3-dev luajit2 libluajit2-5.1-dev lua-socket lua-dkjson
nginx libnginx-mod-http-lua lua-resty-core lua-resty-lrucache
lua-ldoc lua-discount util-linux
lua-cqueues lua-luv lua-copas tarantool prosody iproute2 haproxy
"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
  else
    SUDO=
  fi
  # Postfix asks for a mail setup during install; the tests run private
  # instances, so the system one stays unconfigured.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  export DEBIAN_FRONTEND=noninteractive
  # The suite runs private instances of Postfix, Dovecot, Dante and
  # tinyproxy; keep the packages' system services from starting (and a
  # service that cannot start from failing the install).
  policy=/usr/sbin/policy-rc.d
  own_policy=no
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    own_policy=yes
  fi
  status=0
  $SUDO apt-get update -qq || status=$?
  # shellcheck disable=SC2086
  [ "$status" -ne 0 ] || $SUDO apt-get install -y -qq --no-install-recommends $missing || status=$?
  if [ "$own_policy" = yes ]; then $SUDO rm -f "$policy"; fi
  [ "$status" -eq 0 ] || exit "$status"
fi
# `make test` runs busted under every Lua: Debian's lua-busted and its
# dependencies (lua-system, lua-term, penlight, ...) ship modules for 5.1
# (also LuaJIT's path), 5.3 and 5.4; check that each interpreter finds them.
for l in lua5.4 lua5.3 lua5.1 luajit; do
  if ! "$l" -e 'require "busted.runner"; require "system"; require "term"; require "socket"; require "dkjson"' \
      >/dev/null 2>&1; then
    echo "deps: busted or its modules do not load under $l" >&2
    exit 1
  fi
done
echo "deps: all packages present"
