#!/bin/sh
# allreduce-wait.sh [RANKS] [WORKDIR]: the share of a training step each
# rank spends waiting for the gradient allreduce, in real training jobs of
# the benchmark's networks (layers/bench/compare.sh's workloads), and the
# same jobs on one rank with RANKS threads.
#
# Each workload becomes a one-cell job (a teacher, synthetic faces at the
# workload's size and channels, the workload's network, its batch on every
# rank, overlapped bucketed allreduce and synchronised batch norm as by
# default) trained for about 20 steps on RANKS ranks of one thread (default
# 2), then with the same global batch on one rank of RANKS threads. The last
# progress line of each gives the training images/s of the whole job and the
# allreduce wait; the targets are a wait under 5 % of the step and the two
# runs within 10 % of each other. Compare the images/s with occkd_bench's
# (compare.sh) for the training loop's own cost. Needs build/occkd_train
# (tests/run.sh or jobs/quickstart.sh builds it; --train PATH names another).
# Takes a few minutes on 2 cores. --smoke runs two tiny networks for two
# steps: a check that the script and the progress line still agree, not a
# measurement (the test allreduce_wait_smoke).
#
#   jobs/allreduce-wait.sh [--smoke] [--train PATH] [RANKS] [WORKDIR]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
smoke=0
train=$src/build/occkd_train
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) smoke=1; shift ;;
        --train) train=$2; shift 2 ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "allreduce-wait: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *) break ;;
    esac
done
np=${1:-2}
work=${2:-$src/runs/allreduce-wait}
[ -x "$train" ] || { echo "allreduce-wait: build occkd first (tests/run.sh)" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
rm -rf "$work"
mkdir -p "$work"
steps=20
log_every=5
# name|side channels batch|model settings
workloads="vgg_f 224 b32|224 3 32|arch = \"vgg_f\";
resnet50 112 b16|112 3 16|arch = \"resnet50\";
vgg_face/4 48 grey b64|48 1 64|arch = \"vgg_face\"; width = 0.25; fc = 512;
vgg_face/4 48 grey bn fc1 b64|48 1 64|arch = \"vgg_face\"; width = 0.25; fc = 512; fc_layers = 1; batchnorm = true;
resnet50/4 48 grey b64|48 1 64|arch = \"resnet50\"; width = 0.25;"
if [ "$smoke" -eq 1 ]; then
    steps=2
    log_every=1
    workloads="vgg_f 64 b4|64 3 4|arch = \"vgg_f\"; width = 0.25; fc = 64;
resnet50 32 b4|32 3 4|arch = \"resnet50\"; width = 0.125;"
fi
printf '%-30s %14s %16s %14s %8s\n' workload "${np}x1 img/s" allreduce_wait "1x$np img/s" ratio
status=0
i=0
nl='
'
IFS_SAVE=$IFS
IFS=$nl
for w in $workloads; do
    IFS=$IFS_SAVE
    i=$((i + 1))
    name=${w%%|*}
    rest=${w#*|}
    geometry=${rest%%|*}
    model=${rest#*|}
    set -- $geometry
    side=$1 channels=$2 batch=$3
    global=$((batch * np))
    # training is 70 % of the faces (validation 10 %, test 20 %)
    count=$(((global * steps * 10 + 6) / 7))
    for layout in ranks threads; do
        dir=$work/$i-$layout
        mkdir -p "$dir"
        if [ "$layout" = ranks ]; then ranks=$np threads=1; else ranks=1 threads=$np; fi
        cat >"$dir/job.cfg" <<EOF
job = { name = "allreduce-wait-$i"; output = "$dir/out"; seed = 1; };
tasks = ({ name = "expression"; target = "expression";
           data = { source = "synth"; count = $count; side = $side; channels = $channels; };
           occlusion = { kind = "vr"; fraction = 0.5; fill = "black"; }; });
models = ({ name = "net"; $model });
methods = [ "teacher" ];
train = { epochs = 1; batch = $global; lr = 0.001; eval_batch = $global; };
parallel = { groups = 1; overlap = true; threads = $threads; };
log = { every_steps = $log_every; };
EOF
        # mpirun binds a rank to one core unless told it has more
        if ! mpirun -np "$ranks" --map-by "slot:PE=$threads" "$train" "$dir/job.cfg" >"$dir/train.log" 2>&1; then
            tail -n 20 "$dir/train.log" >&2
            echo "allreduce-wait: $name ($ranks ranks of $threads threads): training failed" >&2
            status=1
        fi
        # [task/model/method] epoch 1/1 step S/N loss ... X img/s allreduce wait Y% ETA ...
        awk '/^\[.*\] epoch [0-9]+\/[0-9]+ step / {
                for (i = 2; i <= NF; i++) {
                    if ($i == "img/s") rate = $(i - 1)
                    if ($i == "wait") wait = $(i + 1)
                }
            }
            END { print (rate == "" ? "-" : rate), (wait == "" ? "-" : wait) }' "$dir/train.log" >"$dir/rate"
    done
    read -r rate wait <"$work/$i-ranks/rate"
    read -r rate1 _ <"$work/$i-threads/rate"
    ratio=$(awk -v a="$rate" -v b="$rate1" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }')
    [ "$rate" = "-" ] || [ "$rate1" = "-" ] && status=1
    printf '%-30s %14s %16s %14s %8s\n' "$name" "$rate" "$wait" "$rate1" "$ratio"
    IFS=$nl
done
IFS=$IFS_SAVE
echo "(ratio: $np ranks of one thread against one rank of $np threads; $(grep -m 1 '^occkd [0-9]' "$work/1-ranks/train.log" | sed 's/^occkd [^:]*: //'); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
exit $status
