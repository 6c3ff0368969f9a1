#!/bin/sh
# test_stale.sh OCCKD_TRAIN JOB WORKDIR
#
# Nothing stale or foreign is reused, nothing finished overwritten:
#   - a finished run rerun with other settings (--set, or an edited job file)
#     is refused before anything trains (status 2), naming the changed
#     settings, and its results.h5 stays as it was;
#   - adding a model to the job trains only the new model's cells;
#   - another cell's result or checkpoint copied over a cell's is refused,
#     naming the cell that wrote it.
set -u
train=$1 job=$2 work=$3
. "$(dirname "$0")/e2e.sh"
e2e_start test_stale "$work"
run() { # run LOG [--set ...]
    log=$1
    shift
    mpirun -np 2 "$train" --set job.output=out --set job.cache=cache "$@" "$job" >"$log" 2>&1
}
run first.log || { cat first.log; fail "the first run failed"; }
sum=$(md5sum out/results.h5)

# 1. other settings
run changed.log --set train.epochs=3 --set train.lr=0.05
status=$?
[ $status -eq 2 ] || { cat changed.log; fail "a rerun with other settings exited $status, expected 2"; }
grep -q "train.epochs: 2 in the file, 3 now; train.lr: 0.01 in the file, 0.05 now" changed.log ||
    { cat changed.log; fail "the changed settings are not named"; }
grep -q "training:" changed.log && fail "cells trained with other settings over finished ones"
[ "$(md5sum out/results.h5)" = "$sum" ] || fail "results.h5 was rewritten"
# an edited job file is the same
sed 's/lr = 0.01;/lr = 0.02;/' "$job" >edited.cfg
mpirun -np 2 "$train" --set job.output=out --set job.cache=cache edited.cfg >edited.log 2>&1
[ $? -eq 2 ] || { cat edited.log; fail "a rerun of an edited job file was not refused"; }
grep -q "train.lr: 0.01 in the file, 0.02 now" edited.log || { cat edited.log; fail "the edit is not named"; }

# 2. one more model: only its cells train
sed 's/^models = ( \(.*\) );$/models = ( \1, { name = "second"; arch = "vgg_face"; width = 0.0625; fc = 8; } );/' \
    "$job" >two-models.cfg
grep -q '"second"' two-models.cfg || fail "could not write the two-model job"
mpirun -np 2 "$train" --set job.output=out --set job.cache=cache two-models.cfg >two.log 2>&1 ||
    { cat two.log; fail "the run with a second model failed"; }
n=$(grep -c "training:" two.log)
m=$(grep "training:" two.log | grep -c "/second/")
[ "$n" -gt 0 ] && [ "$n" -eq "$m" ] || { grep "training:" two.log; fail "$((n - m)) cells of the first model trained again"; }
echo "a second model: $m cells trained, none of the first model's"

# 3. another cell's files copied over a cell's
d=out/cells/expression/vgg_face
cp $d/triplet-seed1.h5 saved-triplet.h5
cp $d/kd-seed1.h5 $d/triplet-seed1.h5
mpirun -np 2 "$train" --set job.output=out --set job.cache=cache two-models.cfg >copied.log 2>&1
[ $? -eq 2 ] || { cat copied.log; fail "a copied cell result was not refused"; }
grep -q "triplet-seed1.h5 was written by the cell expression/vgg_face/kd seed 1, not by expression/vgg_face/triplet seed 1" \
    copied.log || { cat copied.log; fail "the copied result's cell is not named"; }
# a checkpoint: the cell's result gone, another cell's checkpoint in its place
rm $d/triplet-seed1.h5
c=out/checkpoints/expression/vgg_face
cp $c/kd-seed1.h5 $c/triplet-seed1.h5
mpirun -np 2 "$train" --set job.output=out --set job.cache=cache two-models.cfg >ckpt.log 2>&1
[ $? -eq 2 ] || { cat ckpt.log; fail "a copied checkpoint was not refused"; }
grep -q "checkpoints/expression/vgg_face/triplet-seed1.h5 was written by the cell expression/vgg_face/kd seed 1" \
    ckpt.log || { cat ckpt.log; fail "the copied checkpoint's cell is not named"; }
grep -q "resuming at step" ckpt.log && fail "a copied checkpoint was resumed"
echo "test_stale: passed"
