#!/usr/bin/env bash
# Runs the web terminal (ttyd) under supervisord, behind basic authentication from
# TERMINAL_USER and TERMINAL_PASSWORD. Without a password it does not start: a root shell open
# to anyone who finds the port is never offered.
set -euo pipefail

# shellcheck source=lib/log.sh
source /opt/runpod/lib/log.sh
LOG_NAME=terminal

TERMINAL_USER="${TERMINAL_USER:-runpod}"
TERMINAL_PORT="${TERMINAL_PORT:-7860}"

if [[ -z "${TERMINAL_PASSWORD:-}" ]]; then
	log_error "TERMINAL_PASSWORD is empty: refusing to start the web terminal without credentials"
	exit 0
fi
if [[ "$TERMINAL_USER" == *:* ]]; then
	log_error "TERMINAL_USER must not contain ':'; the web terminal is not started"
	exit 0
fi

# ttyd 1.7 opens terminals read-only unless told otherwise; older releases lack the flag.
args=(--port "$TERMINAL_PORT" --credential "${TERMINAL_USER}:${TERMINAL_PASSWORD}")
if ttyd --help 2>&1 | grep -q -- '--writable'; then
	args+=(--writable)
fi

log_info "starting the web terminal on port ${TERMINAL_PORT} for user ${TERMINAL_USER}"
cd /workspace
exec ttyd "${args[@]}" bash --login
