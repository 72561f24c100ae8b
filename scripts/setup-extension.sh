#!/usr/bin/env bash
# Builds and installs a PostgreSQL extension from its unmodified source archive, as root,
# where it is not installed yet. Nothing of the extension's code enters this repository:
# the archive is unpacked into a temporary folder and removed afterwards.
#
#   npm run setup:timescaledb -- path/to/timescaledb-2.28.3.tar.gz
#   npm run setup:citus -- path/to/citus-13.2.2.tar.gz
#
# Debian's build dependencies are installed with apt-get when missing. Prints what it did;
# exits 0 when the extension is (now) installed.
set -euo pipefail

name="${1:?usage: setup-extension.sh timescaledb|citus <archive.tar.gz>}"
archive="${2:?usage: setup-extension.sh $name <archive.tar.gz> (a source archive of a release)}"
force="${FORCE:-}"

pg_config="${PG_CONFIG:-}"
if [ -z "$pg_config" ]; then
  # The newest installed server's pg_config (the one the local cluster uses).
  major="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 || true)"
  [ -n "$major" ] || { echo "setup-extension: no PostgreSQL server under /usr/lib/postgresql" >&2; exit 1; }
  pg_config="/usr/lib/postgresql/$major/bin/pg_config"
  [ -x "$pg_config" ] || pg_config="$(command -v pg_config || true)"
fi
need_apt=()
major="$(ls /usr/lib/postgresql | sort -n | tail -1)"

case "$name" in
  timescaledb)
    installed() { ls "$("$pg_config" --pkglibdir 2>/dev/null)"/timescaledb-tsl-*.so >/dev/null 2>&1; }
    deps=("postgresql-server-dev-$major" cmake build-essential libssl-dev libkrb5-dev)
    ;;
  citus)
    installed() { [ -f "$("$pg_config" --pkglibdir 2>/dev/null)/citus.so" ]; }
    deps=("postgresql-server-dev-$major" build-essential libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libssl-dev
          libicu-dev libxslt1-dev libpam0g-dev libselinux1-dev libreadline-dev)
    ;;
  *) echo "setup-extension: unknown extension '$name' (known: timescaledb, citus)" >&2; exit 2 ;;
esac

if [ -z "$force" ] && [ -x "$pg_config" ] && installed; then
  echo "setup-extension: $name is already installed in $("$pg_config" --pkglibdir) (FORCE=1 rebuilds)"
  exit 0
fi
[ -f "$archive" ] || { echo "setup-extension: no archive at $archive" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "setup-extension: installing $name needs root (sudo npm run setup:$name -- $archive)" >&2; exit 1; }

for pkg in "${deps[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup-extension: apt-get install ${need_apt[*]}"
  apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${need_apt[@]}" >/dev/null; }
fi
pg_config="/usr/lib/postgresql/$major/bin/pg_config"
[ -x "$pg_config" ] || pg_config="$(command -v pg_config)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -xzf "$archive" -C "$work"
src="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)"
started=$SECONDS
echo "setup-extension: building $name from $(basename "$archive") against $("$pg_config" --version) (a few minutes)"
case "$name" in
  timescaledb)
    (cd "$src" && ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$pg_config" >"$work/build.log" 2>&1 &&
      make -C build -j"$(nproc)" install >>"$work/build.log" 2>&1) ||
      { tail -40 "$work/build.log" >&2; echo "setup-extension: the build failed" >&2; exit 1; }
    ;;
  citus)
    # PostgreSQL 15.20 declares have_createdb_privilege() itself (commands/dbcommands.h);
    # Citus 13.2's compatibility header still defines a static copy for PostgreSQL < 16,
    # and the compiler refuses the two. In the unpacked copy only, the copy is removed so
    # that the server's is used (../shared/vendor/README.md).
    compat="$src/src/include/pg_version_compat.h"
    if grep -q 'have_createdb_privilege' "$("$pg_config" --includedir-server)/commands/dbcommands.h" 2>/dev/null &&
      grep -q '^have_createdb_privilege(void)' "$compat" 2>/dev/null; then
      perl -0pi -e 's/static inline bool\nhave_createdb_privilege\(void\)\n\{.*?\n\}\n//s' "$compat"
      ! grep -q '^have_createdb_privilege(void)' "$compat" || { echo "setup-extension: could not drop Citus' have_createdb_privilege copy" >&2; exit 1; }
      echo "setup-extension: using the server's have_createdb_privilege (Citus' own copy left out of this build)"
    fi
    (cd "$src" && ./configure PG_CONFIG="$pg_config" >"$work/build.log" 2>&1 &&
      make -j"$(nproc)" >>"$work/build.log" 2>&1 && make install >>"$work/build.log" 2>&1) ||
      { tail -40 "$work/build.log" >&2; echo "setup-extension: the build failed" >&2; exit 1; }
    ;;
esac
installed || { echo "setup-extension: built, but $name is not in $("$pg_config" --pkglibdir)" >&2; exit 1; }
echo "setup-extension: $name installed in $("$pg_config" --pkglibdir) in $((SECONDS - started)) s"
