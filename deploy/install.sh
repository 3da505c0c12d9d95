#!/bin/sh
# Installs what runs of a built switchyard checkout (SRC, after `npm ci` and `npm run build`) into
# DEST: package.json, the lockfile, bin/ and dist/, then the production dependencies only, from
# the lockfile. The image's build stage runs it (deploy/Dockerfile), and so does
# test/deploy/image.test.ts on this machine (with NPM_FLAGS=--offline), so the two cannot drift.
set -eu
SRC=${1:?usage: install.sh SRC DEST}
DEST=${2:?usage: install.sh SRC DEST}
mkdir -p "$DEST"
cp "$SRC/package.json" "$SRC/package-lock.json" "$DEST/"
cp -R "$SRC/bin" "$SRC/dist" "$DEST/"
cd "$DEST"
# --ignore-scripts: the production dependencies need none, and `prepare` (the build) is done.
npm ci --omit=dev --ignore-scripts --no-audit --no-fund ${NPM_FLAGS:-}
node bin/switchyard.js --version
