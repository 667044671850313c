# shellcheck shell=bash
# Functions that make a machine able to run the tests; sourced by .ci/run (and by
# tests/test_ci_setup.py), doing nothing by itself. Each step first checks whether its work
# is already done, so a prepared machine pays a few checks, while a plain Debian-based one
# with Python 3.11 gets PostgreSQL, Redis, the `test` database and the CPU build of torch.

TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
PG_PORT=5432
REDIS_PORT=6379

die() {
  echo ".ci: $*" >&2
  exit 1
}

as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi
}

as_postgres() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

apt_install() {
  command -v apt-get >/dev/null || die "$* missing, and no apt-get to install it with"
  if [[ -z ${APT_UPDATED:-} ]]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# A TCP check in bash itself: the clients (pg_isready, redis-cli) may be what is missing, and
# a server in another container counts as present.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

wait_until() {
  local seconds=$1
  shift
  for _ in $(seq "$seconds"); do
    "$@" && return 0
    sleep 1
  done
  "$@"
}

# The interpreter the venv is built from: pyproject allows 3.11 only.
find_python() {
  local python=${PYTHON:-$(command -v python3.11 || command -v python3 || true)}
  if [[ -z $python ]] || ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'
  then
    die "Python 3.11 is required (pyproject.toml: requires-python); set PYTHON to one"
  fi
  # Debian ships venv's pip bootstrap in a separate package.
  "$python" -c 'import ensurepip' 2>/dev/null || apt_install python3.11-venv >&2
  echo "$python"
}

# The pinned torch requirement, read from pyproject.toml so that the pin lives in one place.
torch_requirement() {
  python -c 'import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(next(d for d in deps if d.replace(" ", "").startswith("torch==")))'
}

# Before the project: PyPI's Linux torch wheel is the CUDA build (gigabytes of CUDA libraries),
# so the pinned version comes from a local wheel when pip's configuration points at one
# (find-links), else from the PyTorch CPU index. The project's own install then finds the pin
# satisfied (2.13.0+cpu is 2.13.0 to pip).
install_torch() {
  local requirement
  requirement=$(torch_requirement)
  pip install --quiet --no-index --no-deps "$requirement" 2>/dev/null ||
    pip install --quiet --index-url "$TORCH_CPU_INDEX" "$requirement"
}

# The newest installed server version (its binaries, whether or not a cluster exists).
pg_version() {
  find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1
}

pg_ready() {
  pg_isready -q -h 127.0.0.1 -p "$PG_PORT"
}

ensure_postgres() {
  port_open "$PG_PORT" && return 0
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local version
  version=$(pg_version)
  [[ -n $version ]] || die "no PostgreSQL server under /usr/lib/postgresql"
  [[ -d /etc/postgresql/$version/main ]] || as_root pg_createcluster "$version" main
  # The package may have started it already.
  pg_ready || as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_until 30 pg_ready || die "PostgreSQL did not start on port $PG_PORT"
}

# Whether the tests' connection (libpq defaults: this user, no password) reaches `db`.
db_reachable() {
  python - "$1" <<'EOF' 2>/dev/null
import sys

import psycopg

psycopg.connect(host="127.0.0.1", port=5432, dbname=sys.argv[1], connect_timeout=5).close()
EOF
}

# The database the tests use, owned by the user who runs them; on a fresh install also a
# pg_hba rule that lets that user in from loopback without a password (to that database only).
ensure_database() {
  local db=$1 role=${PGUSER:-$(id -un)}
  db_reachable "$db" && return 0
  command -v pg_ctlcluster >/dev/null ||
    die "cannot reach database $db on 127.0.0.1:$PG_PORT as $role, and PostgreSQL is not local"
  as_postgres psql -q -v ON_ERROR_STOP=1 -v db="$db" -v role="$role" -d postgres <<'EOF'
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SELECT format('GRANT CONNECT, CREATE ON DATABASE %I TO %I', :'db', :'role') \gexec
EOF
  db_reachable "$db" && return 0
  local hba
  hba=$(as_postgres psql -Atqc 'SHOW hba_file')
  as_root sed -i -e "1i host $db $role 127.0.0.1/32 trust" -e "1i host $db $role ::1/128 trust" \
    "$hba"
  as_postgres psql -qc 'SELECT pg_reload_conf()' >/dev/null
  wait_until 10 db_reachable "$db" || die "cannot connect to database $db as $role"
}

ensure_redis() {
  port_open "$REDIS_PORT" && return 0
  if ! command -v redis-server >/dev/null; then
    apt_install redis-server
    # The package may have started it already.
    wait_until 5 port_open "$REDIS_PORT" && return 0
  fi
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_until 30 port_open "$REDIS_PORT" || die "Redis did not start on port $REDIS_PORT"
}

# tests/service/test_quickstart.py runs README.md's quick start, which talks to the service
# with curl.
ensure_curl() {
  command -v curl >/dev/null || apt_install curl
}
