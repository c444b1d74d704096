#!/usr/bin/env bash
# Train one config on several processes with PyTorch's own launcher, torchrun:
#
#   tools/dist_train.sh CONFIG NUM_PROCS [tools/train.py options...]
#
# NUM_PROCS is the number of processes on this machine (one per GPU; any number on CPU).
# The options after it go to tools/train.py, which gets --launcher pytorch from here.
#
# One machine: a free port is picked automatically (torchrun --standalone), so several jobs
# can run side by side; set PORT=29500 to use a fixed one.
# Several machines: run the same command on every machine with
#   NNODES=<machines> NODE_RANK=<0..NNODES-1> MASTER_ADDR=<address of machine 0> PORT=<free port>
# Environment: PYTHON names the interpreter (default: python).
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NUM_PROCS [tools/train.py options...]" >&2
    exit 2
fi
CONFIG=$1
NUM_PROCS=$2
shift 2
case "$NUM_PROCS" in
    '' | *[!0-9]* | 0)
        echo "$0: NUM_PROCS must be a positive integer (processes on this machine), got '$NUM_PROCS'" >&2
        exit 2
        ;;
esac

PYTHON=${PYTHON:-python}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ "$NNODES" = 1 ] && [ -z "${PORT:-}" ]; then
    RENDEZVOUS=(--standalone)
else
    RENDEZVOUS=(--nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --master_port="${PORT:-29500}")
fi

exec "$PYTHON" -m torch.distributed.run "${RENDEZVOUS[@]}" --nproc_per_node="$NUM_PROCS" \
    "$TOOLS_DIR/train.py" "$CONFIG" --launcher pytorch "$@"
