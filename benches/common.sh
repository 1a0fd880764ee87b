# Helpers shared by the scripts in benches/ (sourced, not run).

log() { echo "$*" >&2; }

# need COMMAND DEBIAN_PACKAGE: installs the package when the command is missing.
need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    log "installing $2 for $1"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
}
