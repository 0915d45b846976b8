#!/usr/bin/env bash
# Downloads the Flux dev checkpoint, its text encoders and VAE into FluxGym's model folders on
# the volume (FluxGym can also fetch them itself when training starts). Run it from the web
# terminal or Jupyter: bash /workspace/download-models.sh
# Interrupted downloads resume on the next run; finished files are skipped.
set -euo pipefail

# shellcheck source=../../common/lib/log.sh
source /opt/runpod/lib/log.sh
# shellcheck source=../../common/lib/download.sh
source /opt/runpod/lib/download.sh
LOG_NAME=download-models

MODELS=/workspace/fluxgym/models
HF=https://huggingface.co

download_file "$HF/cocktailpeanut/xulf-dev/resolve/main/flux1-dev.sft" "$MODELS/unet/flux1-dev.sft"
download_file "$HF/cocktailpeanut/xulf-dev/resolve/main/ae.sft" "$MODELS/vae/ae.sft"
download_file "$HF/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors" \
	"$MODELS/clip/clip_l.safetensors"
download_file "$HF/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp16.safetensors" \
	"$MODELS/clip/t5xxl_fp16.safetensors"

log_info "models are ready in ${MODELS}"
