#!/usr/bin/env bash
# Installs (once, cached outside the clone) and starts a single-node Garage S3 server for tests.
#
#   scripts/garage.sh start DIR   -> prints `export MBK_TEST_S3_...` lines for the test run
#   scripts/garage.sh stop DIR
#
# Garage is a real, replicated S3-compatible store; what docker-compose users run too.
set -euo pipefail

GARAGE_VERSION=2.5.0
GARAGE_ROOT=${GARAGE_ROOT:-$HOME/.cache/garage-$GARAGE_VERSION}
GARAGE_BIN=$GARAGE_ROOT/bin/garage
S3_PORT=${MBK_GARAGE_S3_PORT:-3900}
RPC_PORT=${MBK_GARAGE_RPC_PORT:-3901}
WEB_PORT=${MBK_GARAGE_WEB_PORT:-3902}
ADMIN_PORT=${MBK_GARAGE_ADMIN_PORT:-3903}
BUCKET=mbk-test
ACCESS_KEY=GK0123456789abcdef01234567
SECRET_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

log() { echo "garage.sh: $*" >&2; }

install_garage() {
    if [ -x "$GARAGE_BIN" ] && "$GARAGE_BIN" --version 2>/dev/null | grep -q "cargo:$GARAGE_VERSION"; then
        return
    fi
    log "building garage $GARAGE_VERSION (once; cached in $GARAGE_ROOT)"
    # A debug build without debuginfo: ~4x faster to build than release, fast enough for tests.
    CARGO_PROFILE_DEV_DEBUG=0 CARGO_TARGET_DIR=$HOME/.cache/garage-target \
        cargo install --debug --locked --root "$GARAGE_ROOT" "garage@$GARAGE_VERSION" -j "${CARGO_BUILD_JOBS:-2}" >&2
}

wait_port() {
    local port=$1
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "port $port did not open"; return 1
}

start() {
    local dir=$1
    install_garage
    stop "$dir" || true
    mkdir -p "$dir/meta" "$dir/data"
    cat > "$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"

[s3_web]
bind_addr = "127.0.0.1:$WEB_PORT"
root_domain = ".web.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
TOML
    GARAGE_DEFAULT_ACCESS_KEY=$ACCESS_KEY GARAGE_DEFAULT_SECRET_KEY=$SECRET_KEY GARAGE_DEFAULT_BUCKET=$BUCKET \
        nohup "$GARAGE_BIN" -c "$dir/garage.toml" server --single-node --default-bucket > "$dir/garage.log" 2>&1 &
    echo $! > "$dir/garage.pid"
    wait_port "$S3_PORT" || { cat "$dir/garage.log" >&2; return 1; }
    # The default bucket appears a moment after the port opens.
    for _ in $(seq 1 100); do
        if "$GARAGE_BIN" -c "$dir/garage.toml" bucket info "$BUCKET" > /dev/null 2>&1; then break; fi
        sleep 0.1
    done
    "$GARAGE_BIN" -c "$dir/garage.toml" bucket website --allow "$BUCKET" > /dev/null
    # A second bucket for tests that scan a whole bucket (the cleanup's orphan scan): in the shared
    # one they would meet every other test's objects.
    "$GARAGE_BIN" -c "$dir/garage.toml" bucket create "$BUCKET-solo" > /dev/null
    "$GARAGE_BIN" -c "$dir/garage.toml" bucket allow --read --write --owner "$BUCKET-solo" --key "$ACCESS_KEY" > /dev/null
    log "garage up on 127.0.0.1:$S3_PORT (buckets $BUCKET, $BUCKET-solo)"
    cat <<ENV
export MBK_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export MBK_TEST_S3_REGION=garage
export MBK_TEST_S3_BUCKET=$BUCKET
export MBK_TEST_S3_SOLO_BUCKET=$BUCKET-solo
export MBK_TEST_S3_ACCESS_KEY=$ACCESS_KEY
export MBK_TEST_S3_SECRET_KEY=$SECRET_KEY
export MBK_TEST_S3_WEB_ENDPOINT=http://127.0.0.1:$WEB_PORT
ENV
}

stop() {
    local dir=$1
    if [ -f "$dir/garage.pid" ]; then
        local pid; pid=$(cat "$dir/garage.pid")
        if kill "$pid" 2>/dev/null; then
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/garage.pid"
    fi
}

case "${1:-}" in
    start) start "${2:?DIR}" ;;
    stop) stop "${2:?DIR}" ;;
    install) install_garage ;;
    *) echo "usage: $0 start|stop DIR | install" >&2; exit 2 ;;
esac
