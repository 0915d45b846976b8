#!/usr/bin/env bash
# Logging helpers sourced by every start script of the images. Lines go to stdout, where
# supervisord and `docker logs` pick them up, prefixed with the script's name so a reader can
# tell the services apart.

# log_info prints an informational line.
log_info() {
	printf '[%s] %s\n' "${LOG_NAME:-${0##*/}}" "$*"
}

# log_warn prints a line a user should act on.
log_warn() {
	printf '[%s] WARNING: %s\n' "${LOG_NAME:-${0##*/}}" "$*"
}

# log_error prints an error line to stderr.
log_error() {
	printf '[%s] ERROR: %s\n' "${LOG_NAME:-${0##*/}}" "$*" >&2
}

# die prints an error line and exits non-zero.
die() {
	log_error "$*"
	exit 1
}
