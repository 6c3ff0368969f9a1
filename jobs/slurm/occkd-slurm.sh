# occkd-slurm.sh - the body shared by grid.sbatch and tasks-array.sbatch
# (sourced by them; not a batch script of its own).
#
#   occkd_slurm_run grid  job.cfg [occkd_train options, e.g. --set train.epochs=2]
#   occkd_slurm_run array job.cfg [...]     (one task per array element)
#
# What it does inside an allocation:
#   1. validates the job with `occkd_train --check` (an invalid job stops
#      here with status 2, before any rank starts) and finds its output folder;
#   2. sets OMP_NUM_THREADS and OPENBLAS_NUM_THREADS to SLURM_CPUS_PER_TASK and
#      passes --set parallel.threads=SLURM_CPUS_PER_TASK;
#   3. starts one rank per Slurm task over all nodes of the allocation, bound
#      to its cores, with srun (PMIx) or mpirun (OCCKD_LAUNCH selects);
#   4. forwards SIGUSR1 or SIGTERM that the batch shell receives (the
#      `--signal=B:USR1@120` warning before the time limit, or
#      `scancel --signal=USR1 --batch`) to the launcher, which passes it on to
#      every rank: occkd_train then writes its checkpoints and exits 0;
#   5. requeues the job (scontrol requeue) when the run stopped before
#      writing a new results.h5, so the next allocation continues where this
#      one stopped. The results equal those of one uninterrupted run.
#
# Environment (all optional):
#   OCCKD_TRAIN         occkd_train to run (default: occkd_train on PATH, else
#                       ./build/occkd_train in the submit folder)
#   OCCKD_LAUNCH        srun (default when `srun --mpi=list` offers pmix) or mpirun
#   OCCKD_SRUN_MPI      the MPI plugin srun uses (default pmix)
#   OCCKD_BIND          cores (default) or none: bind each rank to its cores
#   OCCKD_BIND_REPORT   1: the launcher prints every rank's binding
#   OCCKD_MAX_REQUEUES  stop requeueing after this many restarts (default 50)
#   OCCKD_ARRAY_OUTPUT  array mode: the folder holding one output folder per
#                       task (default <job output>/tasks)

occkd_slurm_log() { echo "occkd-slurm: $*"; }

# The occkd_train program to run.
occkd_slurm_train() {
    if [ -n "${OCCKD_TRAIN:-}" ]; then
        echo "$OCCKD_TRAIN"
    elif command -v occkd_train >/dev/null 2>&1; then
        command -v occkd_train
    elif [ -x "${SLURM_SUBMIT_DIR:-.}/build/occkd_train" ]; then
        echo "${SLURM_SUBMIT_DIR:-.}/build/occkd_train"
    else
        return 1
    fi
}

# `occkd_train --check` output -> the value after "output " on the job line.
occkd_slurm_output_of() {
    sed -n 's/^  output \(.*\), cache .*$/\1/p' | head -n 1
}

# `occkd_train --check` output -> the name of its (only) task.
occkd_slurm_task_of() {
    sed -n '/^tasks (1):$/{n;s/^ *\([^ ]*\).*$/\1/p;}' | head -n 1
}

# The launcher command line for $ntasks ranks with $cpus cores each, into
# the array LAUNCH.
occkd_slurm_launcher() {
    local how=$1 cpus=$2
    case $how in
    srun)
        LAUNCH=(srun --mpi="${OCCKD_SRUN_MPI:-pmix}" --ntasks="$SLURM_NTASKS" --cpus-per-task="$cpus" --kill-on-bad-exit=1)
        local verbose=
        [ -n "${OCCKD_BIND_REPORT:-}" ] && verbose=verbose,
        if [ "${OCCKD_BIND:-cores}" = cores ]; then
            LAUNCH+=(--cpu-bind="${verbose}cores")
        else
            LAUNCH+=(--cpu-bind="${verbose}none")
        fi
        ;;
    mpirun)
        # mpirun reads the allocation (nodes, tasks per node) from Slurm and
        # starts its daemons on the other nodes through srun.
        LAUNCH=(mpirun -np "$SLURM_NTASKS")
        # mpirun numbers the cores of the whole node: on a node shared with
        # other jobs it could bind ranks to cores Slurm gave to another job.
        # It binds only when this job has whole nodes; otherwise the ranks
        # stay on the CPUs the batch shell may use (srun binds right in both
        # cases, and --exclusive gives whole nodes).
        local node_cpus mine=${SLURM_JOB_CPUS_PER_NODE:-0}
        node_cpus=$(nproc --all)
        mine=${mine%%[(,]*}
        if [ "${OCCKD_BIND:-cores}" = cores ] && [ "$mine" -ge "$node_cpus" ]; then
            LAUNCH+=(--map-by "slot:PE=$cpus" --bind-to core)
        else
            [ "${OCCKD_BIND:-cores}" = cores ] &&
                occkd_slurm_log "mpirun: this job has $mine of the node's $node_cpus CPUs; ranks are not bound to single cores (use srun or --exclusive for that)"
            LAUNCH+=(--bind-to none)
        fi
        # -x: the thread settings reach ranks on every node
        [ -n "${OCCKD_BIND_REPORT:-}" ] && LAUNCH+=(--report-bindings)
        LAUNCH+=(-x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS)
        if [ "$(id -u)" -eq 0 ]; then
            export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
        fi
        ;;
    *)
        occkd_slurm_log "OCCKD_LAUNCH is '$how'; expected srun or mpirun"
        return 2
        ;;
    esac
}

