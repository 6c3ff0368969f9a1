#!/bin/sh
# test_faults.sh OCCKD_TRAIN JOB WORKDIR
#
# The fault matrix: a short grid (2 ranks in 2 groups) through each fault,
# then, for each, the exit status, the message, that no finished result was
# lost or changed, and that a rerun ends with /summary, every cell's
# predictions and every model bit for bit those of an uninterrupted run.
# Faults come from the step-count hooks (OCCKD_FAULT_*), never from timing:
#   kill-commit    SIGKILL of rank 0 inside a checkpoint write (before the rename)
#   kill-cell      SIGKILL of a rank between two cells
#   kill-rank      SIGKILL of one rank in the middle of training steps
#   kill-job       SIGKILL of every rank while one waits at step 4
#   stop-rank      SIGSTOP of one rank; the watchdog (4 s) ends the job, status 3
#   usr1-launcher  SIGUSR1 to mpirun: forwarded, checkpoint, status 0
#   term-launcher  SIGTERM to mpirun: forwarded, checkpoint; mpirun itself exits 1
#   term-rank      SIGTERM to one rank: checkpoint, status 0
#   usr1-ranks     SIGUSR1 to every rank: checkpoint, status 0
#   full-ckpt      the output on a full file system: "No space left on device", status 1
#   full-cache     the data cache on a full file system: the same words
#   read-only      the output on a read-only file system: refused before training
#   huge           epochs = 2^31 - 1: no memory reserved per epoch (VmPeak < 4 GiB)
#   corrupt        a damaged checkpoint: refused naming it (status 2), then deleted
#   blind          one rank sees none of the output's files: the group leader decides
# (A second run into a running job's output is tests/test_output.sh.) The
# file-system cases need root to mount a small tmpfs; without it they are
# skipped with a message.
set -u
train=$1 job=$2 work=$3
. "$(dirname "$0")/e2e.sh"
e2e_start test_faults "$work"
mnt=$work/mnt
cleanup() {
    for m in "$mnt"/*; do
        mountpoint -q "$m" 2>/dev/null && umount "$m"
    done
}
trap cleanup EXIT

launch() { # launch OUTPUT LOG [VAR=value ...] [-- occkd arguments]: mpirun in the background, $pid
    out=$1 log=$2
    shift 2
    vars=""
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        vars="$vars $1"
        shift
    done
    [ $# -gt 0 ] && shift
    # shellcheck disable=SC2086
    env $vars mpirun -np 2 "$train" --set "job.output=$out" --set job.cache=cache "$@" "$job" >"$log" 2>&1 &
    pid=$!
}
run() { # run OUTPUT LOG [VAR=value ...] [-- args]: in the foreground, $status
    launch "$@"
    wait $pid
    status=$?
}
wait_mark() { # wait_mark FILE: until a rank has written it (or the run ended)
    for _ in $(seq 1200); do
        [ -s "$1" ] && return 0
        kill -0 $pid 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
snapshot() { # snapshot OUTPUT: the checksums of its finished cell results
    (cd "$1" 2>/dev/null && find cells -name '*.h5' | sort | xargs -r md5sum) >"$1.cells"
}
kept() { # kept OUTPUT: every cell result finished before the fault is still there, unchanged
    [ -s "$1.cells" ] || return 0
    (cd "$1" && md5sum -c --quiet "../$1.cells") || fail "$1: a finished cell result was lost or changed"
}
same_as_ref() { # same_as_ref OUTPUT [REFERENCE]
    r=${2:-ref}
    h5diff "$r/results.h5" "$1/results.h5" /summary /summary >diff.txt 2>&1 || { cat diff.txt; fail "$1: /summary differs"; }
    for f in "$r"/cells/*/*/*.h5; do
        g=$1/${f#"$r"/}
        h5diff "$f" "$g" /test/predictions /test/predictions >diff.txt 2>&1 || { cat diff.txt; fail "$g: predictions differ"; }
    done
    for f in "$r"/models/*/*/*.h5; do
        g=$1/${f#"$r"/}
        h5diff "$f" "$g" /params /params >diff.txt 2>&1 || { cat diff.txt; fail "$g: weights differ"; }
    done
}
finish() { # finish NAME: rerun without faults; the same numbers as the uninterrupted run
    snapshot "$1"
    run "$1" "$1-rerun.log"
    [ $status -eq 0 ] || { cat "$1-rerun.log"; fail "$1: the rerun exited $status"; }
    kept "$1"
    same_as_ref "$1"
    echo "test_faults: $1: rerun equals the uninterrupted run"
}
expect() { # expect NAME STATUS WORDS: the faulted run's status and message
    [ "$status" -eq "$2" ] || { cat "$1.log"; fail "$1: exit status $status, expected $2"; }
    grep -q -- "$3" "$1.log" || { cat "$1.log"; fail "$1: no '$3' in the output"; }
    echo "test_faults: $1: status $status, '$3'"
}
signalled() { # signalled NAME SIGNAL WHOM STATUS: pause a rank at step 3, signal, check
    rm -f "$1.mark"
    launch "$1" "$1.log" OCCKD_FAULT_AT_STEP=3 OCCKD_FAULT_ACTION=pause "OCCKD_FAULT_MARK=$1.mark"
    wait_mark "$1.mark" || { cat "$1.log"; fail "$1: no rank reached step 3"; }
    case $3 in
    launcher) kill "-$2" $pid ;;
    rank) kill "-$2" "$(cat "$1.mark")" ;;
    ranks) pkill "-$2" -P $pid -f occkd_train ;;
    esac
    wait $pid
    status=$?
    expect "$1" "$4" "stopped by a signal"
    finish "$1"
}

run ref ref.log
[ $status -eq 0 ] || { cat ref.log; fail "the uninterrupted run failed"; }

# ------------------------------------------------------------------ kills
run kill-commit kill-commit.log OCCKD_FAULT_KILL_COMMIT=4
[ $status -ne 0 ] || fail "kill-commit: the run survived its fault"
grep -q "killed before renaming" kill-commit.log || { cat kill-commit.log; fail "kill-commit: the fault did not fire"; }
finish kill-commit

run kill-cell kill-cell.log OCCKD_FAULT_KILL_AFTER_CELL=2
[ $status -ne 0 ] || fail "kill-cell: the run survived its fault"
grep -q "killed after cell 2" kill-cell.log || { cat kill-cell.log; fail "kill-cell: the fault did not fire"; }
n=$(find kill-cell/cells -name '*.h5' | wc -l)
[ "$n" -ge 2 ] || fail "kill-cell: $n cell results survived a kill after the second cell, expected 2 or more"
finish kill-cell

run kill-rank kill-rank.log OCCKD_FAULT_AT_STEP=5 OCCKD_FAULT_ACTION=kill OCCKD_FAULT_MARK=kill-rank.mark
[ $status -ne 0 ] || fail "kill-rank: the run survived its fault"
grep -q "killed at step 5" kill-rank.log || { cat kill-rank.log; fail "kill-rank: the fault did not fire"; }
finish kill-rank

launch kill-job kill-job.log OCCKD_FAULT_AT_STEP=4 OCCKD_FAULT_ACTION=pause OCCKD_FAULT_MARK=kill-job.mark
wait_mark kill-job.mark || { cat kill-job.log; fail "kill-job: no rank reached step 4"; }
pkill -KILL -P $pid -f occkd_train
wait $pid
status=$?
[ $status -ne 0 ] || fail "kill-job: mpirun exited 0 after its ranks were killed"
echo "test_faults: kill-job: status $status"
finish kill-job

# ------------------------------------------------- a stalled rank
launch stop-rank stop-rank.log OCCKD_FAULT_AT_STEP=3 OCCKD_FAULT_ACTION=pause OCCKD_FAULT_MARK=stop-rank.mark \
    -- --set parallel.watchdog_seconds=4
wait_mark stop-rank.mark || { cat stop-rank.log; fail "stop-rank: no rank reached step 3"; }
stopped=$(cat stop-rank.mark)
kill -STOP "$stopped"
wait $pid
status=$?
kill -KILL "$stopped" 2>/dev/null
expect stop-rank 3 "watchdog"
finish stop-rank

# ---------------------------------------------------------------- signals
signalled usr1-launcher USR1 launcher 0
# mpirun forwards SIGTERM to the ranks, which checkpoint and stop, but it
# reports the job as signalled (status 1); the Slurm scripts forward SIGTERM
# as SIGUSR1 to stay at 0 (README, exit codes)
signalled term-launcher TERM launcher 1
signalled term-rank TERM rank 0
signalled usr1-ranks USR1 ranks 0

# ------------------------------------------------------ a huge epoch count
# nothing is reserved per epoch up front: at epochs = 2^31 - 1 a rank's
# virtual memory at step 2 stays that of a small job
launch huge huge.log OCCKD_FAULT_AT_STEP=2 OCCKD_FAULT_ACTION=pause OCCKD_FAULT_MARK=huge.mark -- \
    --set train.epochs=2147483647
wait_mark huge.mark || { cat huge.log; fail "huge: no rank reached step 2"; }
peak=$(awk '/^VmPeak:/ { print $2 }' "/proc/$(cat huge.mark)/status")
kill -USR1 $pid
wait $pid
[ "${peak:-0}" -gt 0 ] && [ "$peak" -lt 4194304 ] || fail "huge: VmPeak ${peak:-?} kB at epochs 2^31 - 1"
echo "test_faults: huge: epochs 2147483647, VmPeak $((peak / 1024)) MiB at step 2"

# ------------------------------------------------- a damaged checkpoint
# refused by its checksum before anything trains, naming the file and saying
# to delete it; once deleted, the cell trains from its start
run corrupt corrupt-a.log OCCKD_FAULT_AT_STEP=5 OCCKD_FAULT_ACTION=kill OCCKD_FAULT_MARK=corrupt.mark
# the checkpoint of the cell the kill left unfinished (no result file yet)
ck=
for f in $(find corrupt/checkpoints -name '*.h5' | sort); do
    r=corrupt/cells/${f#corrupt/checkpoints/}
    [ -e "$r" ] || { ck=$f; break; }
done
[ -n "$ck" ] || fail "corrupt: no checkpoint of an unfinished cell to damage"
printf 'XXXXXXXXXXXXXXXX' | dd of="$ck" bs=1 seek=100 conv=notrunc 2>/dev/null
run corrupt corrupt.log
expect corrupt 2 "$ck"
grep -q "delete the files named" corrupt.log || { cat corrupt.log; fail "corrupt: no advice to delete the file"; }
grep -q "infinite loop\|Segmentation fault" corrupt.log && fail "corrupt: HDF5 broke down at exit"
rm "$ck"
finish corrupt

# ---------------------------------------------- the group leader decides
# one group of 2 ranks; rank 1 sees none of the output's files (as behind a
# stale attribute cache): the rerun must follow the leader, skip the
# finished cells, resume the checkpointed one, and end as an uninterrupted run
run ref1 ref1.log -- --set parallel.groups=1
[ $status -eq 0 ] || { cat ref1.log; fail "the one-group reference failed"; }
run blind blind-a.log OCCKD_FAULT_KILL_AFTER_CELL=2 -- --set parallel.groups=1
run blind blind-b.log OCCKD_FAULT_AT_STEP=5 OCCKD_FAULT_ACTION=kill OCCKD_FAULT_MARK=blind.mark -- --set parallel.groups=1
grep -q "killed at step 5" blind-b.log || { cat blind-b.log; fail "blind: the step fault did not fire"; }
run blind blind.log OCCKD_FAULT_BLIND_RANK=1 -- --set parallel.groups=1 --set parallel.watchdog_seconds=30
[ $status -eq 0 ] || { cat blind.log; fail "blind: a rank that sees no files broke the rerun (status $status)"; }
grep -q "resuming at step" blind.log || { cat blind.log; fail "blind: the checkpointed cell did not resume"; }
[ "$(grep -c 'training:' blind.log)" -lt 10 ] || fail "blind: finished cells trained again"
same_as_ref blind ref1
echo "test_faults: blind: a rank blind to the file system follows its leader; equal to the uninterrupted run"

# ------------------------------------------------------------ file systems
small_fs() { # small_fs NAME SIZE [ro]: a tmpfs at $mnt/NAME; 1 when it cannot be mounted
    mkdir -p "$mnt/$1"
    mount -t tmpfs -o "size=$2${3:+,$3}" tmpfs "$mnt/$1" 2>/dev/null
}
if small_fs ckpt 300k; then
    out=$mnt/ckpt/out
    run "$out" full-ckpt.log
    expect full-ckpt 1 "No space left on device"
    grep -q "Segmentation fault\|infinite loop" full-ckpt.log && fail "full-ckpt: HDF5 crashed"
    mount -o remount,size=64m "$mnt/ckpt"
    run "$out" full-ckpt-rerun.log
    [ $status -eq 0 ] || { cat full-ckpt-rerun.log; fail "full-ckpt: the rerun with space exited $status"; }
    same_as_ref "$out"
    echo "test_faults: full-ckpt: rerun with space equals the uninterrupted run"

    small_fs cache 40k || fail "cannot mount a second tmpfs"
    mpirun -np 2 "$train" --set job.output=full-cache --set "job.cache=$mnt/cache" "$job" >full-cache.log 2>&1
    status=$?
    [ $status -ne 0 ] || fail "full-cache: the run succeeded on a full cache folder"
    grep -q "No space left on device" full-cache.log || { cat full-cache.log; fail "full-cache: no 'No space left on device'"; }
    grep -q "training:" full-cache.log && fail "full-cache: cells trained without their data"
    echo "test_faults: full-cache: status $status, 'No space left on device'"

    small_fs ro 1m ro || fail "cannot mount a read-only tmpfs"
    run "$mnt/ro/out" read-only.log
    expect read-only 1 "Read-only file system"
    grep -q "training:" read-only.log && fail "read-only: cells trained before the output was found unwritable"
else
    echo "test_faults: cannot mount a tmpfs here (not root?): the file-system cases are skipped"
fi
echo "test_faults: passed"
