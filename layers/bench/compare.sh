#!/bin/sh
# Side by side: occkd_bench and PyTorch (torch_bench.py, the same networks
# with the same parameter counts) on the benchmark workloads, in one run, as
# one table: images/s of both, their ratio, occkd's training GFLOP/s and
# that of its convolutions alone, the sgemm GFLOP/s of the same run and the
# BLAS core; then the targets that a run misses (1.5x PyTorch, 2 threads
# 1.7x one, the convolutions of vgg_f 224 and resnet50 112 at 60% of sgemm).
#
#   layers/bench/compare.sh [--bench PATH/occkd_bench] [--threads T] [--steps N] [--repeat R] [--smoke]
#
# Each side runs R times (default 1), alternating, and the best images/s
# counts (a shared machine only ever slows a run down). Both also run on one
# thread: occkd's images/s there and the ratio of T threads to one, and a
# second table of both sides' CPU time per step on one thread (which other
# jobs on the machine disturb least).
# --smoke runs tiny sizes for a few steps (a check that both sides run and
# agree on parameter counts, not a measurement). PyTorch is Debian's
# (python3-torch; /usr/bin/python3 unless PYTHON is set); without it the
# PyTorch columns are skipped with a message (--smoke then exits 77, a
# skip for ctest). Exits 1 when a side fails or the parameter counts differ.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bench=""
threads=2
steps=10
repeat=1
smoke=0
while [ $# -gt 0 ]; do
    case "$1" in
        --bench) bench=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        --smoke) smoke=1; shift ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$bench" ]; then
    for b in "$here/../../build/occkd_bench" "$here/../../build-g/occkd_bench"; do
        [ -x "$b" ] && bench=$b && break
    done
fi
[ -n "$bench" ] && [ -x "$bench" ] || { echo "compare: no occkd_bench (give --bench PATH)" >&2; exit 2; }
python=${PYTHON:-/usr/bin/python3}
have_torch=1
if ! "$python" -c "import torch" >/dev/null 2>&1; then
    have_torch=0
    echo "compare: PyTorch not found for $python (apt-get install python3-torch); occkd only"
    # the smoke run checks both sides against each other: nothing to check (77: skipped, for ctest)
    [ "$smoke" -eq 1 ] && exit 77
fi

# name|arguments of both programs
if [ "$smoke" -eq 1 ]; then
    steps=2
    workloads="vgg_f 64 b4|--model vgg_f --input 64 --width 0.25 --fc 128 --classes 7 --batch 4
resnet50 32 b4|--model resnet50 --input 32 --width 0.125 --classes 7 --batch 4
vgg_face/8 32 grey b4|--model vgg_face --input 32 --channels 1 --width 0.125 --fc 64 --classes 7 --batch 4
vgg_face/8 32 grey bn fc1 b4|--model vgg_face --input 32 --channels 1 --width 0.125 --fc 64 --fc-layers 1 --batchnorm --classes 8 --batch 4"
    warmup=1
else
    workloads="vgg_f 224 b32|--model vgg_f --input 224 --batch 32
resnet50 112 b16|--model resnet50 --input 112 --batch 16
vgg_face/4 48 grey b64|--model vgg_face --input 48 --channels 1 --width 0.25 --fc 512 --classes 7 --batch 64
vgg_face/4 48 grey bn fc1 b64|--model vgg_face --input 48 --channels 1 --width 0.25 --fc 512 --fc-layers 1 --batchnorm --classes 8 --batch 64
resnet50/4 48 grey b64|--model resnet50 --input 48 --channels 1 --width 0.25 --classes 7 --batch 64"
    warmup=2
fi

field() { echo "$2" | sed -n "s/^$1: //p" | head -1; }
best() { awk "BEGIN { print ($1 > $2) ? $1 : $2 }"; }
greater() { awk "BEGIN { exit !($1 > $2) }"; }
below() { [ "$1" != "-" ] && awk "BEGIN { exit !($1 < $2) }"; } # a figure ("-": none) under a target
least() { awk "BEGIN { print ($1 == 0 || $2 < $1) ? $2 : $1 }"; } # 0: none yet

