#!/usr/bin/env bash
# A one-node SLURM cluster on localhost for the tests: munged, slurmctld and slurmd started
# directly (no systemd, no containers), with a `cpu` and a `gpu` partition and fake GPUs declared
# as generic resources, so that sbatch enforces GPU requests.
#
#   tests/slurm/cluster.sh start DIR   # state, spool and logs in DIR
#   tests/slurm/cluster.sh stop DIR
#
# The configuration goes to /etc/slurm (slurm.conf, gres.conf), where every SLURM command looks
# without SLURM_CONF: the executor plugin's job step drops SLURM_CONF before its nested srun. An
# /etc/slurm/slurm.conf that this script did not write is left alone, and the start refused.
# Needs Debian's slurmctld, slurmd, slurm-client and munge, and root (slurmd runs jobs as their user).
set -euo pipefail

command=${1:?usage: cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: cluster.sh start|stop DIR}")
gpus=${GRADUAL_TEST_GPUS:-2}
etc=/etc/slurm
mark="# written by gradual-learning's tests/slurm/cluster.sh"

stop() {
    # The daemons of the cluster this script configured (it refuses to start over anyone else's).
    pkill -x slurmd || true
    pkill -x slurmctld || true
    for _ in $(seq 50); do
        pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || break
        sleep 0.1
    done
    # Without a controller, a slurm.conf makes every SLURM command (and so every start of the
    # executor plugin, which asks scontrol at import) wait 10 s for it: leave none behind.
    if [ -f "$etc/slurm.conf" ] && grep -qxF "$mark" "$etc/slurm.conf"; then
        rm -f "$etc/slurm.conf" "$etc/gres.conf"
    fi
}

start() {
    if [ -f "$etc/slurm.conf" ] && ! grep -qxF "$mark" "$etc/slurm.conf"; then
        echo "$etc/slurm.conf is not this script's: refusing to replace it" >&2
        exit 1
    fi
    stop
    mkdir -p "$dir"/{state,spool,log,munge,dev} "$etc"
    host=$(hostname -s)
    cpus=$(nproc)
    # What slurmd sees, less 1 GB for the system (slurmd drains a node that claims more than it has).
    memory=$(( $(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p') - 1024 ))

    # One character device per fake GPU: gres counts devices (File=/dev/null alone is one GPU).
    for i in $(seq 0 $((gpus - 1))); do
        [ -e "$dir/dev/gpu$i" ] || mknod "$dir/dev/gpu$i" c 1 3
    done

    cat > "$etc/slurm.conf" <<CONF
$mark
ClusterName=gradual-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default every job takes the node's whole memory and jobs run one at a time.
DefMemPerCPU=$(( memory / cpus / 2 ))
GresTypes=gpu
# No accounting storage: jobs are polled with squeue, which sees a finished job for MinJobAge seconds
# (long enough for the tests to read every job of a run with scontrol).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
KillWait=5
InactiveLimit=0
NodeName=$host CPUs=$cpus RealMemory=$memory Gres=gpu:$gpus State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
CONF
    echo "NodeName=$host Name=gpu File=$dir/dev/gpu[0-$((gpus - 1))]" > "$etc/gres.conf"
    # munged refuses to run as root without --force; its socket goes where the clients look for it.
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        mkdir -p /run/munge
        munged --force --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
    fi
    slurmctld -i
    slurmd
    for _ in $(seq 150); do
        if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
            echo "SLURM is up: $(sinfo -h -o '%P' | tr '\n' ' ')"
            return
        fi
        sleep 0.2
    done
    echo "SLURM did not come up; see $dir/log" >&2
    sinfo >&2 || true
    exit 1
}

case "$command" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: cluster.sh start|stop DIR" >&2; exit 2 ;;
esac
