#!/bin/sh
# rank-spread.sh [JOB] [WORKDIR]: how far a grid's final results move with
# the number of ranks, against how far they move with the seed.
#
# Trains JOB (default tests/jobs/tiny.cfg, one rank group) on 1, 2 and 4
# ranks with seed 1, and on 2 ranks with seeds 1, 2 and 3, then prints for
# every cell its value on each rank count, the spread across rank counts
# (max - min) and the standard deviation across the seeds, and the medians
# of both. With synchronized batch norm a step's arithmetic depends on the
# rank count only through the order of float sums, so the rank spread is
# expected within the seed spread. Needs occkd_train and occkd_report in
# build/ (tests/run.sh or jobs/quickstart.sh builds them).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
job=$(cd "$(dirname "${1:-$src/tests/jobs/tiny.cfg}")" && pwd)/$(basename "${1:-$src/tests/jobs/tiny.cfg}")
work=${2:-$src/runs/rank-spread}
train=$src/build/occkd_train report=$src/build/occkd_report
[ -x "$train" ] && [ -x "$report" ] || { echo "rank-spread: build occkd first (tests/run.sh)" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$work"
cd "$work"
run() { # run NAME RANKS [--set ...]
    name=$1 np=$2
    shift 2
    [ -f "$name/results.h5" ] ||
        mpirun -np "$np" "$train" --set "job.output=$name" --set job.cache=cache --set parallel.groups=1 "$@" \
            "$job" >"$name.log" 2>&1 || { tail -n 20 "$name.log"; echo "rank-spread: $name failed" >&2; exit 1; }
    "$report" --csv "$name/results.h5" >"$name.csv"
}
run np1 1
run np2 2
run np4 4
# the same job with three seeds (its `seed = N;` becomes `seeds = [1, 2, 3];`)
sed 's/seed = [0-9]*;/seeds = [1, 2, 3];/' "$job" >seeds.cfg
grep -q "seeds = \[1, 2, 3\];" seeds.cfg || { echo "rank-spread: $job has no 'seed = N;' to replace" >&2; exit 2; }
job_one=$job
job=$work/seeds.cfg
run seeds 2
job=$job_one
# columns of occkd_report --csv: task,model,method,seed,metric,value,p_value,status
awk -F, '
    FNR == 1 { file++; next }
    $8 != "done" { next }
    { key = $1 "/" $2 "/" $3 }
    file <= 3 && $4 == "1" { v[key, file] = $6; keys[key] = 1 }
    file == 4 && $4 ~ /^[0-9]+$/ { s[key] += $6; s2[key] += $6 * $6; ns[key]++ }
    END {
        printf "%-36s %10s %10s %10s %12s %12s\n", "cell", "1 rank", "2 ranks", "4 ranks", "rank spread", "seed std"
        n = 0
        for (k in keys) {
            if (!((k, 1) in v) || !((k, 2) in v) || !((k, 3) in v) || ns[k] < 2) continue
            lo = v[k, 1]; hi = lo
            for (f = 2; f <= 3; f++) { if (v[k, f] < lo) lo = v[k, f]; if (v[k, f] > hi) hi = v[k, f] }
            m = s[k] / ns[k]; sd = sqrt((s2[k] - ns[k] * m * m) / (ns[k] - 1))
            printf "%-36s %10.4f %10.4f %10.4f %12.4f %12.4f\n", k, v[k, 1], v[k, 2], v[k, 3], hi - lo, sd
            rs[++n] = hi - lo; ss[n] = sd
        }
        # medians
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
            if (rs[j] < rs[i]) { t = rs[i]; rs[i] = rs[j]; rs[j] = t }
            if (ss[j] < ss[i]) { t = ss[i]; ss[i] = ss[j]; ss[j] = t }
        }
        if (n) printf "median over %d cells: rank spread %.4f, seed std %.4f\n", n, rs[int((n + 1) / 2)], ss[int((n + 1) / 2)]
    }' np1.csv np2.csv np4.csv seeds.csv
