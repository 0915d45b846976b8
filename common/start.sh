#!/usr/bin/env bash
# Entry point of every image (run by tini). It prepares the environment the services share,
# brings the workspace volume up to date with the image's template without overwriting a file
# the user changed, then hands over to supervisord, which runs the services and restarts them.
set -euo pipefail

# shellcheck source=lib/log.sh
source /opt/runpod/lib/log.sh
LOG_NAME=start

TEMPLATE_DIR="${TEMPLATE_DIR:-/workspace_template}"
WORKSPACE_DIR="${WORKSPACE_DIR:-/workspace}"

# export_hf_token gives the apps the token under the name huggingface_hub reads, accepting the
# older HUGGINGFACE_TOKEN name from existing env files.
export_hf_token() {
	if [[ -z "${HF_TOKEN:-}" && -n "${HUGGINGFACE_TOKEN:-}" ]]; then
		HF_TOKEN="$HUGGINGFACE_TOKEN"
	fi
	if [[ -n "${HF_TOKEN:-}" ]]; then
		export HF_TOKEN
		log_info "Hugging Face token set"
	else
		unset HF_TOKEN
		log_info "no HF_TOKEN: gated Hugging Face models will not download"
	fi
}

# sync_workspace seeds an empty volume and later adds what the image brings new, keeping files
# the user edited.
sync_workspace() {
	mkdir -p "$WORKSPACE_DIR"
	if [[ ! -d "$TEMPLATE_DIR" ]]; then
		log_warn "no template at ${TEMPLATE_DIR}: workspace left as it is"
		return 0
	fi
	log_info "syncing ${TEMPLATE_DIR} into ${WORKSPACE_DIR}"
	# A failed sync must not keep the user from their data: start with the volume as it is.
	if ! /opt/runpod/bin/runpod-workspace sync "$TEMPLATE_DIR" "$WORKSPACE_DIR"; then
		log_warn "the workspace sync failed; services start with ${WORKSPACE_DIR} as it is"
	fi
}

# decide_autostart exports RUNPOD_<SERVICE>_AUTOSTART, read by the supervisord configuration,
# so a service without credentials is not started at all instead of failing in a loop.
decide_autostart() {
	RUNPOD_JUPYTER_AUTOSTART=false
	if [[ -n "${JUPYTER_PASSWORD:-}" ]]; then
		RUNPOD_JUPYTER_AUTOSTART=true
	else
		log_warn "JUPYTER_PASSWORD is empty: JupyterLab will not start (set it in the env file)"
	fi
	RUNPOD_TERMINAL_AUTOSTART=false
	if [[ -n "${TERMINAL_PASSWORD:-}" ]]; then
		RUNPOD_TERMINAL_AUTOSTART=true
	else
		log_warn "TERMINAL_PASSWORD is empty: the web terminal will not start (set it in the env file)"
	fi
	export RUNPOD_JUPYTER_AUTOSTART RUNPOD_TERMINAL_AUTOSTART
}

main() {
	export_hf_token
	sync_workspace
	decide_autostart
	log_info "starting supervisord"
	exec supervisord --nodaemon --configuration /etc/supervisor/supervisord.conf
}

main "$@"
