#!/bin/bash
# Runs two_host_pool (its path: $1) across two simulated hosts: network namespaces joined by a veth
# pair with addresses of 10.77.0.0/24, each with its own host name, and Open MPI's launch agent
# (OMPI_MCA_plm_rsh_agent) a script that starts orted in the namespace of the host it is given.
# Needs root (ip netns, unshare --uts). Everything it creates is removed on exit, failure included;
# nothing leaves the two namespaces.
set -euo pipefail

program="$(realpath "$1")"
tag="$$"
ns_a="mpA$tag" ns_b="mpB$tag" veth_a="mva$tag" veth_b="mvb$tag"
dir="$(mktemp -d /tmp/mp-two-host-XXXXXX)"

cleanup() {
  ip netns pids "$ns_a" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns pids "$ns_b" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
  ip link del "$veth_a" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# Without the right to make network namespaces (an unprivileged container) the two hosts cannot be
# simulated: say so and stop (the single-host mpi tests still run).
if ! err="$(ip netns add "$ns_a" 2>&1)"; then
  echo "two_host_pool_test: SKIPPED: cannot create a network namespace: $err"
  exit 0
fi
ip netns add "$ns_b"
ip link add "$veth_a" type veth peer name "$veth_b"
ip link set "$veth_a" netns "$ns_a"
ip link set "$veth_b" netns "$ns_b"
ip -n "$ns_a" addr add 10.77.0.1/24 dev "$veth_a"
ip -n "$ns_b" addr add 10.77.0.2/24 dev "$veth_b"
for ns in "$ns_a" "$ns_b"; do
  ip -n "$ns" link set lo up
done
ip -n "$ns_a" link set "$veth_a" up
ip -n "$ns_b" link set "$veth_b" up

# Open MPI calls the agent as: agent <host> <orted command line...>
cat > "$dir/agent" <<AGENT
#!/bin/sh
host="\$1"
shift
case "\$host" in
  hostA) ns="$ns_a" ;;
  hostB) ns="$ns_b" ;;
  *) echo "agent: unknown host \$host" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" unshare --uts /bin/sh -c 'hostname "\$0"; exec /bin/sh -c "\$1"' "\$host" "\$*"
AGENT
chmod +x "$dir/agent"

export OMPI_MCA_plm_rsh_agent="$dir/agent"
export OMPI_MCA_oob_tcp_if_include=10.77.0.0/24
export OMPI_MCA_btl_tcp_if_include=10.77.0.0/24
export OMPI_MCA_hwloc_base_binding_policy=none
export MP_MPI_HOSTS=hostA,hostB
export TMPDIR="$dir"

timeout 300 ip netns exec "$ns_a" unshare --uts /bin/sh -c 'hostname hostA; exec "$0"' "$program"
