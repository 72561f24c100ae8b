#!/usr/bin/env bash
# Builds and installs a PostgreSQL extension from its unmodified source archive, as root,
# where that version is not installed yet. Nothing of the extension's code enters this
# repository: the archive is unpacked into a temporary folder and removed afterwards.
#
#   npm run setup:timescaledb [-- path/to/timescaledb-2.28.3.tar.gz]
#   npm run setup:citus [-- path/to/citus-13.2.2.tar.gz]
#
# Without an archive, the newest <name>-*.tar.gz of ../shared/vendor (beside the
# checkout) is used. Debian's build dependencies are installed with apt-get when missing.
# The build runs at a lower priority (nice 10): the machine may be serving meanwhile.
# Prints what it did; exits 0 when the archive's version is (now) installed.
#   FORCE=1     rebuilds even when that version is installed
#   DRY_RUN=1   says what it would do and prepares the sources (the unpacked copy, as it
#               would be built), but installs and builds nothing; needs no root
#   PG_CONFIG   the server to build for (default: the newest under /usr/lib/postgresql)
set -euo pipefail

name="${1:?usage: setup-extension.sh timescaledb|citus [archive.tar.gz]}"
case "$name" in
  timescaledb | citus) ;;
  *) echo "setup-extension: unknown extension '$name' (known: timescaledb, citus)" >&2; exit 2 ;;
esac
vendor="$(cd "$(dirname "$0")/.." && pwd)/../shared/vendor"
archive="${2:-$(ls "$vendor/$name"-*.tar.gz 2>/dev/null | sort -V | tail -1 || true)}"
[ -n "$archive" ] || { echo "setup-extension: no $name-*.tar.gz in $vendor: give the archive (npm run setup:$name -- path/to/$name-<version>.tar.gz)" >&2; exit 1; }
[ -f "$archive" ] || { echo "setup-extension: no archive at $archive" >&2; exit 1; }
force="${FORCE:-}"
dry="${DRY_RUN:-}"

pg_config="${PG_CONFIG:-}"
if [ -z "$pg_config" ]; then
  # The newest installed server's pg_config (the one the local cluster uses).
  major="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 || true)"
  [ -n "$major" ] || { echo "setup-extension: no PostgreSQL server under /usr/lib/postgresql" >&2; exit 1; }
  pg_config="/usr/lib/postgresql/$major/bin/pg_config"
fi
# "PostgreSQL 15.20 (Debian 15.20-0+deb12u1)" -> 15 and 20. Without the server's
# development package there may be no pg_config yet: the major of the folder then.
pg_version="$("$pg_config" --version 2>/dev/null || echo "PostgreSQL ${major:-0}.0")"
pg_major="$(sed -E 's/^PostgreSQL ([0-9]+).*/\1/' <<<"$pg_version")"
pg_minor="$(sed -E 's/^PostgreSQL [0-9]+\.([0-9]+).*/\1/;t;s/.*/0/' <<<"$pg_version")"
libdir() { "$pg_config" --pkglibdir 2>/dev/null || echo "/usr/lib/postgresql/$pg_major/lib"; }

# The archive's version, from its name (git archive of a release tag: <name>-<version>.tar.gz).
version="$(basename "$archive" | sed -nE "s/^$name-([0-9][0-9A-Za-z.]*)\.tar\.gz$/\1/p")"
[ -n "$version" ] || { echo "setup-extension: cannot read the version from $(basename "$archive") (expected $name-<version>.tar.gz)" >&2; exit 1; }

