#!/bin/sh
# Runs `postgres …`, `redis-server …` or `nginx …` as the official images' entrypoints do:
# PostgreSQL initialised from POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB and reachable
# over the network with a password; Redis without protected mode when given no config file.
set -eu
case "$1" in
  postgres)
    export PGDATA=/var/lib/postgresql/data
    install -d -o postgres -g postgres -m 700 "$PGDATA"
    install -d -o postgres -g postgres /var/run/postgresql
    as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
      printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile && chown postgres /tmp/pwfile
      as_postgres initdb --username="$POSTGRES_USER" --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 >/dev/null
      rm /tmp/pwfile
      echo 'host all all all scram-sha-256' >> "$PGDATA/pg_hba.conf"
      echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
      # The database POSTGRES_DB (default: the user's name), as the official image makes it.
      db="${POSTGRES_DB:-$POSTGRES_USER}"
      if [ "$db" != postgres ]; then
        as_postgres pg_ctl -w -o "-c listen_addresses=''" start >/dev/null
        as_postgres createdb --username="$POSTGRES_USER" --maintenance-db=postgres "$db"
        as_postgres pg_ctl -w -m fast stop >/dev/null
      fi
    fi
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"
    ;;
  redis-server)
    cd /var/lib/redis
    exec setpriv --reuid=redis --regid=redis --init-groups "$@" --protected-mode no
    ;;
  *)
    exec "$@"
    ;;
esac
