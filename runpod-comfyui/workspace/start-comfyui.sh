#!/usr/bin/env bash
# Starts ComfyUI; supervisord runs it at every container start and after a crash. It lives on
# the volume so it can be adapted. ComfyUI itself is in the image; its data folders and a Python
# environment for custom-node packages are on the volume, so both survive recreation.
set -euo pipefail

# shellcheck source=../../common/lib/log.sh
source /opt/runpod/lib/log.sh
LOG_NAME=comfyui

COMFYUI_DIR="${COMFYUI_DIR:-/opt/ComfyUI}"
IMAGE_VENV="${COMFYUI_IMAGE_VENV:-/opt/venv/comfyui}"
DATA_DIR="${COMFYUI_DATA_DIR:-/workspace/ComfyUI}"
VENV="${DATA_DIR}/venv"
PORT=8188

# python_version prints major.minor of the interpreter given.
python_version() {
	"$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# site_packages prints where the interpreter given installs packages.
site_packages() {
	"$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

# ensure_venv creates, once, the environment custom nodes install their packages into. It
# layers over the image's environment (torch and ComfyUI's requirements stay in the image) and
# is replaced only when the image moves to another Python version.
ensure_venv() {
	local want have
	want="$(python_version "$IMAGE_VENV/bin/python")"
	if [[ -x "$VENV/bin/python" ]]; then
		have="$(python_version "$VENV/bin/python" 2>/dev/null || echo broken)"
		if [[ "$have" != "$want" ]]; then
			log_warn "custom-node packages in ${VENV} are for Python ${have}, the image has" \
				"${want}: moved them to ${VENV}.python${have}; reinstall node requirements"
			mv "$VENV" "${VENV}.python${have}"
		fi
	fi
	if [[ ! -x "$VENV/bin/python" ]]; then
		log_info "creating ${VENV} for custom-node packages (once)"
		"$IMAGE_VENV/bin/python" -m venv "$VENV"
	fi

	# The image's packages come after the volume's on sys.path, so a node can upgrade one.
	local image_site venv_site
	image_site="$(site_packages "$IMAGE_VENV/bin/python")"
	venv_site="$(site_packages "$VENV/bin/python")"
	printf 'import site; site.addsitedir("%s")\n' "$image_site" >"$venv_site/runpod-image.pth"
}

# vram_flag maps COMFYUI_VRAM_MODE to ComfyUI's memory option.
vram_flag() {
	case "${COMFYUI_VRAM_MODE:-NORMAL_VRAM}" in
	HIGH_VRAM) echo --highvram ;;
	LOW_VRAM) echo --lowvram ;;
	NORMAL_VRAM | "") echo --normalvram ;;
	NO_VRAM | CPU) echo --cpu ;;
	*) die "COMFYUI_VRAM_MODE=${COMFYUI_VRAM_MODE} is not one of HIGH_VRAM, LOW_VRAM," \
		"NORMAL_VRAM, NO_VRAM, CPU" ;;
	esac
}

main() {
	local flag
	flag="$(vram_flag)"
	mkdir -p "$DATA_DIR"/{models,custom_nodes,input,output,user,temp}
	ensure_venv

	local -a extra=()
	read -r -a extra <<<"${COMFYUI_EXTRA_ARGS:-}"

	log_info "starting ComfyUI on port ${PORT} (${flag}), data in ${DATA_DIR}"
	cd "$COMFYUI_DIR"
	exec "$VENV/bin/python" "$COMFYUI_DIR/main.py" --listen 0.0.0.0 --port "$PORT" \
		--base-directory "$DATA_DIR" \
		--extra-model-paths-config /opt/runpod/comfyui/extra_model_paths.yaml \
		"$flag" "${extra[@]}"
}

main "$@"
