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
 * inputs is refused, naming both. The merged /job holds the job file's text
 * when --job names it (the report takes the job's name from it), preceded by
 * comment lines listing the inputs; ranks, start and end are left unknown
 * (0 and empty), since the inputs ran separately. The output is written to a
 * temporary file and renamed, so it may also be one of the inputs.
 *
 * Exit status: 0 merged, 1 an input could not be read or the output not
 * written, 2 usage.
 */
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
               "  --job FILE  store this job file's text in the merged /job (occkd_report shows its name)\n");
}

static void cells_free(CellList *l)
{
    for (int i = 0; i < l->n; i++)
        cell_result_free(&l->cells[i]);
    free(l->cells);
    free(l->origin);
    memset(l, 0, sizeof *l);
}

static int cells_grow(CellList *l)
{
    if (l->n < l->cap)
        return 0;
    int cap = l->cap ? 2 * l->cap : 32;
    CellResult *c = realloc(l->cells, (size_t)cap * sizeof *c);
    if (!c)
        return -1;
    l->cells = c;
    const char **o = realloc(l->origin, (size_t)cap * sizeof *o);
    if (!o)
        return -1;
    l->origin = o;
    l->cap = cap;
    return 0;
}

/* A summary row that stands for a stored cell: not a seed aggregate ("mean",
 * "std") and not a teacher's second row ("teacher (occluded)": method names
 * hold no spaces). *seed gets the row's seed. */
static int row_is_cell(const SummaryRow *r, uint64_t *seed)
{
    if (strchr(r->method, ' '))
        return 0;
    char *end;
    unsigned long long v = strtoull(r->seed, &end, 10);
    if (!r->seed[0] || *end || r->seed[0] == '-')
        return 0;
    *seed = (uint64_t)v;
    return 1;
}

static int find_cell(const CellList *l, const CellResult *c)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->cells[i].task, c->task) && !strcmp(l->cells[i].model, c->model) &&
            !strcmp(l->cells[i].method, c->method) && l->cells[i].seed == c->seed)
            return i;
    return -1;
}

/* Appends every cell of results file `path` to l. */
static int read_input(const char *path, CellList *l, char *err, size_t errlen)
{
    SummaryRow *rows = NULL;
    int n_rows = 0, rc = 0, found = 0;
    if (results_read_summary(path, &rows, &n_rows, err, errlen))
        return -1;
    for (int i = 0; i < n_rows && !rc; i++) {
        uint64_t seed;
        if (!row_is_cell(&rows[i], &seed))
            continue;
        if (cells_grow(l)) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        CellResult *c = &l->cells[l->n];
        if (results_read_cell(path, rows[i].task, rows[i].model, rows[i].method, seed, c, err, errlen)) {
            rc = -1;
            break;
        }
        int k = find_cell(l, c);
        if (k >= 0) {
            snprintf(err, errlen, "cell %s/%s/%s seed %llu is in both %s and %s (merge each cell once)", c->task,
                     c->model, c->method, (unsigned long long)c->seed, l->origin[k], path);
            cell_result_free(c);
            rc = -1;
            break;
        }
        l->origin[l->n++] = path;
        found++;
    }
    free(rows);
    if (!rc && found == 0) {
        snprintf(err, errlen, "file %s: /summary lists no cell", path);
        rc = -1;
    }
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

static int merge(const char *out, const char *job_path, const char *const *inputs, int n_inputs)
{
    char err[2048] = "";
    CellList l;
    memset(&l, 0, sizeof l);
    char *job_text = NULL, *text = NULL;
    int rc = EXIT_FAILED;
    if (job_path && !(job_text = read_text(job_path, err, sizeof err)))
        goto out;
    for (int i = 0; i < n_inputs; i++)
        if (read_input(inputs[i], &l, err, sizeof err))
            goto out;
    text = merged_job_text(inputs, n_inputs, job_text);
    if (!text) {
        snprintf(err, sizeof err, "out of memory");
        goto out;
    }
    ResultsInfo info = {.job_text = text, .job_path = job_path ? job_path : "", .version = OCCKD_VERSION,
                        .ranks = 0, .start = "", .end = ""};
    if (results_write(out, &info, l.cells, l.n, err, sizeof err))
        goto out;
    printf("occkd_merge: wrote %s (%d cells from %d files)\n", out, l.n, n_inputs);
    rc = EXIT_OK;
out:
    if (rc != EXIT_OK)
        fprintf(stderr, "occkd_merge: %s\n", err);
    cells_free(&l);
    free(job_text);
    free(text);
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
