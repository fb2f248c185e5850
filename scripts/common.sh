# Shared by the end-to-end scripts (sourced, not run): messages, installing Debian packages, a free
# loopback port. Not named ci-*.sh, so .ci/run does not run it on its own.

say() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
skip() { printf 'skipped: %s\n' "$*"; }

# apt_install PKG...: installs Debian packages without starting their daemons. Their postinst
# scripts would start them; a policy-rc.d that answers 101 ("not allowed") prevents that (Debian's
# documented way, invoke-rc.d(8)), and is removed again unless the machine already had one.
apt_install() {
  [ $# -gt 0 ] || return 0
  say "installing $*"
  (
    made=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      made=1
    fi
    trap '[ -z "$made" ] || rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@"
  )
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
