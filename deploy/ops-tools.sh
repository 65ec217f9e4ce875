#!/usr/bin/env bash
# Install the operations tools the ops tests need, only when they are missing:
#   promtool + prometheus      (Debian package: prometheus, 2.42 on bookworm)
#   amtool + alertmanager      (Debian package: prometheus-alertmanager, 0.25 on bookworm)
#   chromium                   (Debian package: chromium, for the browser test of the dashboard)
#
# Idempotent: a second run does nothing and touches no network. Safe to call from CI
# (`bash deploy/ops-tools.sh`) before `pytest -m ops`. Needs root (or sudo) and apt.
set -euo pipefail

want=()
command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || want+=(prometheus)
command -v amtool >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1 \
	|| want+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || want+=(chromium)

if [ "${#want[@]}" -eq 0 ]; then
	echo "ops-tools: promtool, amtool and chromium are already installed"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null 2>&1; then
	sudo=(sudo)
else
	echo "ops-tools: need root or sudo to install: ${want[*]}" >&2
	exit 1
fi

echo "ops-tools: installing ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null

# Note: on a machine with an init system the Debian packages also start a system Prometheus
# and Alertmanager on 9090/9093; the tests start their own on free loopback ports instead.
for tool in promtool amtool chromium; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "ops-tools: $tool still missing after install" >&2
		exit 1
	}
done
echo "ops-tools: $(promtool --version 2>&1 | head -n1)"
echo "ops-tools: $(amtool --version 2>&1 | head -n1)"
echo "ops-tools: $(chromium --version 2>/dev/null | head -n1)"
