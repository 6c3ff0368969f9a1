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
 * the CPU has AVX-512 bf16). SkylakeX and Cooperlake share a tier because
 * they share every kernel but the bf16 GEMM, which occkd does not use. A core
 * name not known here is never a fallback. A user's own OPENBLAS_CORETYPE is
 * kept, with a warning when it is below the CPU's tier.
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

/* The tier of a core named by OpenBLAS (any case: a build for one CPU names
 * it in capitals), or -1 for a name not listed here, never a fallback. */
static int core_tier(const char *name)
{
    static const struct {
        const char *name;
        int tier;
    } cores[] = {{"Unknown", 0},       {"generic", 0},      {"Katmai", 0},       {"Coppermine", 0},
                 {"Northwood", 0},     {"Prescott", 0},     {"Banias", 0},       {"Atom", 0},
                 {"Core2", 0},         {"Penryn", 0},       {"Dunnington", 0},   {"Nehalem", 0},
                 {"Athlon", 0},        {"Opteron", 0},      {"Opteron_SSE3", 0}, {"Barcelona", 0},
                 {"Nano", 0},          {"Bobcat", 0},       {"Sandybridge", 1},  {"Bulldozer", 1},
                 {"Piledriver", 1},    {"Steamroller", 1},  {"Haswell", 2},      {"Zen", 2},
                 {"Excavator", 2},     {"SkylakeX", 3},     {"Cooperlake", 3},   {"SapphireRapids", 3}};
    for (size_t i = 0; name && i < sizeof cores / sizeof cores[0]; i++)
        if (!strcasecmp(name, cores[i].name))
            return cores[i].tier;
    return -1;
}

/* "OpenBLAS 0.3.21": the first two words of the library's configuration. */
static void blas_version(char *out, size_t size)
{
    const char *config = openblas_get_config();
    const char *end = config ? strchr(config, ' ') : NULL;
    if (end)
        end = strchr(end + 1, ' ');
    if (end)
        snprintf(out, size, "%.*s", (int)(end - config), config);
    else
        snprintf(out, size, "OpenBLAS");
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
    int best_tier = 0, tier = core_tier(chosen);
    const char *best = cpu_best(&best_tier);
    char lib[64];
    blas_version(lib, sizeof lib);
    if (from) { /* this is the re-executed process */
        if (user && strcasecmp(user, chosen)) { /* this OpenBLAS does not offer the core occkd asked for */
            snprintf(g_desc, sizeof g_desc, "%s core %s (occkd asked for %s, which this OpenBLAS lacks; it chose %s)",
                     lib, chosen, user, from);
            fprintf(stderr, "occkd: warning: %s\n", g_desc);
        } else {
            snprintf(g_desc, sizeof g_desc, "%s core %s (corrected by occkd: OpenBLAS chose %s)", lib, chosen, from);
        }
        return;
    }
    if (user && user[0]) {
        snprintf(g_desc, sizeof g_desc, "%s core %s (OPENBLAS_CORETYPE=%s set by the user)", lib, chosen, user);
        if (best && tier >= 0 && tier < best_tier)
            fprintf(stderr, "occkd: warning: OPENBLAS_CORETYPE=%s set by the user runs %s kernels; this CPU allows %s "
                            "(faster). Unset it to let occkd choose.\n", user, chosen, best);
        return;
    }
    const char *force = getenv("OCCKD_BLAS_TREAT_AS_FALLBACK");
    int weaker = tier >= 0 && tier < best_tier;
    int fallback = best && (weaker || (force && !strcmp(force, "1")));
    if (fallback && argv && argv[0]) {
        setenv("OPENBLAS_CORETYPE", best, 1);
        char was[128];
        snprintf(was, sizeof was, "%s, %s", chosen,
                 weaker ? "weaker than this CPU allows" : "treated as a fallback by OCCKD_BLAS_TREAT_AS_FALLBACK=1");
        setenv("OCCKD_BLAS_CORRECTED_FROM", was, 1);
        fflush(NULL);
        execv("/proc/self/exe", argv);
        /* exec failed: carry on with what we have */
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv("OCCKD_BLAS_CORRECTED_FROM");
        snprintf(g_desc, sizeof g_desc, "%s core %s (chosen by OpenBLAS; running again with %s failed)", lib, chosen,
                 best);
        return;
    }
    snprintf(g_desc, sizeof g_desc, "%s core %s (chosen by OpenBLAS)", lib, chosen);
}

const char *blas_kernel_describe(void)
{
    if (!g_desc[0]) {
        char lib[64];
        blas_version(lib, sizeof lib);
        snprintf(g_desc, sizeof g_desc, "%s core %s", lib, openblas_get_corename());
    }
    return g_desc;
}
