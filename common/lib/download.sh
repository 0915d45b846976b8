#!/usr/bin/env bash
# Download helper sourced by the model setup scripts. A file is written to "<dest>.part" and
# renamed only when complete (and, when a sha256 is given, verified), so an interrupted run never
# leaves a partial or empty file under the final name; the next run resumes the ".part" file.
# Hugging Face URLs get the HF_TOKEN as a header read from stdin, never as an argument.

# download_file URL DEST [SHA256] fetches URL to DEST unless DEST already exists.
download_file() {
	local url="$1" dest="$2" sha256="${3:-}"
	local part="${dest}.part"

	if [[ -s "$dest" ]]; then
		log_info "already present: ${dest}"
		return 0
	fi
	mkdir -p "$(dirname "$dest")"
	if [[ -f "$part" ]]; then
		log_info "resuming ${dest} ($(stat -c %s "$part") bytes so far)"
	else
		log_info "downloading ${url} -> ${dest}"
	fi

	if ! _download_curl "$url" "$part"; then
		log_error "download of ${url} failed; run again to resume from ${part}"
		return 1
	fi
	if [[ ! -s "$part" ]]; then
		rm -f "$part"
		log_error "download of ${url} returned no data"
		return 1
	fi
	if [[ -n "$sha256" ]] && ! _download_verify "$part" "$sha256"; then
		rm -f "$part"
		log_error "checksum mismatch for ${url}: removed the download, run again to retry"
		return 1
	fi
	mv -f "$part" "$dest"
	log_info "saved ${dest}"
}

# _download_curl appends to PART, resuming from its current size.
_download_curl() {
	local url="$1" part="$2"
	local -a args=(--fail --location --silent --show-error --retry 3 --continue-at -
		--output "$part" "$url")
	if [[ -n "${HF_TOKEN:-}" && "$url" == https://huggingface.co/* ]]; then
		# The header comes from a config on stdin so the token stays out of the process list.
		printf 'header = "Authorization: Bearer %s"\n' "$HF_TOKEN" | curl --config - "${args[@]}"
	else
		curl "${args[@]}"
	fi
}

# _download_verify compares the sha256 of FILE with WANT.
_download_verify() {
	local file="$1" want="$2" got
	got="$(sha256sum "$file" | cut -d' ' -f1)"
	[[ "${got,,}" == "${want,,}" ]]
}
