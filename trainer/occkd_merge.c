/* occkd_merge - merges several results.h5 into one.
 *
 *   occkd_merge [--job job.cfg] -o merged.h5 a/results.h5 b/results.h5 ...
 *
 * Typical use: a Slurm array job (jobs/slurm/tasks-array.sbatch) trains one
 * task per array element into its own output folder; the merged file then
 * holds every cell, and occkd_report reads it like the results.h5 of one
 * run. Files of different seeds of the same grid merge as well: the merged
 * /summary gets its mean and std rows again.
 *
 * Every cell (task, model, method, seed) of every input is copied as it is
 * stored (metrics, p-values, history, test predictions); a cell found in two
 * inputs is refused, naming both.
 *
 * The merged /job describes the runs that made the inputs, as one run's
 * /job describes its ranks:
 *   job_file       comment lines listing the inputs, then the text of the
 *                  job file --job names, else the first input's job text
 *                  (the elements of an array job share one job file)
 *   job_path       --job's path, else the first input's
 *   occkd_version, blas_kernels
 *                  the inputs' value when they agree, else their distinct
 *                  values joined ("0.1.0, 0.2.0")
 *   ranks          the sum of the inputs' ranks: every process that trained
 *                  a merged cell
 *   start, end     the earliest start and the latest end
 *   peak_rss_bytes, data_bytes_read (per rank), and their maximum and total
 *                  the inputs' per-rank values one after the other, when
 *                  every input records them
 * Values an input does not record add nothing. The output is written to a
 * temporary file and renamed, so it may also be one of the inputs.
 *
 * Exit status: 0 merged, 1 an input could not be read or the output not
 * written, 2 usage.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/checkpoints.h"
#include "trainer/grid.h"

#define MERGE_TEXT_MAX (16L << 20) /* as job files */

typedef struct {
    CellResult *cells;
    const char **origin; /* the input each cell came from */
    int n, cap;
} CellList;

static void usage(FILE *f)
{
    fprintf(f, "usage: occkd_merge [--job job.cfg] -o merged.h5 results.h5 [results.h5 ...]\n"
               "  -o FILE     the merged results file (written atomically; may be one of the inputs)\n"
               "  --job FILE  store this job file's text in the merged /job (occkd_report shows its name);\n"
               "              without it the first input's job text is kept\n"
               "the merged /job: ranks summed, the earliest start and latest end, per-rank memory and\n"
               "bytes read of every input one after the other, versions and BLAS kernels as the inputs say\n");
}

static void cells_free(CellList *l)
{
    results_cells_free(l->cells, l->n);
    free(l->origin);
    memset(l, 0, sizeof *l);
}

static int find_cell(const CellList *l, const CellResult *c)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->cells[i].task, c->task) && !strcmp(l->cells[i].model, c->model) &&
            !strcmp(l->cells[i].method, c->method) && l->cells[i].seed == c->seed)
            return i;
    return -1;
}

/* Appends every cell of results file `path` to l (which then owns them). */
static int read_input(const char *path, CellList *l, char *err, size_t errlen)
{
    CellResult *cells;
    int n, rc = 0, taken = 0;
    if (results_read_cells(path, RESULTS_CELLS_FULL, &cells, &n, err, errlen))
        return -1;
    if (n == 0) {
        snprintf(err, errlen, "file %s: /summary lists no cell", path);
        rc = -1;
    }
    CellResult *grown = rc ? NULL : realloc(l->cells, (size_t)(l->n + n) * sizeof *grown);
    const char **origin = grown ? realloc(l->origin, (size_t)(l->n + n) * sizeof *origin) : NULL;
    if (grown)
        l->cells = grown;
    if (origin)
        l->origin = origin;
    if (!rc && (!grown || !origin)) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    for (; taken < n && !rc; taken++) {
        int k = find_cell(l, &cells[taken]);
        if (k >= 0) {
            snprintf(err, errlen, "cell %s/%s/%s seed %llu is in both %s and %s (merge each cell once)",
                     cells[taken].task, cells[taken].model, cells[taken].method,
                     (unsigned long long)cells[taken].seed, l->origin[k], path);
            rc = -1;
            break;
        }
        l->cells[l->n] = cells[taken];
        l->origin[l->n++] = path;
    }
    /* the cells not taken are freed here, the taken ones belong to l */
    for (int i = taken; i < n; i++)
        cell_result_free(&cells[i]);
    free(cells);
    return rc;
}

