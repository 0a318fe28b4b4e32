#!/bin/sh
# Web server bootstrap. converge renders the pool's deploy manifest below (one line per site).
set -eu
cat > /etc/sites/manifest <<'MANIFEST'
{{manifest}}
MANIFEST
/usr/local/bin/deploy-sites /etc/sites/manifest
