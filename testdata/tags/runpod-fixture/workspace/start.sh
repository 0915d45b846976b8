#!/bin/sh
# Serves /workspace over HTTP on port 18080, standing in for an app.
set -eu
echo "fixture app listening on 18080, token length ${#HF_TOKEN}"
exec httpd -f -p 18080 -h /workspace
