#!/bin/sh
# make demo: run the demo script against the freshly built module.
set -eu
cd "$(dirname "$0")/.."
exec lua5.4 tools/demo.lua
