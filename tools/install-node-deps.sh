#!/bin/sh
# Installs the test-only npm packages (Nodemailer's mailparser, used by
# spec/unit/message_parse_back_spec.lua) into spec/helpers/node/node_modules
# from the committed lockfile. Without node/npm it says so and succeeds:
# the mailparser cases are then reported as pending by busted.
set -eu
cd "$(dirname "$0")/../spec/helpers/node"
if ! command -v npm >/dev/null 2>&1; then
  echo "node-deps: npm not found; mailparser parse-back tests will be pending"
  exit 0
fi
if [ -f node_modules/mailparser/package.json ]; then
  echo "node-deps: mailparser present"
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "node-deps: mailparser installed"
