#!/usr/bin/env bash
# A private PostgreSQL server for tests: its own data directory, a free TCP
# port on 127.0.0.1, run as a non-root user (PostgreSQL refuses root; as root
# we run it as `postgres`), stopped and deleted at the end. DIR holds what
# the tests read: url, port, server (the server's directory), or skip.
#
#   private_postgres.sh start DIR      prints postgresql://berth@127.0.0.1:PORT/berth
#   private_postgres.sh createdb DIR NAME   prints the URL of a new, empty database
#   private_postgres.sh dropdb DIR NAME     drops it, ending its connections; prints dropped
#   private_postgres.sh password DIR ROLE PASSWORD   a login role that must give PASSWORD (scram-sha-256,
#                                           where everyone else is trusted) and may read every table
#   private_postgres.sh pause DIR           stops the server, keeping its data and port
#   private_postgres.sh resume DIR          starts it again on the same port
#   private_postgres.sh stop DIR
#
# When the server binaries are absent, `start` writes the reason to DIR/skip
# and exits 0 (tests then skip, saying why); any other failure exits 1.
# $BERTH_PG_BIN overrides the binaries' directory (default: the newest
# /usr/lib/postgresql/*/bin).
set -euo pipefail

usage="usage: private_postgres.sh start|createdb|dropdb|password|pause|resume|stop DIR [NAME [PASSWORD]]"
command=${1:?$usage}
dir=${2:?$usage}

bin=${BERTH_PG_BIN:-}
if [[ -z $bin ]]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi

as_owner=()
if [[ $(id -u) -eq 0 ]]; then as_owner=(runuser -u postgres --); fi

case $command in
  start)
    rm -rf "$dir"
    mkdir -p "$dir"
    if [[ -z $bin || ! -x $bin/initdb || ! -x $bin/pg_ctl ]]; then
      echo "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): install Debian's postgresql package (scripts/setup.sh does)" >"$dir/skip"
      exit 0
    fi
    # The server's own files live in a fresh directory under /tmp that its
    # user can reach wherever DIR is (a checkout under /root is not); DIR
    # records where.
    server=$(mktemp -d "${TMPDIR:-/tmp}/berth-pg.XXXXXX")
    chmod 755 "$server"
    echo "$server" >"$dir/server"
    if [[ $(id -u) -eq 0 ]]; then
      if ! id postgres >/dev/null 2>&1; then
        echo "running as root and there is no 'postgres' user to run PostgreSQL as" >&2
        exit 1
      fi
      chown postgres: "$server"
    fi
    "${as_owner[@]}" "$bin/initdb" -D "$server/data" -U berth --auth=trust -E UTF8 --locale=C \
      --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # A free port can be taken between choosing and binding it: try again.
    for attempt in 1 2 3 4 5; do
      port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      if "${as_owner[@]}" "$bin/pg_ctl" -D "$server/data" -l "$server/postgres.log" -w -t 30 \
           -o "-p $port -k $server -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
           start >/dev/null 2>&1; then
        echo "$port" >"$dir/port"
        "${as_owner[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U berth -d postgres -q \
          -c "CREATE DATABASE berth" >/dev/null
        echo "postgresql://berth@127.0.0.1:$port/berth" | tee "$dir/url"
        exit 0
      fi
    done
    cat "$server/postgres.log" >&2 || true
    exit 1
    ;;
  createdb)
    name=${3:?usage: private_postgres.sh createdb DIR NAME}
    port=$(cat "$dir/port")
    "${as_owner[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U berth -d postgres -q \
      -c "CREATE DATABASE \"$name\"" >/dev/null
    echo "postgresql://berth@127.0.0.1:$port/$name"
    ;;
  dropdb)
    name=${3:?usage: private_postgres.sh dropdb DIR NAME}
    port=$(cat "$dir/port")
    "${as_owner[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U berth -d postgres -q \
      -c "DROP DATABASE \"$name\" WITH (FORCE)" >/dev/null
    echo dropped
    ;;
  password)
    role=${3:?usage: private_postgres.sh password DIR ROLE PASSWORD}
    secret=${4:?usage: private_postgres.sh password DIR ROLE PASSWORD}
    server=$(cat "$dir/server")
    port=$(cat "$dir/port")
    "${as_owner[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U berth -d postgres -q -v ON_ERROR_STOP=1 \
      -v role="$role" -v secret="$secret" >/dev/null <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'secret';
GRANT pg_read_all_data TO :"role";
SQL
    # pg_hba.conf's first matching line wins: this role's goes before the trust lines.
    hba="$server/data/pg_hba.conf"
    { echo "host all $role 127.0.0.1/32 scram-sha-256"; cat "$hba"; } >"$hba.new"
    cat "$hba.new" >"$hba" && rm -f "$hba.new"
    "${as_owner[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U berth -d postgres -q \
      -c "SELECT pg_reload_conf()" >/dev/null
    ;;
  pause)
    server=$(cat "$dir/server")
    "${as_owner[@]}" "$bin/pg_ctl" -D "$server/data" -m fast -w -t 30 stop >/dev/null
    ;;
  resume)
    server=$(cat "$dir/server")
    port=$(cat "$dir/port")
    "${as_owner[@]}" "$bin/pg_ctl" -D "$server/data" -l "$server/postgres.log" -w -t 30 \
      -o "-p $port -k $server -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null
    ;;
  stop)
    if [[ -f $dir/server ]]; then
      server=$(cat "$dir/server")
      if [[ -f $server/data/postmaster.pid ]]; then
        "${as_owner[@]}" "$bin/pg_ctl" -D "$server/data" -m immediate -w stop >/dev/null 2>&1 || true
      fi
      [[ $server == */berth-pg.* ]] && rm -rf "$server"
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