case "$name" in
  timescaledb)
    # Each version installs its own library, timescaledb-<version>.so, beside the loader.
    installed_version() { ls "$(libdir)"/timescaledb-tsl-*.so 2>/dev/null | sed -nE 's/.*timescaledb-tsl-(.*)\.so$/\1/p' | sort -V | tail -1; }
    has_version() { [ -f "$(libdir)/timescaledb-tsl-$version.so" ]; }
    deps=("postgresql-server-dev-$pg_major" cmake build-essential libssl-dev libkrb5-dev)
    ;;
  citus)
    # citus.so carries its version for citus_version(): "Citus 13.2.2 on x86_64-...".
    installed_version() { [ -f "$(libdir)/citus.so" ] && grep -a -o -m1 -E 'Citus [0-9]+\.[0-9]+\.[0-9]+' "$(libdir)/citus.so" | head -1 | cut -d' ' -f2; }
    has_version() { [ "$(installed_version || true)" = "$version" ]; }
    deps=("postgresql-server-dev-$pg_major" build-essential libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libssl-dev
          libicu-dev libxslt1-dev libpam0g-dev libselinux1-dev libreadline-dev)
    ;;
esac

if [ -z "$force" ] && has_version; then
  echo "setup-extension: $name $version is already installed in $(libdir) (FORCE=1 rebuilds)"
  exit 0
fi
before="$(installed_version || true)"
[ -z "$before" ] || echo "setup-extension: $name $before is installed in $(libdir); building $version"
[ -n "$dry" ] || [ "$(id -u)" = 0 ] || { echo "setup-extension: installing $name needs root (sudo npm run setup:$name -- $archive)" >&2; exit 1; }

need_apt=()
for pkg in "${deps[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup-extension: apt-get install ${need_apt[*]}"
  if [ -z "$dry" ]; then
    apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${need_apt[@]}" >/dev/null; }
  fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -xzf "$archive" -C "$work"
src="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)"

if [ "$name" = citus ]; then
  # PostgreSQL 15.20 declares have_createdb_privilege() itself (commands/dbcommands.h);
  # Citus 13.2's compatibility header still defines a static copy for PostgreSQL < 16,
  # and the compiler refuses the two. From 15.20 on, in the unpacked copy only, that copy
  # is removed so that the server's is used (../shared/vendor/README.md). Before 15.20
  # (and from 16, where the copy is not compiled) the sources are built as they are.
  compat="$src/src/include/pg_version_compat.h"
  if [ "$pg_major" = 15 ] && [ "$pg_minor" -ge 20 ] && grep -q '^have_createdb_privilege(void)' "$compat" 2>/dev/null; then
    perl -0pi -e 's/static inline bool\nhave_createdb_privilege\(void\)\n\{.*?\n\}\n//s' "$compat"
    ! grep -q '^have_createdb_privilege(void)' "$compat" || { echo "setup-extension: could not drop Citus' have_createdb_privilege copy" >&2; exit 1; }
    echo "setup-extension: PostgreSQL $pg_major.$pg_minor: using the server's have_createdb_privilege (Citus' own copy left out of this build)"
  fi
fi
if [ -n "$dry" ]; then
  echo "setup-extension: would build $name $version from $(basename "$archive") against $pg_version (DRY_RUN: nothing built)"
  [ -z "${DRY_RUN_KEEP:-}" ] || { rm -rf "$DRY_RUN_KEEP" && cp -r "$src" "$DRY_RUN_KEEP"; }
  exit 0
fi

started=$SECONDS
echo "setup-extension: building $name $version from $(basename "$archive") against $pg_version (a few minutes)"
build() { nice -n 10 "$@" >>"$work/build.log" 2>&1; }
case "$name" in
  timescaledb)
    (cd "$src" && build ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$pg_config" &&
      build make -C build -j"$(nproc)" install) ||
      { tail -40 "$work/build.log" >&2; echo "setup-extension: the build failed" >&2; exit 1; }
    ;;
  citus)
    (cd "$src" && build ./configure PG_CONFIG="$pg_config" && build make -j"$(nproc)" && build make install) ||
      { tail -40 "$work/build.log" >&2; echo "setup-extension: the build failed" >&2; exit 1; }
    ;;
esac
has_version || { echo "setup-extension: built, but $name $version is not in $(libdir)" >&2; exit 1; }
echo "setup-extension: $name $version installed in $(libdir) in $((SECONDS - started)) s"
