#!/bin/sh
# test_quickstart.sh OCCKD_TRAIN OCCKD_REPORT JOB WORKDIR [--set key=value ...]
# The quick-start grid as the README runs it (2 ranks), optionally shrunk by
# --set options to fit the CI budget: every cell appears in
# `h5dump -d /summary`, and for each task the teacher scores worse on
# occluded than on clean faces (lower accuracy, or higher age error).
set -u
train=$1 report=$2 job=$3 work=$4
shift 4
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
fail() { echo "test_quickstart: $*"; exit 1; }
start=$(date +%s)
mpirun -np 2 "$train" --set job.output=out "$@" "$job" >run.log 2>&1 || { tail -n 40 run.log; fail "occkd_train failed"; }
echo "quick start trained in $(( $(date +%s) - start )) s"
"$report" out/results.h5 || fail "occkd_report failed"
h5dump -d /summary out/results.h5 >summary.txt || fail "h5dump cannot read /summary"
"$train" --check "$job" | sed -n 's/^  \([a-z0-9_+-]*\)\/\([a-z0-9_+-]*\)\/\([a-z0-9_+-]*\) .*/\1 \2 \3/p' >cells.txt
n=0
while read -r task model method; do
    grep -q "\"$task\"" summary.txt && grep -q "\"$model\"" summary.txt && grep -q "\"$method\"" summary.txt ||
        fail "/summary lacks $task/$model/$method"
    n=$((n + 1))
done <cells.txt
[ $n -ge 45 ] || fail "only $n cells listed by --check"
"$report" --csv out/results.h5 >r.csv || fail "occkd_report --csv failed"
judged=0
for task in $(cut -d, -f1 r.csv | sed 1d | sort -u); do
    for model in $(awk -F, -v t="$task" '$1 == t { print $2 }' r.csv | sort -u); do
        row() { awk -F, -v t="$task" -v m="$model" -v x="$1" '$1 == t && $2 == m && $3 == x { print $5, $6 }' r.csv; }
        set -- $(row teacher)
        metric=$1 clean=$2
        set -- $(row "teacher (occluded)")
        occ=$2
        # a teacher still at chance level has nothing to lose: it is reported,
        # not judged (accuracy within 1.3x chance, or an age error above 12 years)
        case $task in expression) chance=0.125 ;; gender) chance=0.5 ;; *) chance=0 ;; esac
        if [ "$metric" = mae ]; then
            learned=$(awk -v c="$clean" 'BEGIN { print (c < 12) }')
        else
            learned=$(awk -v c="$clean" -v p="$chance" 'BEGIN { print (c > 1.3 * p) }')
        fi
        if [ "$learned" != 1 ]; then
            echo "$task/$model: teacher $metric clean $clean, occluded $occ (at chance level: not judged)"
            continue
        fi
        if [ "$metric" = mae ]; then
            awk -v c="$clean" -v o="$occ" 'BEGIN { exit !(o > c) }' ||
                fail "$task/$model: teacher MAE on occluded faces $occ is not above clean $clean"
        else
            awk -v c="$clean" -v o="$occ" 'BEGIN { exit !(o < c) }' ||
                fail "$task/$model: teacher accuracy on occluded faces $occ is not below clean $clean"
        fi
        judged=$((judged + 1))
        echo "$task/$model: teacher $metric clean $clean, occluded $occ"
    done
done
[ $judged -ge 2 ] || fail "only $judged teachers learned beyond chance; the grid is too small to show anything"
echo "test_quickstart: $n cells listed in /summary; each of the $judged teachers that learned is worse on occluded faces"
