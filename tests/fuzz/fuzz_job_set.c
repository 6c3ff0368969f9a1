/* fuzz_job_set.c - the job-file validator with --set: the input's bytes up
 * to its first NUL are the job file, each further NUL-separated part (at
 * most 4) one --set argument. A file that loads is then printed (--check's
 * summary) and every cell's settings and network are derived from it. Data
 * paths are not checked (JOB_NO_PATH_CHECK).
 */
#include "tests/fuzz/fuzz_common.h"
#include "trainer/job.h"

#define MAX_SETS 4

/* libconfig 1.5's lexer loses its string buffers when a syntax error
 * follows an opening quote (as test_job.c notes): leaks inside libconfig. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:strbuf_append\nleak:libconfig_yylex\n"; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[128];
    static FILE *sink;
    if (!path[0]) {
        fuzz_path(path, sizeof path, "job.cfg");
        sink = fopen("/dev/null", "w");
        if (!sink)
            abort();
    }
    char *part[1 + MAX_SETS], *copy;
    size_t len[1 + MAX_SETS];
    int n = fuzz_split_nul(data, size, part, len, 1 + MAX_SETS, &copy);
    fuzz_write(path, part[0], len[0]);
    const char *sets[MAX_SETS];
    for (int i = 1; i < n; i++)
        sets[i - 1] = part[i];
    Job job;
    char err[4096];
    int rc = job_load_ex(path, sets, n - 1, JOB_NO_PATH_CHECK, &job, err, sizeof err);
    fuzz_note("job_load_ex", rc, err);
    if (rc == 0) {
        job_print(&job, sink);
        for (int t = 0; t < job.n_tasks && t < 8; t++)
            for (int m = 0; m < job.n_models && m < 8; m++) {
                NetSpec s = job_netspec(&job, t, m);
                (void)s;
                for (int k = 0; k < job.n_methods; k++) {
                    TrainSettings ts = job_settings(&job, t, m, job.methods[k]);
                    (void)ts;
                }
            }
    }
    job_free(&job);
    free(copy);
    return 0;
}
