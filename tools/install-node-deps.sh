#!/bin/sh
# Installs the test-only npm packages into spec/helpers/node/node_modules
# from the committed lockfile: Nodemailer's mailparser (used by
# spec/unit/message_parse_back_spec.lua) and smtp-server (the XOAUTH2
# server of spec/interop/oauth_refresh_spec.lua). Without node/npm it says
# so and succeeds: those cases are then reported as pending by busted.
set -eu
cd "$(dirname "$0")/../spec/helpers/node"
if ! command -v npm >/dev/null 2>&1; then
  echo "node-deps: npm not found; mailparser and smtp-server tests will be pending"
  exit 0
fi
if [ -f node_modules/mailparser/package.json ] && [ -f node_modules/smtp-server/package.json ]; then
  echo "node-deps: mailparser and smtp-server present"
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "node-deps: mailparser and smtp-server installed"
