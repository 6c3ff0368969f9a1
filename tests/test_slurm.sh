#!/bin/bash
# test_slurm.sh SOURCE_DIR BIN_DIR JOB WORKDIR
#
# A real one-node Slurm, started by this test on this machine:
#   - installs slurm-wlm and munge with apt-get when they are missing (root
#     only; exit 77, i.e. skipped, when not root or when the install fails);
#   - writes a slurm.conf and a munge key into a temporary folder and starts
#     munged, slurmctld and slurmd as root on free ports of their own (a
#     Slurm the machine already runs is never touched: other ports, other
#     sockets, other state folders);
#   - submits JOB with jobs/slurm/grid.sbatch (2 tasks) and checks results.h5;
#   - submits it again, sends the batch shell SIGUSR1 while a rank waits at
#     step 3 of a cell (the OCCKD_FAULT_AT_STEP hook)
#     (scancel --signal=USR1 --batch), and checks that the job requeued
#     itself, resumed from its checkpoints and ended with the same results as
#     the uninterrupted run (h5diff, bit for bit);
#   - runs jobs/slurm/tasks-array.sbatch as a 2-element array (one task each),
#     merges the two results.h5 with occkd_merge, and reads the merged file
#     with occkd_report;
#   - stops the daemons it started, by their process ids, also on failure.
# Both launchers are used: srun --mpi=pmix (when `srun --mpi=list` offers
# it) for the first run, mpirun for the others.
set -u
src=$1 bin=$2 job=$3 work=$4
skip() { echo "test_slurm: SKIPPED: $*"; exit 77; }
fail() { echo "test_slurm: FAILED: $*"; exit 1; }

# ------------------------------------------------------------ packages
[ "$(id -u)" -eq 0 ] || skip "needs root to run munged, slurmctld and slurmd (running as $(id -un))"
need_install=0
for prog in munged mungekey slurmctld slurmd sbatch; do
    command -v "$prog" >/dev/null 2>&1 || [ -x "/usr/sbin/$prog" ] || need_install=1
done
if [ $need_install -eq 1 ]; then
    echo "test_slurm: installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends slurm-wlm munge >"${TMPDIR:-/tmp}/occkd-slurm-apt.log" 2>&1; then
        apt-get update >/dev/null 2>&1
        apt-get install -y --no-install-recommends slurm-wlm munge >"${TMPDIR:-/tmp}/occkd-slurm-apt.log" 2>&1 ||
            { tail -n 5 "${TMPDIR:-/tmp}/occkd-slurm-apt.log"; skip "apt-get could not install slurm-wlm and munge"; }
    fi
fi
PATH=$PATH:/usr/sbin:/sbin
for prog in munged mungekey slurmctld slurmd sbatch scontrol sinfo squeue h5diff python3; do
    command -v "$prog" >/dev/null 2>&1 || skip "$prog is missing after the install"
done

