/* assemble.c - results.h5 from the cell files: p-values against
 * `student`, the averaging fusions, the run's cost. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoints/checkpoints.h"
#include "trainer/grid_internal.h"

/* -------------------------------------------------------- assembly */

static EvalResult eval_view(const CellResult *r, int occluded)
{
    EvalResult e;
    memset(&e, 0, sizeof e);
    e.n = r->n_test;
    e.classes = r->classes;
    e.label = r->labels;
    e.pred = occluded && r->predictions_occluded ? r->predictions_occluded : r->predictions;
    return e;
}

static int find_cell(const CellResult *cells, int n, const char *task, const char *model, const char *method,
                     uint64_t seed)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(cells[i].task, task) && !strcmp(cells[i].model, model) && !strcmp(cells[i].method, method) &&
            cells[i].seed == seed)
            return i;
    return -1;
}

/* Average of the students' probabilities (regression: predictions). */
static void fuse(const Job *job, const FusionSpec *f, CellResult *cells, int n, CellResult *out, int seed_i, int task,
                 int model)
{
    result_header(out, job, seed_i, task, model, f->name);
    const char *t = job->tasks[task].name, *m = job->models[model].name;
    uint64_t seed = job->seeds[seed_i];
    const CellResult *parts[METHOD_COUNT];
    for (int i = 0; i < f->n_students; i++) {
        int k = find_cell(cells, n, t, m, method_name(f->students[i]), seed);
        if (k < 0 || strcmp(cells[k].status, "done") || (!cells[k].probabilities && cells[k].classes)) {
            snprintf(out->status, sizeof out->status, "skipped");
            snprintf(out->message, sizeof out->message, "student %s did not finish", method_name(f->students[i]));
            return;
        }
        parts[i] = &cells[k];
    }
    const CellResult *a = parts[0];
    int64_t nt = a->n_test;
    int k = a->classes;
    out->n_test = nt;
    out->classes = k;
    out->labels = malloc((size_t)nt * sizeof(float));
    out->predictions = malloc((size_t)nt * sizeof(float));
    memcpy(out->labels, a->labels, (size_t)nt * sizeof(float));
    double metric = 0;
    if (k) {
        out->probabilities = calloc((size_t)nt * k, sizeof(float));
        out->confusion = calloc((size_t)k * k, sizeof(int64_t));
        for (int i = 0; i < f->n_students; i++)
            for (int64_t j = 0; j < nt * k; j++)
                out->probabilities[j] += parts[i]->probabilities[j] / f->n_students;
        for (int64_t j = 0; j < nt; j++) {
            int pr = argmax(out->probabilities + j * k, k), tr = (int)out->labels[j];
            out->predictions[j] = (float)pr;
            metric += pr == tr;
            if (tr >= 0 && tr < k)
                out->confusion[(size_t)tr * k + pr]++;
        }
    } else {
        for (int64_t j = 0; j < nt; j++) {
            double s = 0;
            for (int i = 0; i < f->n_students; i++)
                s += parts[i]->predictions[j];
            out->predictions[j] = (float)(s / f->n_students);
            metric += fabs(out->predictions[j] - out->labels[j]);
        }
    }
    out->value = nt ? metric / (double)nt : NAN;
    snprintf(out->status, sizeof out->status, "done");
}

/* This process's peak resident memory (VmHWM of /proc/self/status), bytes;
 * 0 where the system does not say. */
int64_t peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return (int64_t)kb * 1024;
}

void print_cost(const int64_t *peak, const int64_t *bytes, int ranks)
{
    int64_t total = 0;
    printf("occkd: peak memory per rank (VmHWM):");
    for (int r = 0; r < ranks; r++) {
        printf(" %.0f", (double)peak[r] / (1 << 20));
        total += bytes[r];
    }
    printf(" MiB; pixel data read from the caches: %.1f MiB in all\n", (double)total / (1 << 20));
    fflush(stdout);
}

static void iso_time(char *buf, size_t len, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* World rank 0: every cell's file, p-values against `student`, fusions,
 * results.h5. Returns 0, or -1 when a cell file is missing or unreadable. */
int assemble(const Job *job, int ranks, time_t started, const int64_t *peak, const int64_t *bytes, char *err,
                    size_t errlen)
{
    int per_chain = 1;
    for (int i = 0; i < job->n_methods; i++)
        per_chain += job->methods[i] != METHOD_TEACHER;
    int cap = job->n_seeds * job->n_tasks * job->n_models * (per_chain + job->n_fusions);
    CellResult *cells = calloc((size_t)cap, sizeof(CellResult));
    int n = 0, rc = 0;
    for (int s = 0; s < job->n_seeds && !rc; s++)
        for (int t = 0; t < job->n_tasks && !rc; t++)
            for (int m = 0; m < job->n_models && !rc; m++) {
                Method list[METHOD_COUNT];
                int nl = 0;
                list[nl++] = METHOD_TEACHER;
                for (int i = 0; i < job->n_methods; i++)
                    if (job->methods[i] != METHOD_TEACHER)
                        list[nl++] = job->methods[i];
                for (int i = 0; i < nl && !rc; i++) {
                    char ckpt[2048], mf[2048], res[2048];
                    cell_paths(job, s, t, m, method_name(list[i]), ckpt, mf, res, sizeof ckpt);
                    if (cell_result_load(res, &cells[n], err, errlen))
                        rc = -1;
                    else
                        n++;
                }
                for (int f = 0; f < job->n_fusions && !rc; f++) {
                    if (job->fusions[f].kind == FUSION_AVERAGE) {
                        fuse(job, &job->fusions[f], cells, n, &cells[n], s, t, m), n++;
                        continue;
                    }
                    char ckpt[2048], mf[2048], res[2048];
                    cell_paths(job, s, t, m, job->fusions[f].name, ckpt, mf, res, sizeof ckpt);
                    if (cell_result_load(res, &cells[n], err, errlen))
                        rc = -1;
                    else
                        n++;
                }
            }
    if (!rc) {
        /* paired tests against the student of the same (seed, task, model) */
        for (int i = 0; i < n; i++) {
            int b = find_cell(cells, n, cells[i].task, cells[i].model, "student", cells[i].seed);
            if (b < 0 || i == b || strcmp(cells[b].status, "done") || strcmp(cells[i].status, "done") ||
                cells[i].n_test != cells[b].n_test)
                continue;
            EvalResult base = eval_view(&cells[b], 0);
            if (!strcmp(cells[i].method, "teacher")) {
                EvalResult occ = eval_view(&cells[i], 1);
                cells[i].p_value_occluded = paired_p_value(&base, &occ);
            } else {
                EvalResult other = eval_view(&cells[i], 0);
                cells[i].p_value = paired_p_value(&base, &other);
            }
        }
        char path[2048], start[32], end[32];
        snprintf(path, sizeof path, "%s/results.h5", job->output);
        iso_time(start, sizeof start, started);
        iso_time(end, sizeof end, time(NULL));
        ResultsInfo info = {.job_text = job->text, .job_path = job->path, .version = OCCKD_VERSION, .ranks = ranks,
                            .start = start, .end = end, .peak_rss_bytes = peak, .data_bytes_read = bytes,
                            .blas = blas_kernel_describe()};
        rc = results_write(path, &info, cells, n, err, errlen);
        if (!rc)
            printf("occkd: wrote %s (%d cells)\n", path, n);
    }
    for (int i = 0; i < n; i++)
        cell_result_free(&cells[i]);
    free(cells);
    return rc;
}

