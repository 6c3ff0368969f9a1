# blas_best_core.sh - sourced by the BLAS kernel tests: sets `best` to the
# OpenBLAS core occkd should pick for this CPU, from /proc/cpuinfo's flags the
# same way layers/blas_kernel.c does ("" without AVX: nothing to correct).
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { echo "$flags" | grep -qw "$1"; }
best=""
if has avx512f && has avx512bw && has avx512vl && has avx512dq; then
    if has avx512_bf16; then best=Cooperlake; else best=SkylakeX; fi
elif has avx2 && has fma; then best=Haswell
elif has avx; then best=Sandybridge
fi
