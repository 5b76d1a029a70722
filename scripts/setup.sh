#!/usr/bin/env bash
# Prepares a Debian machine (Go already installed) to run every test of this
# module: a C compiler for -race, make, the Python oslo.messaging peer used by
# the interop tests, and a RabbitMQ broker listening on 127.0.0.1:5672.
#
# Idempotent: prints nothing but the summary line when everything is ready.
# A broker that is already running is used as it is: this script never stops,
# restarts or reconfigures it, with one exception: it enables the management
# plugin (rabbitmq-plugins enable, which starts the plugin in the running node
# without restarting it) so that omsg inspect can read queue statistics over
# HTTP on 127.0.0.1:15672. When the plugin cannot be enabled, setup goes on:
# omsg inspect and its tests then use AMQP instead.
#
# Environment:
#   OMSG_PYTHON             interpreter that must import oslo_messaging (default /usr/bin/python3)
#   SETUP_WAIT_SECONDS      how long to wait for RabbitMQ to accept connections (default 90)
#   SETUP_MGMT_WAIT_SECONDS how long to wait for the management API once enabled (default 30)
set -euo pipefail

PYTHON=${OMSG_PYTHON:-/usr/bin/python3}
WAIT_SECONDS=${SETUP_WAIT_SECONDS:-90}
MGMT_WAIT_SECONDS=${SETUP_MGMT_WAIT_SECONDS:-30}
AMQP_HOST=127.0.0.1
AMQP_PORT=5672
MGMT_PORT=15672

# The broker's daemon must not inherit our stdout/stderr (a pipe would then
# never reach EOF), so its start-up output goes to this file.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
START_LOG=$ROOT/.cache/rabbitmq-start.log

say() { printf 'setup: %s\n' "$*" >&2; }
die() {
	printf 'setup: error: %s\n' "$*" >&2
	exit 1
}

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run: $* (run this script as root, or install sudo)"
	fi
}

# try_root runs a read-only query as root when that needs no password.
try_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		return 1
	fi
}

have() { command -v "$1" >/dev/null 2>&1; }

python_ready() { "$PYTHON" -c 'import oslo_messaging' >/dev/null 2>&1; }

amqp_listening() {
	timeout 3 bash -c "exec 3<>/dev/tcp/$AMQP_HOST/$AMQP_PORT" >/dev/null 2>&1
}

mgmt_listening() {
	timeout 3 bash -c "exec 3<>/dev/tcp/$AMQP_HOST/$MGMT_PORT" >/dev/null 2>&1
}

# rabbitmq_node_running is true when a local node answers, even one that is
# still booting and does not accept AMQP connections yet.
rabbitmq_node_running() {
	try_root timeout 20 rabbitmq-diagnostics -q ping >/dev/null 2>&1
}

# --- Packages --------------------------------------------------------------

have go || die "go is not on PATH; install Go first"

packages=()
have make || packages+=(make)
# go downloads modules over HTTPS.
[[ -e /etc/ssl/certs/ca-certificates.crt ]] || packages+=(ca-certificates)
# go test -race needs cgo, hence a C compiler and the C library headers.
if ! have gcc || [[ ! -e /usr/include/stdlib.h ]]; then
	packages+=(gcc libc6-dev)
fi
if ! python_ready; then
	if [[ $PYTHON != /usr/bin/python3 ]]; then
		die "$PYTHON cannot import oslo_messaging; install it there, or unset OMSG_PYTHON to use Debian's python3-oslo.messaging"
	fi
	packages+=(python3-oslo.messaging)
fi
have rabbitmqctl || packages+=(rabbitmq-server)

