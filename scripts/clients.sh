#!/usr/bin/env bash
# The npm clients the tests run as users would (tests/test_codex.py): OpenAI's Codex CLI, pinned,
# installed into .run/clients (its Linux binary ships in the package); a no-op when current.
set -euo pipefail
cd "$(dirname "$0")/.."

CODEX_VERSION=0.169.0
DIR=.run/clients
BIN=$DIR/node_modules/.bin/codex

if [ -x "$BIN" ] && [ "$("$BIN" --version 2>/dev/null)" = "codex-cli $CODEX_VERSION" ]; then
  exit 0
fi
command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
mkdir -p "$DIR"
echo "clients: installing @openai/codex@$CODEX_VERSION into $DIR"
npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$DIR" "@openai/codex@$CODEX_VERSION"
"$BIN" --version
