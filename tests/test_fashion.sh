#!/bin/sh
# test_fashion.sh OCCKD_TRAIN OCCKD_REPORT JOB WORKDIR
# The grid on real images Debian ships (Fashion-MNIST), upper half hidden:
# the teacher must score lower on occluded than on clean images, and the
# student fine-tuned on occluded images must beat the teacher on them. Prints
# the kd and triplet students with their p-values against `student`.
# Skipped (77) when dataset-fashion-mnist is not installed.
set -u
train=$1 report=$2 job=$3 work=$4
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || {
    echo "test_fashion: dataset-fashion-mnist is not installed; skipped"; exit 77; }
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mpirun -np 2 "$train" --set job.output=out "$job" >run.log 2>&1 || { cat run.log; echo "occkd_train failed"; exit 1; }
"$report" out/results.h5
"$report" --csv out/results.h5 >r.csv || exit 1
value() { awk -F, -v m="$1" '$3 == m { print $6 }' r.csv; }
pval() { awk -F, -v m="$1" '$3 == m { print $7 }' r.csv; }
clean=$(value teacher) occ=$(value "teacher (occluded)") student=$(value student)
echo "teacher clean $clean, teacher occluded $occ, student $student"
echo "kd $(value kd) (p = $(pval kd)), triplet $(value triplet) (p = $(pval triplet))"
awk -v c="$clean" -v o="$occ" 'BEGIN { exit !(o < c - 0.05) }' ||
    { echo "FAIL: the teacher is not clearly worse on occluded images ($occ vs $clean)"; exit 1; }
awk -v s="$student" -v o="$occ" 'BEGIN { exit !(s > o) }' ||
    { echo "FAIL: the student ($student) does not beat the teacher on occluded images ($occ)"; exit 1; }
echo "test_fashion: passed"