if ((${#packages[@]} > 0)); then
	have apt-get || die "missing ${packages[*]} and apt-get is not available; install them by hand"
	say "installing Debian packages: ${packages[*]}"
	apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
	as_root "${apt[@]}" update
	as_root "${apt[@]}" install -y "${packages[@]}"
	python_ready || die "$PYTHON still cannot import oslo_messaging after installing python3-oslo.messaging"
	have rabbitmqctl || die "rabbitmqctl is still missing after installing rabbitmq-server"
fi

# --- RabbitMQ --------------------------------------------------------------

if ! amqp_listening; then
	if rabbitmq_node_running; then
		say "RabbitMQ node is running but $AMQP_HOST:$AMQP_PORT is not open yet; waiting up to ${WAIT_SECONDS}s"
	else
		say "nothing listens on $AMQP_HOST:$AMQP_PORT; starting RabbitMQ (rabbitmq-server -detached), log in $START_LOG"
		mkdir -p "$(dirname "$START_LOG")"
		as_root rabbitmq-server -detached </dev/null >>"$START_LOG" 2>&1 ||
			die "rabbitmq-server -detached failed; see $START_LOG and /var/log/rabbitmq/"
	fi
	deadline=$((SECONDS + WAIT_SECONDS))
	until amqp_listening; do
		if ((SECONDS >= deadline)); then
			node_log=$(find /var/log/rabbitmq -maxdepth 1 -name "rabbit*.log" -printf "%T@ %p\n" 2>/dev/null | sort -rn | sed -n 1p | cut -d" " -f2- || true)
			for f in "$START_LOG" /var/log/rabbitmq/startup_err /var/log/rabbitmq/startup_log ${node_log:+"$node_log"}; do
				[[ -s $f ]] && { printf -- '--- %s (last lines)\n' "$f" >&2; tail -n 20 "$f" >&2; }
			done
			die "RabbitMQ does not accept connections on $AMQP_HOST:$AMQP_PORT after ${WAIT_SECONDS}s; see /var/log/rabbitmq/"
		fi
		sleep 1
	done
	say "RabbitMQ accepts connections on $AMQP_HOST:$AMQP_PORT"
fi

# --- Management plugin -----------------------------------------------------

# Enabling an enabled plugin changes nothing, so this is idempotent; it never
# fails the setup.
management="not available (omsg inspect uses AMQP)"
if mgmt_listening; then
	management="on $AMQP_HOST:$MGMT_PORT"
else
	mkdir -p "$(dirname "$START_LOG")"
	if enable_out=$(try_root timeout 120 rabbitmq-plugins enable rabbitmq_management </dev/null 2>&1); then
		printf '%s\n' "$enable_out" >>"$START_LOG"
		if [[ $enable_out == *"unchanged"* ]]; then
			# Already enabled, yet nothing listens: configured elsewhere.
			say "the management plugin is enabled but nothing listens on $AMQP_HOST:$MGMT_PORT; omsg inspect tests will use AMQP"
		else
			say "enabled the RabbitMQ management plugin; waiting up to ${MGMT_WAIT_SECONDS}s for $AMQP_HOST:$MGMT_PORT"
			deadline=$((SECONDS + MGMT_WAIT_SECONDS))
			until mgmt_listening || ((SECONDS >= deadline)); do
				sleep 1
			done
			if mgmt_listening; then
				management="on $AMQP_HOST:$MGMT_PORT"
			else
				say "the management API does not answer on $AMQP_HOST:$MGMT_PORT after ${MGMT_WAIT_SECONDS}s; omsg inspect tests will use AMQP"
			fi
		fi
	else
		printf '%s\n' "$enable_out" >>"$START_LOG"
		say "cannot enable the RabbitMQ management plugin (see $START_LOG); omsg inspect tests will use AMQP"
	fi
fi

# --- Summary ---------------------------------------------------------------

rabbit_version=$(try_root timeout 20 rabbitmq-diagnostics -q server_version 2>/dev/null ||
	dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || true)
oslo_version=$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("oslo.messaging"))' 2>/dev/null || true)
printf 'setup: ready: RabbitMQ %s on %s:%s (management API %s), oslo.messaging %s (%s), %s\n' \
	"${rabbit_version:-unknown}" "$AMQP_HOST" "$AMQP_PORT" "$management" "${oslo_version:-unknown}" "$PYTHON" "$(go version | cut -d' ' -f3)"
