#!/usr/bin/env bash
# System packages the test suite needs, installed when missing (CI runs as root).
# Chromium renders the HTML report in the browser tests; Java (17 or later) runs Spark
# for the engine conformance tests.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: ${need[*]} missing and cannot be installed here; the tests that need it will skip" >&2
    exit 0
fi
echo "installing system packages: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