echo "threads $threads, steps $steps (+$warmup warm-up), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
rows=""
missed=""
cpu_rows=""
status=0
core=""
nl='
'
IFS_SAVE=$IFS
IFS=$nl
for w in $workloads; do
    IFS=$IFS_SAVE
    name=${w%%|*}
    args=${w#*|}
    o_ips=0
    o_gf=0
    o_cv=0
    sg=0
    o1_ips=0
    o1_cpu=0
    t1_cpu=0
    t_ips=0
    r=0
    while [ $r -lt "$repeat" ]; do
        r=$((r + 1))
        # shellcheck disable=SC2086
        out=$("$bench" $args --steps "$steps" --warmup "$warmup" --threads "$threads" 2>&1) || {
            echo "compare: occkd_bench failed on $name:$nl$out" >&2; status=1; break; }
        ips=$(field train_images_per_s "$out")
        o_params=$(field params "$out")
        if greater "$ips" "$o_ips"; then # GFLOP/s and sgemm of the best run
            o_ips=$ips
            o_gf=$(field train_gflops_per_s "$out")
            o_cv=$(field conv_gflops_per_s "$out")
            sg=$(field sgemm_gflops_per_s "$out")
        fi
        core=$(field blas_core "$out")
        if [ "$threads" -ne 1 ]; then
            # shellcheck disable=SC2086
            out1=$("$bench" $args --steps "$steps" --warmup "$warmup" --threads 1 2>&1) || {
                echo "compare: occkd_bench failed on $name, 1 thread:$nl$out1" >&2; status=1; break; }
            o1_ips=$(best "$o1_ips" "$(field train_images_per_s "$out1")")
            o1_cpu=$(least "$o1_cpu" "$(field train_cpu_ms_per_step "$out1")")
        fi
        [ "$have_torch" -eq 1 ] || continue
        # shellcheck disable=SC2086
        tout=$("$python" "$here/torch_bench.py" $args --steps "$steps" --warmup "$warmup" --threads "$threads" 2>&1) || {
            echo "compare: torch_bench.py failed on $name:$nl$tout" >&2; status=1; break; }
        t_ips=$(best "$t_ips" "$(field train_images_per_s "$tout")")
        if [ "$threads" -ne 1 ]; then
            # shellcheck disable=SC2086
            tout1=$("$python" "$here/torch_bench.py" $args --steps "$steps" --warmup "$warmup" --threads 1 2>&1) || {
                echo "compare: torch_bench.py failed on $name, 1 thread:$nl$tout1" >&2; status=1; break; }
            t1_cpu=$(least "$t1_cpu" "$(field train_cpu_ms_per_step "$tout1")")
        fi
        t_params=$(field params "$tout")
        if [ "$t_params" != "$o_params" ]; then
            echo "compare: $name: parameter counts differ (occkd $o_params, PyTorch $t_params)" >&2
            status=1
        fi
    done
    ratio="-"
    [ "$have_torch" -eq 1 ] && ratio=$(awk "BEGIN { if ($t_ips > 0) printf \"%.2f\", $o_ips / $t_ips; else print \"-\" }")
    scale="-"
    [ "$threads" -ne 1 ] && scale=$(awk "BEGIN { if ($o1_ips > 0) printf \"%.2f\", $o_ips / $o1_ips; else print \"-\" }")
    conv_share=$(awk "BEGIN { if ($sg > 0) printf \"%.0f%%\", 100 * $o_cv / $sg; else print \"-\" }")
    rows="$rows$(printf '%-30s %10s %12s %11s %6s %10s %6s %10s %10s %7s %10s %5s' "$name" "$o_params" "$t_ips" \
        "$o_ips" "$ratio" "$o1_ips" "$scale" "$o_gf" "$o_cv" "$conv_share" "$sg" "$(cut -d' ' -f1 /proc/loadavg)")$nl"
    # the targets: 1.5x PyTorch, 2 threads 1.7x one, convolutions at 60 % of sgemm (vgg_f 224, resnet50 112)
    below "$ratio" 1.5 && missed="$missed$nl  $name: $ratio x PyTorch (target 1.5)"
    below "$scale" 1.7 && missed="$missed$nl  $name: $threads threads $scale x one (target 1.7)"
    case "$name" in
        "vgg_f 224 b32"|"resnet50 112 b16")
            below "$o_cv" "0.6 * $sg" && missed="$missed$nl  $name: convolutions at $conv_share of sgemm (target 60%)" ;;
    esac
    cpu_ratio=$(awk "BEGIN { if ($o1_cpu > 0 && $t1_cpu > 0) printf \"%.2f\", $t1_cpu / $o1_cpu; else print \"-\" }")
    cpu_rows="$cpu_rows$(printf '%-30s %14s %14s %6s' "$name" "$t1_cpu" "$o1_cpu" "$cpu_ratio")$nl"
    IFS=$nl
done
IFS=$IFS_SAVE
printf '\n%-30s %10s %12s %11s %6s %10s %6s %10s %10s %7s %10s %5s\n' workload params torch_img/s occkd_img/s \
    ratio 1t_img/s Tt/1t occkd_GF/s conv_GF/s conv/sg sgemm_GF/s load
printf '%s' "$rows"
if [ "$threads" -ne 1 ]; then
    # CPU time on one thread: what other jobs on a shared machine disturb least
    printf '\none thread, CPU ms per step (best of %s):\n%-30s %14s %14s %6s\n' "$repeat" workload torch_cpu_ms \
        occkd_cpu_ms ratio
    printf '%s' "$cpu_rows"
fi
echo "BLAS core: $core"
if [ "$smoke" -eq 0 ]; then
    if [ -n "$missed" ]; then
        echo "targets not met:$missed"
    else
        echo "targets: all met (1.5x PyTorch, $threads threads 1.7x one, convolutions at 60% of sgemm)"
    fi
fi
exit $status
