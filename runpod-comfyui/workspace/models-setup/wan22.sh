#!/usr/bin/env bash
# Downloads the Wan 2.2 video models (5B text/image-to-video, fp16) into ComfyUI's model folders
# on the volume. Run it from the web terminal or Jupyter: bash /workspace/models-setup/wan22.sh
# Interrupted downloads resume on the next run; finished files are skipped.
set -euo pipefail

# shellcheck source=../../../common/lib/log.sh
source /opt/runpod/lib/log.sh
# shellcheck source=../../../common/lib/download.sh
source /opt/runpod/lib/download.sh
LOG_NAME=wan22

MODELS="${COMFYUI_DATA_DIR:-/workspace/ComfyUI}/models"
REPO22=https://huggingface.co/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files
REPO21=https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files

download_file "$REPO22/diffusion_models/wan2.2_ti2v_5B_fp16.safetensors" \
	"$MODELS/diffusion_models/wan2.2_ti2v_5B_fp16.safetensors"
download_file "$REPO22/vae/wan2.2_vae.safetensors" "$MODELS/vae/wan2.2_vae.safetensors"
download_file "$REPO21/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors" \
	"$MODELS/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors"

log_info "Wan 2.2 models are ready; load a Wan 2.2 template in ComfyUI's workflow browser"