# Runs the launcher in the background, forwards USR1/TERM to it, waits until
# it has really exited and returns its status.
occkd_slurm_launch() {
    local pid status
    "$@" &
    pid=$!
    trap 'occkd_slurm_log "signal USR1: asking the ranks to checkpoint and stop"; kill -USR1 '"$pid"' 2>/dev/null' USR1
    trap 'occkd_slurm_log "signal TERM: asking the ranks to checkpoint and stop"; kill -TERM '"$pid"' 2>/dev/null' TERM
    while :; do
        wait "$pid"
        status=$?
        # a trapped signal interrupts `wait` (status > 128) while the
        # launcher still runs: wait again for its own status
        kill -0 "$pid" 2>/dev/null || break
    done
    trap - USR1 TERM
    return "$status"
}

occkd_slurm_run() {
    local mode=$1
    shift
    if [ $# -lt 1 ]; then
        occkd_slurm_log "usage: sbatch ${mode}.sbatch job.cfg [occkd_train options such as --set key=value]"
        return 2
    fi
    if [ -z "${SLURM_JOB_ID:-}" ]; then
        occkd_slurm_log "not inside a Slurm job (submit it with sbatch)"
        return 2
    fi
    local train
    train=$(occkd_slurm_train) || {
        occkd_slurm_log "occkd_train not found: put it on PATH or set OCCKD_TRAIN"
        return 2
    }
    local cpus=${SLURM_CPUS_PER_TASK:-1}
    export OMP_NUM_THREADS=$cpus OPENBLAS_NUM_THREADS=$cpus
    local -a args=("$@" --set "parallel.threads=$cpus")

    # validate, and find where results.h5 will be
    local check output
    if [ "$mode" = array ]; then
        if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
            occkd_slurm_log "tasks-array.sbatch needs an array job (sbatch --array=0-N, one element per task)"
            return 2
        fi
        check=$("$train" --check "${args[@]}") || {
            echo "$check"
            return 2
        }
        local base=${OCCKD_ARRAY_OUTPUT:-$(echo "$check" | occkd_slurm_output_of)/tasks}
        args+=(--set "job.only_task=$SLURM_ARRAY_TASK_ID")
        check=$("$train" --check "${args[@]}") || {
            echo "$check"
            return 2
        }
        local task
        task=$(echo "$check" | occkd_slurm_task_of)
        if [ -z "$task" ] || [ -z "$base" ] || [ "$base" = /tasks ]; then
            occkd_slurm_log "cannot tell the task or the output folder from occkd_train --check"
            return 2
        fi
        output=$base/$task
        args+=(--set "job.output=$output")
        occkd_slurm_log "array element $SLURM_ARRAY_TASK_ID: task $task into $output"
    else
        check=$("$train" --check "${args[@]}") || {
            echo "$check"
            return 2
        }
        output=$(echo "$check" | occkd_slurm_output_of)
    fi
    if [ -z "$output" ]; then
        occkd_slurm_log "cannot tell the job's output folder from occkd_train --check"
        return 2
    fi

    local how=${OCCKD_LAUNCH:-}
    if [ -z "$how" ]; then
        if srun --mpi=list 2>&1 | grep -qw pmix; then how=srun; else how=mpirun; fi
    fi
    local -a LAUNCH
    occkd_slurm_launcher "$how" "$cpus" || return 2

    local restarts=${SLURM_RESTART_COUNT:-0}
    occkd_slurm_log "job $SLURM_JOB_ID (restart $restarts) on ${SLURM_JOB_NODELIST:-?}: $SLURM_NTASKS rank(s) x $cpus thread(s), launcher $how, output $output"
    # a results.h5 newer than this marker is this run's own
    local marker
    marker=$(mktemp "${TMPDIR:-/tmp}/occkd-slurm.XXXXXX") || return 1
    occkd_slurm_launch "${LAUNCH[@]}" "$train" "${args[@]}"
    local status=$?
    local finished=0
    [ -f "$output/results.h5" ] && [ "$output/results.h5" -nt "$marker" ] && finished=1
    rm -f "$marker"
    if [ $finished -eq 1 ]; then
        occkd_slurm_log "finished: $output/results.h5 (status $status)"
        return $status
    fi
    if [ $status -ne 0 ]; then
        occkd_slurm_log "occkd_train failed with status $status; not requeued"
        return $status
    fi
    if [ "$restarts" -ge "${OCCKD_MAX_REQUEUES:-50}" ]; then
        occkd_slurm_log "stopped early after $restarts restarts (OCCKD_MAX_REQUEUES); not requeued"
        return 1
    fi
    occkd_slurm_log "stopped before the end (checkpoints written): requeueing job $SLURM_JOB_ID"
    # (an array element has a job id of its own: only it is requeued)
    scontrol requeue "$SLURM_JOB_ID"
}
