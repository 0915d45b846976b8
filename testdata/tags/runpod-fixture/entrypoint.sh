#!/bin/sh
# Seeds /workspace from the template when it holds no start.sh yet, then runs it.
set -eu
if [ ! -f /workspace/start.sh ]; then
  cp -a /workspace_template/. /workspace/
  echo "seeded $(date +%s)" >> /workspace/.seed-log
fi
cp /build-id /workspace/.build-id
exec /bin/sh /workspace/start.sh
