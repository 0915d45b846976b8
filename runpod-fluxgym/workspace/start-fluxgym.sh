#!/usr/bin/env bash
# Starts FluxGym; supervisord runs it at every container start and after a crash. It lives on
# the volume so it can be adapted. FluxGym and sd-scripts are in the image; its models, datasets
# and outputs folders are links to /workspace/fluxgym, so training results survive recreation.
set -euo pipefail

# shellcheck source=../../common/lib/log.sh
source /opt/runpod/lib/log.sh
LOG_NAME=fluxgym

FLUXGYM_DIR="${FLUXGYM_DIR:-/opt/fluxgym}"
FLUXGYM_VENV="${FLUXGYM_VENV:-/opt/venv/fluxgym}"
DATA_DIR=/workspace/fluxgym

# Gradio reads these itself; FluxGym's code is never rewritten. No public share link is made.
export GRADIO_SERVER_NAME="${GRADIO_SERVER_NAME:-0.0.0.0}"
export GRADIO_SERVER_PORT="${GRADIO_SERVER_PORT:-7861}"
export GRADIO_SHARE=False
export GRADIO_ANALYTICS_ENABLED="${GRADIO_ANALYTICS_ENABLED:-False}"

mkdir -p "$DATA_DIR"/{models/unet,models/clip,models/vae,outputs,datasets}

log_info "starting FluxGym on ${GRADIO_SERVER_NAME}:${GRADIO_SERVER_PORT}, data in ${DATA_DIR}"
cd "$FLUXGYM_DIR"
exec "$FLUXGYM_VENV/bin/python" "$FLUXGYM_DIR/app.py"