# ------------------------------------------------------------ daemons
rm -rf "$work"
mkdir -p "$work" || fail "cannot create $work"
work=$(cd "$work" && pwd)
# sockets need a short path: the daemons' files live in /tmp
state=$(mktemp -d /tmp/occkd-slurm.XXXXXX) || fail "mktemp"
pids=""
cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null
    done
    for p in $pids; do
        for _ in $(seq 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    # the job's own processes (if a job was still running) belong to slurmd's
    # steps, which ended with it; the state folder goes
    rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
read -r ctld_port slurmd_port <<EOF
$(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
EOF
mkdir -p "$state/spool" "$state/ctld" "$state/munge" "$state/log"
chmod 755 "$state" "$state/munge"
mungekey --create --keyfile="$state/munge/munge.key" --force >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$state/munge/munge.key"
munged --foreground --force --socket="$state/munge/socket" --key-file="$state/munge/munge.key" \
    --pid-file="$state/munge/munged.pid" --log-file="$state/log/munged.log" --seed-file="$state/munge/seed" \
    >"$state/log/munged.out" 2>&1 &
pids="$pids $!"

conf=$state/slurm.conf
cat >"$conf" <<EOF
ClusterName=occkdtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/munge/socket
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool/slurmd-%n
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$conf
for _ in $(seq 50); do
    [ -S "$state/munge/socket" ] && break
    sleep 0.1
done
[ -S "$state/munge/socket" ] || { cat "$state/log/munged.log"; fail "munged did not start"; }
slurmctld -D -f "$conf" >"$state/log/slurmctld.out" 2>&1 &
pids="$pids $!"
slurmd -D -f "$conf" -N "$host" >"$state/log/slurmd.out" 2>&1 &
pids="$pids $!"
idle=0
for _ in $(seq 150); do
    if sinfo -h -N -o '%t' 2>/dev/null | grep -q '^idle'; then
        idle=1
        break
    fi
    sleep 0.2
done
if [ $idle -eq 0 ]; then
    sinfo -N 2>&1
    tail -n 20 "$state"/log/*
    fail "the node did not become idle"
fi
echo "test_slurm: Slurm up: node $host, $cpus CPUs, ports $ctld_port/$slurmd_port, state in $state"
echo "test_slurm: srun --mpi=list: $(srun --mpi=list 2>&1 | tr '\n' ' ')"

# ------------------------------------------------------------ jobs
cd "$work" || fail "cd $work"
if srun --mpi=list 2>&1 | grep -qw pmix; then first_launcher=srun; else first_launcher=mpirun; fi
# every run shares one data cache
common=(--set "job.cache=$work/cache")

submit() { # submit NAME LAUNCHER [sbatch options...] -- [job arguments...]
    local name=$1 launcher=$2
    shift 2
    local -a opts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    shift
    sbatch --parsable --job-name="$name" --output="$work/$name.out" \
        --export="ALL,OCCKD_TRAIN=$bin/occkd_train,OCCKD_LAUNCH=$launcher,OCCKD_BIND_REPORT=1" "${opts[@]}" "$@"
}

job_field() { # job_field ID FIELD -> its value in scontrol show job
    scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# Slurm holds a requeued job back for 120 s (its BeginTime); as the
# administrator of this test cluster, release it at once.
release_requeued() {
    local j
    for j in $(squeue -h -j "$1" -t PD -o '%i %r' 2>/dev/null | awk '$2 == "BeginTime" { print $1 }'); do
        scontrol update JobId="$j" StartTime=now && echo "test_slurm: released requeued job $j (Slurm waits 120 s)"
    done
}

wait_done() { # wait_done ID SECONDS: until the job (every array element) left the queue
    local id=$1 limit=$2 t=0
    while squeue -h -j "$id" 2>/dev/null | grep -q .; do
        release_requeued "$id"
        sleep 1
        t=$((t + 1))
        if [ $t -ge "$limit" ]; then
            squeue -j "$id"
            scancel "$id"
            return 1
        fi
    done
}

compare_runs() { # compare_runs REF OTHER: results equal bit for bit (as test_resume.sh)
    local ref=$1 other=$2 n=0 f g d
    h5diff -c "$ref/results.h5" "$other/results.h5" /summary /summary >diff.txt 2>&1 ||
        { cat diff.txt; fail "$other: /summary differs from $ref"; }
    for f in "$ref"/cells/*/*/*.h5; do
        g=$other/${f#"$ref"/}
        for d in /test/predictions /test/labels /test/probabilities; do
            h5ls "$f$d" >/dev/null 2>&1 || continue
            h5diff -c "$f" "$g" "$d" "$d" >diff.txt 2>&1 || { cat diff.txt; fail "$g $d differs"; }
        done
        n=$((n + 1))
    done
    for f in "$ref"/models/*/*/*.h5; do
        g=$other/${f#"$ref"/}
        h5diff -c "$f" "$g" /params /params >diff.txt 2>&1 || { cat diff.txt; fail "$g weights differ"; }
    done
    [ $n -gt 0 ] || fail "no cell results compared"
    echo "test_slurm: $n cells and every model of $other equal those of $ref"
}

check_binding() { # check_binding LOG LAUNCHER: each of the 2 ranks bound to a core of its own
    local log=$1 launcher=$2 masks
    if [ "$launcher" = srun ]; then
        # "cpu-bind=MASK - vm, task  1  1 [1234]: mask 0x2 set"
        masks=$(sed -n 's/^.*cpu-bind=MASK.* task *\([0-9]*\) .*: mask \(0x[0-9a-fA-F]*\) set.*$/\1 \2/p' "$log" | sort -u)
    else
        # "[vm:1234] MCW rank 1 bound to socket 0[core 1[hwt 0]]: [./B]"
        masks=$(sed -n 's/^.*MCW rank \([0-9]*\) bound to .*: \(\[.*\]\).*$/\1 \2/p' "$log" | sort -u)
    fi
    [ "$(echo "$masks" | grep -c .)" -eq 2 ] || { echo "$masks"; fail "$log: expected a core binding for ranks 0 and 1"; }
    [ "$(echo "$masks" | awk '{ print $2 }' | sort -u | grep -c .)" -eq 2 ] ||
        { echo "$masks"; fail "$log: both ranks are bound to the same cores"; }
    echo "test_slurm: $launcher bound the ranks to cores: $(echo "$masks" | tr '\n' ';')"
}

# 1. the uninterrupted run
t0=$(date +%s)
id=$(submit ref "$first_launcher" --ntasks=2 --cpus-per-task=1 -- "$src/jobs/slurm/grid.sbatch" "$job" \
    --set "job.output=$work/ref" "${common[@]}") || fail "sbatch refused grid.sbatch"
wait_done "$id" 150 || { cat ref.out; fail "job $id did not finish within 150 s"; }
cat ref.out
[ "$(job_field "$id" JobState)" = COMPLETED ] && [ "$(job_field "$id" ExitCode)" = 0:0 ] ||
    fail "job $id ended $(job_field "$id" JobState) with exit code $(job_field "$id" ExitCode)"
[ -f ref/results.h5 ] || fail "no ref/results.h5"
check_binding ref.out "$first_launcher"
grep -q "launcher $first_launcher" ref.out || fail "the job did not use the launcher $first_launcher"
grep -q "2 rank(s)" ref.out || fail "the job did not run on 2 ranks"
echo "test_slurm: uninterrupted run: $(($(date +%s) - t0)) s with $first_launcher"

# 2. signalled mid-way, requeued, continued; once through each launcher
signalled_run() { # signalled_run NAME LAUNCHER
    local name=$1 launcher=$2 id signalled=0 restarts
    # the first rank at step 3 of a cell waits there for the signal (a fault
    # hook; the mark file makes it once per test, so the requeued run does not)
    rm -f "$work/$name.pause"
    id=$(OCCKD_FAULT_AT_STEP=3 OCCKD_FAULT_ACTION=pause OCCKD_FAULT_MARK="$work/$name.pause" \
        submit "$name" "$launcher" --ntasks=2 --cpus-per-task=1 -- "$src/jobs/slurm/grid.sbatch" "$job" \
        --set "job.output=$work/$name" "${common[@]}") || fail "sbatch refused grid.sbatch"
    for _ in $(seq 600); do
        if [ -e "$work/$name.pause" ]; then
            scancel --signal=USR1 --batch "$id" && signalled=1
            break
        fi
        squeue -h -j "$id" | grep -q . || break
        sleep 0.2
    done
    [ $signalled -eq 1 ] || { cat "$name.out"; fail "could not signal job $id while it trained"; }
    echo "test_slurm: sent SIGUSR1 to the batch shell of job $id ($launcher) after $(($(date +%s) - t0)) s"
    wait_done "$id" 200 || { cat "$name.out"; fail "job $id did not finish within 200 s"; }
    cat "$name.out"
    grep -q "stopped by a signal" "$name.out" || fail "occkd_train did not stop on the forwarded SIGUSR1"
    grep -q "requeueing job $id" "$name.out" || fail "the job did not requeue itself"
    grep -q "resuming at step" "$name.out" || fail "no cell resumed from its checkpoint after the requeue"
    restarts=$(job_field "$id" Restarts)
    [ "${restarts:-0}" -ge 1 ] || fail "job $id shows Restarts=$restarts, expected a requeue"
    [ "$(job_field "$id" JobState)" = COMPLETED ] && [ "$(job_field "$id" ExitCode)" = 0:0 ] ||
        fail "job $id ended $(job_field "$id" JobState) with exit code $(job_field "$id" ExitCode)"
    compare_runs ref "$name"
    check_binding "$name.out" "$launcher"
    echo "test_slurm: $launcher: signalled, requeued and finished after $(($(date +%s) - t0)) s"
}
signalled_run usr1 "$first_launcher"
[ "$first_launcher" = mpirun ] || signalled_run usr1-mpirun mpirun

# 3. one task per array element (mpirun), merged
id=$(submit array mpirun --array=0-1 --ntasks=1 --cpus-per-task=1 --output="$work/array-%a.out" -- \
    "$src/jobs/slurm/tasks-array.sbatch" "$job" --set "job.output=$work/split" "${common[@]}") ||
    fail "sbatch refused tasks-array.sbatch"
wait_done "$id" 150 || { cat array-*.out; fail "array job $id did not finish within 150 s"; }
cat array-*.out
# each element has 1 of the node's 2 CPUs: mpirun must not bind to a core
# numbered across the whole node (it could be the other element's)
for f in array-0.out array-1.out; do
    grep -q "not bound to single cores" "$f" || fail "$f: mpirun bound ranks on a node shared with another job"
done
for task in expression age; do
    [ -f "split/tasks/$task/results.h5" ] || fail "no split/tasks/$task/results.h5"
done
"$bin/occkd_merge" --job "$job" -o merged.h5 split/tasks/*/results.h5 || fail "occkd_merge failed"
# the merged file has the rows of the whole grid's results.h5, all done
"$bin/occkd_report" --csv merged.h5 >merged.csv || fail "occkd_report --csv cannot read the merged file"
"$bin/occkd_report" --csv ref/results.h5 >ref.csv || fail "occkd_report --csv cannot read ref/results.h5"
cut -d, -f1-5 merged.csv | sort >merged.keys
cut -d, -f1-5 ref.csv | sort >ref.keys
diff ref.keys merged.keys || fail "the merged rows (task, model, method, seed, metric) differ from the whole grid's"
[ "$(grep -c ',done$' merged.csv)" -eq "$(($(wc -l <merged.csv) - 1))" ] || fail "a merged cell is not done"
echo "test_slurm: merged file has the $(($(wc -l <merged.csv) - 1)) rows of the whole grid"
"$bin/occkd_report" merged.h5 >report.txt || fail "occkd_report cannot read the merged file"
cat report.txt
grep -q '^expression ' report.txt && grep -q '^age ' report.txt || fail "the report lacks a task"
echo "test_slurm: passed in $(($(date +%s) - t0)) s"
