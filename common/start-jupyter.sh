#!/usr/bin/env bash
# Runs JupyterLab under supervisord. The password is hashed by the server configuration from
# the JUPYTER_PASSWORD environment variable, so it is never written into code or a command line.
# Without a password Jupyter does not start: an open notebook server is a root shell.
set -euo pipefail

# shellcheck source=lib/log.sh
source /opt/runpod/lib/log.sh
LOG_NAME=jupyter

if [[ -z "${JUPYTER_PASSWORD:-}" ]]; then
	log_error "JUPYTER_PASSWORD is empty: refusing to start JupyterLab without a password"
	exit 0
fi

JUPYTER_BIN="${JUPYTER_BIN:-/opt/jupyter/bin/jupyter}"
export JUPYTER_CONFIG_DIR="${JUPYTER_CONFIG_DIR:-/workspace/.jupyter}"
export JUPYTER_RUNTIME_DIR=/run/jupyter
export JUPYTER_ROOT_DIR="${JUPYTER_ROOT_DIR:-/workspace}"
export JUPYTER_PORT="${JUPYTER_PORT:-8888}"
mkdir -p "$JUPYTER_RUNTIME_DIR"
chmod 0700 "$JUPYTER_RUNTIME_DIR"

log_info "starting JupyterLab on port ${JUPYTER_PORT}, root ${JUPYTER_ROOT_DIR}"
exec "$JUPYTER_BIN" lab --config=/opt/runpod/jupyter/jupyter_server_config.py
