# Shared shell helpers: the repo's own Python venv and the local AWS emulator.
# Sourced by the other scripts; everything lives inside the repo (.venv, .local).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
LOCAL="$ROOT/.local"
mkdir -p "$LOCAL"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ensure_venv REQUIREMENTS...: create .venv and install the pinned requirements once;
# reinstalls only when a requirements file changes.
ensure_venv() {
  local python="${PYTHON:-python3}" stamp="$VENV/.installed" want
  want="$(cd "$ROOT/scripts" && cat "$@" requirements-test.txt | sha256sum | cut -d' ' -f1)-$*"
  if [ -f "$stamp" ] && grep -qxF -- "$want" "$stamp"; then
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$python" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
  fi
  local args=()
  for requirements in "$@"; do args+=(-r "$ROOT/scripts/$requirements"); done
  log "installing ${*} into .venv"
  "$VENV/bin/pip" install --quiet "${args[@]}"
  echo "$want" >> "$stamp"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_moto [PORT]: start moto server on loopback, wait until it answers, export the
# AWS_* variables the SDK and the scripts read. stop_moto ends it.
start_moto() {
  local port="${1:-$(free_port)}"
  MOTO_LOG="$LOCAL/moto.log"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" > "$MOTO_LOG" 2>&1 &
  MOTO_PID=$!
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  for _ in $(seq 1 100); do
    if "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('$AWS_ENDPOINT_URL/moto-api/', timeout=1)" 2>/dev/null; then
      log "moto server on $AWS_ENDPOINT_URL (pid $MOTO_PID)"
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      cat "$MOTO_LOG" >&2
      log "moto server did not start"
      return 1
    fi
    sleep 0.2
  done
  log "moto server did not answer in 20 s"
  return 1
}

stop_moto() {
  if [ -n "${MOTO_PID:-}" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    log "moto server stopped"
  fi
  MOTO_PID=""
}
