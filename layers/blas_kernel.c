/* blas_kernel.c - the right OpenBLAS kernels on CPUs newer than the library.
 *
 * A distribution's OpenBLAS picks its kernels from a table of CPU models it
 * knows; on a newer model it silently falls back to generic ones (Debian 12's
 * 0.3.21 runs Prescott kernels on some AVX-512 CPUs, 3-6x slower sgemm). The
 * library reads OPENBLAS_CORETYPE only when it loads, so the correction is a
 * re-execution of the program with the variable set, before MPI starts (each
 * rank does it for itself, which works the same under mpirun and srun).
 *
 * Cores are compared by the widest vector kernels they use: generic SSE (0),
 * AVX (1: Sandybridge), AVX2 (2: Haswell, Zen), AVX-512 (3: SkylakeX,
 * Cooperlake, SapphireRapids). A core is a fallback when its tier is below the
 * CPU's; the replacement is the best core of the CPU's tier (Cooperlake where
 * the CPU has AVX-512 bf16). A user's own OPENBLAS_CORETYPE is kept, with a
 * warning when it is below the CPU's tier.
 *
 * Test switch: OCCKD_BLAS_TREAT_AS_FALLBACK=1 treats OpenBLAS's choice as a
 * fallback whatever it is, so the correction can be tested on any machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "layers.h"

char *openblas_get_corename(void);
char *openblas_get_config(void);

static char g_desc[256];

static int core_tier(const char *name)
{
    static const char *const t3[] = {"skylakex", "cooperlake", "sapphirerapids"};
    static const char *const t2[] = {"haswell", "zen", "excavator"};
    static const char *const t1[] = {"sandybridge", "bulldozer", "piledriver", "steamroller"};
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(name, t3[i]))
            return 3;
        if (!strcasecmp(name, t2[i]))
            return 2;
    }
    for (size_t i = 0; i < 4; i++)
        if (!strcasecmp(name, t1[i]))
            return 1;
    return 0; /* Prescott, Core2, Nehalem, Atom, generic ... */
}

/* 1 when /proc/cpuinfo lists the flag (word) for the first CPU. */
static int cpu_flag(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    int found = 0;
    size_t n = strlen(flag);
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5))
            continue;
        for (char *p = strstr(line, flag); p; p = strstr(p + 1, flag))
            if ((p == line || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
                found = 1;
        break;
    }
    if (f)
        fclose(f);
    return found;
}

/* The best core OpenBLAS offers for this CPU, and its tier. */
static const char *cpu_best(int *tier)
{
    if (cpu_flag("avx512f") && cpu_flag("avx512bw") && cpu_flag("avx512vl") && cpu_flag("avx512dq")) {
        *tier = 3;
        return cpu_flag("avx512_bf16") ? "Cooperlake" : "SkylakeX";
    }
    if (cpu_flag("avx2") && cpu_flag("fma")) {
        *tier = 2;
        return "Haswell";
    }
    *tier = cpu_flag("avx") ? 1 : 0;
    return *tier ? "Sandybridge" : NULL;
}

void blas_kernel_select(char **argv)
{
    const char *chosen = openblas_get_corename();
    const char *user = getenv("OPENBLAS_CORETYPE"), *from = getenv("OCCKD_BLAS_CORRECTED_FROM");
    int best_tier = 0;
    const char *best = cpu_best(&best_tier);
    if (from) { /* this is the re-executed process */
        snprintf(g_desc, sizeof g_desc, "OpenBLAS core %s (corrected by occkd: OpenBLAS chose %s)", chosen, from);
        return;
    }
    if (user && user[0]) {
        snprintf(g_desc, sizeof g_desc, "OpenBLAS core %s (OPENBLAS_CORETYPE=%s set by the user)", chosen, user);
        if (best && core_tier(chosen) < best_tier)
            fprintf(stderr, "occkd: warning: OPENBLAS_CORETYPE=%s set by the user runs %s kernels; this CPU allows %s "
                            "(faster). Unset it to let occkd choose.\n", user, chosen, best);
        return;
    }
    const char *force = getenv("OCCKD_BLAS_TREAT_AS_FALLBACK");
    int fallback = best && (core_tier(chosen) < best_tier || (force && !strcmp(force, "1")));
    if (fallback && argv && argv[0]) {
        setenv("OPENBLAS_CORETYPE", best, 1);
        char was[128];
        snprintf(was, sizeof was, "%s, %s", chosen,
                 core_tier(chosen) < best_tier ? "weaker than this CPU allows"
                                               : "treated as a fallback by OCCKD_BLAS_TREAT_AS_FALLBACK=1");
        setenv("OCCKD_BLAS_CORRECTED_FROM", was, 1);
        fflush(NULL);
        execv("/proc/self/exe", argv);
        /* exec failed: carry on with what we have */
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv("OCCKD_BLAS_CORRECTED_FROM");
        snprintf(g_desc, sizeof g_desc, "OpenBLAS core %s (chosen by OpenBLAS; running again with %s failed)", chosen,
                 best);
        return;
    }
    snprintf(g_desc, sizeof g_desc, "OpenBLAS core %s (chosen by OpenBLAS)", chosen);
}

const char *blas_kernel_describe(void)
{
    if (!g_desc[0])
        snprintf(g_desc, sizeof g_desc, "OpenBLAS core %s", openblas_get_corename());
    return g_desc;
}
