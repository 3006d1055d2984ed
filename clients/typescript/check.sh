#!/usr/bin/env bash
# openapi-typescript turns openapi/openapi.json into types, and a typed caller of the API
# (caller.ts) must compile under `tsc --strict`. Tool versions: package-lock.json. Everything
# npm writes stays in this folder's ignored node_modules/, .npm-cache/ and build/.
set -euo pipefail
cd "$(dirname "$0")"
export npm_config_cache="$PWD/.npm-cache" npm_config_update_notifier=false
npm ci --no-audit --no-fund --loglevel=error
output=$(node_modules/.bin/openapi-typescript ../../openapi/openapi.json --output build/api.d.ts 2>&1)
echo "$output"
if grep -qiE "warn|error" <<<"$output"; then
  echo "openapi-typescript reported problems with openapi/openapi.json (above)" >&2
  exit 1
fi
node_modules/.bin/tsc --strict -p .
echo "TypeScript: types generated from openapi/openapi.json, caller.ts compiles under tsc --strict"