/* The whole of a text file, malloc'ed. */
static char *read_text(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the job file", path);
        return NULL;
    }
    char *text = malloc((size_t)MERGE_TEXT_MAX + 1);
    size_t n = text ? fread(text, 1, (size_t)MERGE_TEXT_MAX + 1, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!text || bad || n > (size_t)MERGE_TEXT_MAX) {
        snprintf(err, errlen, "%s: %s", path, !text ? "out of memory" : bad ? "read error" : "larger than 16 MiB");
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

/* "# merged by occkd_merge from:\n#   <input>\n..." followed by the job text. */
static char *merged_job_text(const char *const *inputs, int n_inputs, const char *job_text)
{
    size_t len = 64 + (job_text ? strlen(job_text) : 0);
    for (int i = 0; i < n_inputs; i++)
        len += strlen(inputs[i]) + 8;
    char *t = malloc(len);
    if (!t)
        return NULL;
    size_t used = (size_t)sprintf(t, "# merged by occkd_merge from:\n");
    for (int i = 0; i < n_inputs; i++)
        used += (size_t)sprintf(t + used, "#   %s\n", inputs[i]);
    if (job_text)
        sprintf(t + used, "%s", job_text);
    return t;
}

/* ------------------------------------------------------------- /job */

/* The inputs' /job, and what the merged /job is made of. */
typedef struct {
    ResultsJob *in;
    int n;
    char *text, *version, *blas;      /* malloc'ed */
    int64_t *per_rank;                /* (2, ranks): peak memory, bytes read; or NULL */
    ResultsInfo info;
} MergedJob;

#define JOB_STR(j, field) (*(char *const *)((const char *)(j) + (field)))

/* The distinct non-empty values of a /job string over the inputs, joined
 * by ", " (malloc'ed; "" when no input records it). */
static char *join_distinct(const MergedJob *m, size_t field)
{
    size_t len = 1;
    for (int i = 0; i < m->n; i++)
        len += (JOB_STR(&m->in[i], field) ? strlen(JOB_STR(&m->in[i], field)) : 0) + 2;
    char *t = calloc(len, 1);
    for (int i = 0; t && i < m->n; i++) {
        const char *v = JOB_STR(&m->in[i], field);
        int seen = !v || !v[0];
        for (int k = 0; k < i && !seen; k++)
            seen = JOB_STR(&m->in[k], field) && !strcmp(JOB_STR(&m->in[k], field), v);
        if (!seen)
            sprintf(t + strlen(t), "%s%s", t[0] ? ", " : "", v);
    }
    return t;
}

/* The first input's value of a /job string, or the earliest (order -1) or
 * latest (+1) of them: ISO 8601 times in UTC sort as text. */
static const char *pick(const MergedJob *m, size_t field, int order)
{
    const char *best = NULL;
    for (int i = 0; i < m->n; i++) {
        const char *v = JOB_STR(&m->in[i], field);
        if (v && v[0] && (!best || (order && strcmp(v, best) * order > 0)))
            best = v;
    }
    return best ? best : "";
}

/* The ranks of all inputs, and their per-rank values one after the other
 * when every input records them for each of its ranks. */
static int merge_ranks(MergedJob *m)
{
    int64_t ranks = 0;
    int complete = m->n > 0;
    for (int i = 0; i < m->n; i++) {
        ranks += m->in[i].ranks > 0 ? m->in[i].ranks : 0;
        complete &= m->in[i].ranks > 0 && m->in[i].n_rank_values == m->in[i].ranks;
    }
    m->info.ranks = (int)ranks;
    if (!complete)
        return 0;
    int64_t *peak = m->per_rank = malloc(2 * (size_t)ranks * sizeof *m->per_rank), *read = peak + ranks;
    if (!peak)
        return -1;
    for (int i = 0; i < m->n; i++) {
        size_t bytes = (size_t)m->in[i].ranks * sizeof *peak;
        memcpy(peak, m->in[i].peak_rss_bytes, bytes);
        memcpy(read, m->in[i].data_bytes_read, bytes);
        peak += m->in[i].ranks, read += m->in[i].ranks;
    }
    m->info.peak_rss_bytes = m->per_rank;
    m->info.data_bytes_read = m->per_rank + ranks;
    return 0;
}

/* Reads every input's /job and fills m->info (see the top of the file). */
static int merge_job(MergedJob *m, const char *const *inputs, int n_inputs, const char *job_path,
                     const char *job_text, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    m->in = calloc(n_inputs > 0 ? (size_t)n_inputs : 1, sizeof *m->in);
    if (!m->in) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (; m->n < n_inputs; m->n++)
        if (results_read_job(inputs[m->n], &m->in[m->n], err, errlen))
            return -1;
    m->text = merged_job_text(inputs, n_inputs, job_text ? job_text : pick(m, offsetof(ResultsJob, job_text), 0));
    m->version = join_distinct(m, offsetof(ResultsJob, version));
    m->blas = join_distinct(m, offsetof(ResultsJob, blas));
    if (!m->text || !m->version || !m->blas || merge_ranks(m)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->info.job_text = m->text;
    m->info.job_path = job_path ? job_path : pick(m, offsetof(ResultsJob, job_path), 0);
    m->info.version = m->version;
    m->info.start = pick(m, offsetof(ResultsJob, start), -1);
    m->info.end = pick(m, offsetof(ResultsJob, end), 1);
    m->info.blas = m->blas[0] ? m->blas : NULL;
    return 0;
}

static void merged_job_free(MergedJob *m)
{
    for (int i = 0; i < m->n; i++)
        results_job_free(&m->in[i]);
    void *owned[] = {m->in, m->text, m->version, m->blas, m->per_rank};
    for (int i = 0; i < (int)(sizeof owned / sizeof owned[0]); i++)
        free(owned[i]);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------- main */

static int merge(const char *out, const char *job_path, const char *const *inputs, int n_inputs)
{
    char err[2048] = "";
    CellList l;
    MergedJob m;
    memset(&l, 0, sizeof l);
    memset(&m, 0, sizeof m);
    char *job_text = NULL;
    int rc = EXIT_FAILED;
    if (job_path && !(job_text = read_text(job_path, err, sizeof err)))
        goto out;
    for (int i = 0; i < n_inputs; i++)
        if (read_input(inputs[i], &l, err, sizeof err))
            goto out;
    if (merge_job(&m, inputs, n_inputs, job_path, job_text, err, sizeof err) ||
        results_write(out, &m.info, l.cells, l.n, err, sizeof err))
        goto out;
    printf("occkd_merge: wrote %s (%d cells from %d files)\n", out, l.n, n_inputs);
    rc = EXIT_OK;
out:
    if (rc != EXIT_OK)
        fprintf(stderr, "occkd_merge: %s\n", err);
    cells_free(&l);
    merged_job_free(&m);
    free(job_text);
    return rc;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *job = NULL;
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    int n_inputs = 0, rc = EXIT_INVALID;
    if (!inputs)
        return EXIT_FAILED;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--job") && i + 1 < argc) {
            job = argv[++i];
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            rc = EXIT_OK;
            goto done;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "occkd_merge: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            goto done;
        } else {
            inputs[n_inputs++] = a;
        }
    }
    if (!out || n_inputs == 0) {
        fprintf(stderr, "occkd_merge: %s\n", !out ? "no output file (-o merged.h5)" : "no input file");
        usage(stderr);
        goto done;
    }
    rc = merge(out, job, inputs, n_inputs);
done:
    free(inputs);
    return rc;
}
