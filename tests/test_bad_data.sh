#!/bin/sh
# test_bad_data.sh OCCKD_TRAIN WORKDIR
#
# A data set with an unreadable image and on_bad_sample = "fail", built by
# two ranks: the image is decoded by rank 1 (the ranks decode samples
# r, r + 2, ...), and its message (the file) reaches rank 0's output, not
# only "another rank failed". Invalid data is invalid input: status 2.
# And a data file that is a folder is reported as a folder, not as missing.
set -u
train=$1 work=$2
. "$(dirname "$0")/e2e.sh"
e2e_start test_bad_data "$work"
pgm() { # pgm FILE SEED: a 16x16 grey image
    { printf 'P5\n16 16\n255\n'; head -c 256 /dev/urandom; } >"$1"
}
for c in cat dog; do
    mkdir -p "faces/$c"
    for i in 00 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19; do
        pgm "faces/$c/img$i.pgm"
    done
done
# the second sample (index 1, decoded by rank 1): a header and no pixels
printf 'P5\n16 16\n255\n' >faces/cat/img01.pgm
cat >bad.cfg <<CFG
job = { name = "bad"; output = "out"; seed = 1; };
tasks = ( { name = "animal"; target = "class";
            data = { source = "folder"; path = "faces"; side = 32; channels = 1; on_bad_sample = "fail"; };
            occlusion = { kind = "vr"; }; } );
models = ( { name = "vgg_face"; arch = "vgg_face"; width = 0.0625; fc = 16; } );
methods = [ "teacher", "student" ];
train = { epochs = 1; batch = 8; };
CFG
mpirun -np 2 "$train" bad.cfg >run.log 2>&1
status=$?
cat run.log | grep -v "^\[" | head -20
[ $status -eq 2 ] || fail "exit status $status, expected 2 (invalid input)"
grep -q "rank 1: .*img01.pgm" run.log || fail "rank 1's message naming the bad image did not reach the output"
grep -q "training:" run.log && fail "cells trained on a data set that failed"
# a data file that is a folder is named as such, not as missing
mkdir -p fer/fer2013.csv && touch fer/fer2013new.csv
cat >fer.cfg <<CFG
job = { name = "fer"; output = "out-fer"; };
tasks = ( { name = "expression"; target = "expression"; data = { source = "ferplus"; path = "fer"; }; } );
models = ( { arch = "vgg_f"; } );
methods = [ "teacher" ];
CFG
"$train" --check fer.cfg >fer.log 2>&1
status=$?
[ $status -eq 2 ] || { cat fer.log; fail "--check with a folder for fer2013.csv exited $status, expected 2"; }
grep -q "fer.cfg:2: tasks\[0\].data.path: 'fer/fer2013.csv' is a folder, expected a file" fer.log ||
    { cat fer.log; fail "a folder in place of fer2013.csv is not named as such"; }
echo "test_bad_data: passed"
