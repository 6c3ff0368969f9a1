/* test_merge - occkd_merge on results files written by results_write.
 *
 *   test_merge OCCKD_MERGE OCCKD_REPORT WORKDIR
 *
 * Two files, one task each (as two elements of a Slurm array job write
 * them), are merged; every cell of the merged file must equal its source
 * cell field by field and array by array, /summary must hold every row of
 * both inputs, and occkd_report must read the merged file and show both
 * tasks. The merged /job sums the inputs' ranks, spans their times, lists
 * their per-rank values and keeps the --job text (else the first input's).
 * Then: two files holding different seeds of the same cells merge
 * into a file with mean and std rows; a cell present in two inputs, an
 * unreadable input and a missing -o are refused with messages and exit
 * statuses 1, 1 and 2.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "checkpoints/checkpoints.h"
#include "gradcheck.h"

static const char *g_merge, *g_report, *g_work;

/* A cell with deterministic contents derived from `salt`; teachers get
 * occluded predictions, classification cells probabilities and a
 * confusion matrix. */
static CellResult make_cell(const char *task, const char *method, uint64_t seed, int classes, int salt)
{
    CellResult c;
    memset(&c, 0, sizeof c);
    snprintf(c.task, sizeof c.task, "%s", task);
    snprintf(c.model, sizeof c.model, "vgg_f");
    snprintf(c.method, sizeof c.method, "%s", method);
    c.seed = seed;
    snprintf(c.status, sizeof c.status, "done");
    snprintf(c.metric, sizeof c.metric, "%s", classes ? "accuracy" : "mae");
    c.value = 0.5 + 0.01 * salt;
    int teacher = strcmp(method, "teacher") == 0;
    c.value_occluded = teacher ? 0.25 + 0.01 * salt : NAN;
    c.p_value = teacher || !strcmp(method, "student") ? NAN : 0.001 * salt;
    c.p_value_occluded = teacher ? 0.002 * salt : NAN;
    c.seconds = 10.0 + salt;
    c.best_epoch = 2;
    for (int e = 0; e < 3; e++) {
        EpochRecord row = {.epoch = e + 1,
                           .lr = 0.1 / (e + 1),
                           .train_loss = 2.0 - 0.3 * e - 0.01 * salt,
                           .val_metric = 0.3 + 0.1 * e + 0.001 * salt,
                           .images_per_s = 100 + salt + e,
                           .wait_share = 0.05 * e};
        history_append(&c.history, &row);
    }
    c.n_test = 7;
    c.classes = classes;
    c.labels = malloc(7 * sizeof(float));
    c.predictions = malloc(7 * sizeof(float));
    for (int i = 0; i < 7; i++) {
        c.labels[i] = classes ? (float)(i % classes) : 20.0f + (float)i;
        c.predictions[i] = classes ? (float)((i + salt) % classes) : 21.5f + (float)(i * salt % 5);
    }
    if (teacher) {
        c.predictions_occluded = malloc(7 * sizeof(float));
        for (int i = 0; i < 7; i++)
            c.predictions_occluded[i] = c.predictions[6 - i];
    }
    if (classes) {
        c.probabilities = malloc((size_t)7 * classes * sizeof(float));
        for (int i = 0; i < 7 * classes; i++)
            c.probabilities[i] = (float)((i * 7 + salt) % 11) / 11.0f;
        c.confusion = calloc((size_t)classes * classes, sizeof(int64_t));
        for (int i = 0; i < 7; i++)
            c.confusion[(int)c.labels[i] * classes + (int)c.predictions[i]]++;
    }
    return c;
}

/* One task's cells: teacher, student, kd and a fusion. */
static int make_task(CellResult *cells, const char *task, uint64_t seed, int classes, int salt)
{
    const char *methods[4] = {"teacher", "student", "kd", "kd-triplet"};
    for (int i = 0; i < 4; i++)
        cells[i] = make_cell(task, methods[i], seed, classes, salt + i);
    return 4;
}

/* What an input's /job records (results_write's ResultsInfo). */
static const ResultsInfo DEFAULT_INFO = {.job_text = "job = { name = \"part\"; };", .job_path = "part.cfg",
                                         .version = "test", .ranks = 2, .start = "2026-01-01T00:00:00Z",
                                         .end = "2026-01-01T01:00:00Z"};

/* Writes WORKDIR/<name> from one task's cells (make_task); path gets its
 * full name. info NULL: DEFAULT_INFO. */
static int write_input(const char *name, CellResult *cells, int *n, const char *task, uint64_t seed, int classes,
                       int salt, const ResultsInfo *info, char *path, size_t len)
{
    char err[1024];
    snprintf(path, len, "%s/%s", g_work, name);
    *n = make_task(cells, task, seed, classes, salt);
    int rc = results_write(path, info ? info : &DEFAULT_INFO, cells, *n, err, sizeof err);
    CHECK(rc == 0, "results_write %s: %s", path, err);
    return rc;
}

static int same_double(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

static int same_floats(const float *a, const float *b, size_t n)
{
    if (!a || !b)
        return a == b;
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* Cell `want` read back from `path` equals it in every field. */
static void check_cell(const char *path, const CellResult *want)
{
    CellResult r;
    char err[1024];
    const char *id = want->method;
    if (results_read_cell(path, want->task, want->model, want->method, want->seed, &r, err, sizeof err)) {
        CHECK(0, "cell %s/%s seed %llu: %s", want->task, id, (unsigned long long)want->seed, err);
        return;
    }
    CHECK(!strcmp(r.status, want->status) && !strcmp(r.metric, want->metric), "%s/%s: status or metric differ",
          want->task, id);
    CHECK(same_double(r.value, want->value) && same_double(r.value_occluded, want->value_occluded), "%s/%s: values",
          want->task, id);
    CHECK(same_double(r.p_value, want->p_value) && same_double(r.p_value_occluded, want->p_value_occluded),
          "%s/%s: p-values differ", want->task, id);
    CHECK(r.seconds == want->seconds && r.history.n == want->history.n && r.best_epoch == want->best_epoch,
          "%s/%s: seconds or epochs differ", want->task, id);
    CHECK(r.history.n == want->history.n &&
              (r.history.n == 0 ||
               memcmp(r.history.rows, want->history.rows, (size_t)r.history.n * sizeof *r.history.rows) == 0),
          "%s/%s: history differs", want->task, id);
    CHECK(r.n_test == want->n_test && r.classes == want->classes, "%s/%s: n_test or classes", want->task, id);
    size_t n = (size_t)want->n_test;
    if (r.n_test == want->n_test && r.classes == want->classes) {
        CHECK(same_floats(r.labels, want->labels, n) && same_floats(r.predictions, want->predictions, n),
              "%s/%s: test labels or predictions differ", want->task, id);
        CHECK(same_floats(r.predictions_occluded, want->predictions_occluded, n), "%s/%s: occluded predictions",
              want->task, id);
        CHECK(same_floats(r.probabilities, want->probabilities, n * (size_t)want->classes),
              "%s/%s: probabilities differ", want->task, id);
        size_t kk = (size_t)want->classes * (size_t)want->classes;
        CHECK((!r.confusion && !want->confusion) ||
                  (r.confusion && want->confusion && !memcmp(r.confusion, want->confusion, kk * sizeof(int64_t))),
              "%s/%s: confusion differs", want->task, id);
    }
    cell_result_free(&r);
}

/* Runs a command line with stdout and stderr into WORKDIR/<log>; returns
 * its exit status (-1 when it did not exit normally). */
static int run(const char *cmd, const char *log)
{
    char line[8192];
    snprintf(line, sizeof line, "%s >'%s/%s' 2>&1", cmd, g_work, log);
    int st = system(line);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Whether WORKDIR/<log> contains text. */
static int log_has(const char *log, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_work, log);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

static int count_rows(const char *path, const char *seed)
{
    SummaryRow *rows;
    int n, k = 0;
    char err[1024];
    if (results_read_summary(path, &rows, &n, err, sizeof err)) {
        CHECK(0, "%s: %s", path, err);
        return -1;
    }
    for (int i = 0; i < n; i++)
        k += !seed || !strcmp(rows[i].seed, seed);
    free(rows);
    return k;
}

/* Two inputs of one merge and its output, WORKDIR/<out>. */
typedef struct {
    char a[4096], b[4096], out[4096];
    CellResult ca[4], cb[4];
    int na, nb;
} Pair;

static void free_cells(CellResult *c, int n)
{
    for (int i = 0; i < n; i++)
        cell_result_free(&c[i]);
}

static void pair_free(Pair *p)
{
    free_cells(p->ca, p->na);
    free_cells(p->cb, p->nb);
}

static void pair_start(Pair *p, const char *out)
{
    memset(p, 0, sizeof *p);
    snprintf(p->out, sizeof p->out, "%s/%s", g_work, out);
}


/* Reads out's /job; -1 (a failed check) when it cannot. */
static int read_job(const char *out, ResultsJob *j)
{
    char err[1024];
    int rc = results_read_job(out, j, err, sizeof err);
    CHECK(rc == 0, "results_read_job %s: %s", out, err);
    return rc;
}

/* The merged /job of test_tasks: ranks summed, the earliest start and the
 * latest end, per-rank values one input after the other, the --job text
 * after the list of inputs. */
static void check_tasks_job(const char *out, const char *job, const char *a, const char *b)
{
    ResultsJob j;
    if (read_job(out, &j))
        return;
    CHECK(j.ranks == 5, "merged ranks %lld, expected 2 + 3", (long long)j.ranks);
    CHECK(j.start && !strcmp(j.start, "2025-12-31T23:00:00Z") && j.end && !strcmp(j.end, "2026-01-01T02:00:00Z"),
          "merged start %s and end %s are not the earliest and latest", j.start, j.end);
    static const int64_t peak[5] = {100, 300, 200, 50, 70}, bytes[5] = {10, 20, 1, 2, 3};
    CHECK(j.n_rank_values == 5 && !memcmp(j.peak_rss_bytes, peak, sizeof peak) &&
              !memcmp(j.data_bytes_read, bytes, sizeof bytes),
          "merged per-rank values: %d of them", j.n_rank_values);
    CHECK(j.peak_rss_max_bytes == 300 && j.data_bytes_read_total == 36, "merged peak %lld, bytes read %lld",
          (long long)j.peak_rss_max_bytes, (long long)j.data_bytes_read_total);
    CHECK(j.version && !strcmp(j.version, "test") && j.blas && !strcmp(j.blas, "OpenBLAS (test)"),
          "merged version %s, BLAS kernels %s", j.version, j.blas);
    CHECK(j.job_path && !strcmp(j.job_path, job), "merged job_path %s, expected %s", j.job_path, job);
    CHECK(j.job_text && strstr(j.job_text, "# merged by occkd_merge from:\n") && strstr(j.job_text, a) &&
              strstr(j.job_text, b) && strstr(j.job_text, "job = { name = \"slurmgrid\"; };"),
          "merged job_file:\n%s", j.job_text);
    results_job_free(&j);
}

/* Two tasks in two files -> one file with both; the report reads it. */
static void test_tasks(void)
{
    char cmd[24576];
    Pair p;
    pair_start(&p, "merged.h5");
    static const int64_t peak_a[2] = {100, 300}, bytes_a[2] = {10, 20}, peak_b[3] = {200, 50, 70},
                         bytes_b[3] = {1, 2, 3};
    ResultsInfo ia = DEFAULT_INFO, ib = DEFAULT_INFO;
    ia.peak_rss_bytes = peak_a, ia.data_bytes_read = bytes_a, ia.blas = "OpenBLAS (test)";
    ib.peak_rss_bytes = peak_b, ib.data_bytes_read = bytes_b, ib.blas = "OpenBLAS (test)";
    ib.ranks = 3, ib.start = "2025-12-31T23:00:00Z", ib.end = "2026-01-01T02:00:00Z";
    if (write_input("expression/results.h5", p.ca, &p.na, "expression", 1, 8, 1, &ia, p.a, sizeof p.a) ||
        write_input("age/results.h5", p.cb, &p.nb, "age", 1, 0, 5, &ib, p.b, sizeof p.b))
        goto done;
    char job[4096];
    snprintf(job, sizeof job, "%s/grid.cfg", g_work);
    FILE *f = fopen(job, "w");
    CHECK(f != NULL, "cannot write %s", job);
    if (!f)
        goto done;
    fprintf(f, "job = { name = \"slurmgrid\"; };\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' --job '%s' -o '%s' '%s' '%s'", g_merge, job, p.out, p.a, p.b);
    int st = run(cmd, "merge.log");
    CHECK(st == 0, "occkd_merge exited %d (see %s/merge.log)", st, g_work);
    CHECK(log_has("merge.log", "8 cells from 2 files"), "the merge does not report 8 cells from 2 files");
    /* 2 tasks x (4 cells + the teacher's occluded row) */
    CHECK(count_rows(p.out, NULL) == 10, "merged /summary has %d rows, expected 10", count_rows(p.out, NULL));
    for (int i = 0; i < p.na; i++)
        check_cell(p.out, &p.ca[i]);
    for (int i = 0; i < p.nb; i++)
        check_cell(p.out, &p.cb[i]);
    check_tasks_job(p.out, job, p.a, p.b);
    snprintf(cmd, sizeof cmd, "'%s' '%s'", g_report, p.out);
    st = run(cmd, "report.txt");
    CHECK(st == 0, "occkd_report on the merged file exited %d", st);
    CHECK(log_has("report.txt", "expression") && log_has("report.txt", "age"), "the report lacks a task");
    CHECK(log_has("report.txt", "job slurmgrid"), "the report does not name the job given with --job");
    CHECK(log_has("report.txt", "5 ranks; started 2025-12-31T23:00:00Z, ended 2026-01-01T02:00:00Z"),
          "the report does not show the merged ranks and times");
    /* a merged file merges again, here with itself as the output */
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' '%s'", g_merge, p.out, p.out);
    CHECK(run(cmd, "remerge.log") == 0, "merging the merged file into itself failed");
    check_cell(p.out, &p.ca[0]);
    check_cell(p.out, &p.cb[3]);
done:
    pair_free(&p);
}

/* The merged /job of test_seeds (no --job): the first input's job text and
 * path, both versions, ranks summed, no per-rank values (not recorded). */
static void check_seeds_job(const char *out)
{
    ResultsJob j;
    if (read_job(out, &j))
        return;
    CHECK(j.job_text && strstr(j.job_text, "seed1.h5") && strstr(j.job_text, "job = { name = \"part\"; };") &&
              j.job_path && !strcmp(j.job_path, "part.cfg"),
          "without --job the first input's job is kept: %s (%s)", j.job_text, j.job_path);
    CHECK(j.version && !strcmp(j.version, "test, test2"), "versions that differ are listed: %s", j.version);
    CHECK(j.ranks == 4 && j.n_rank_values == 0 && !j.blas, "ranks %lld, %d per-rank values, BLAS %s",
          (long long)j.ranks, j.n_rank_values, j.blas);
    results_job_free(&j);
}

/* Two seeds of the same cells: mean and std rows appear. */
static void test_seeds(void)
{
    char cmd[24576];
    Pair p;
    pair_start(&p, "seeds.h5");
    ResultsInfo ib = DEFAULT_INFO;
    ib.version = "test2";
    if (write_input("seed1.h5", p.ca, &p.na, "age", 1, 0, 1, NULL, p.a, sizeof p.a) ||
        write_input("seed2.h5", p.cb, &p.nb, "age", 2, 0, 9, &ib, p.b, sizeof p.b))
        goto done;
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' '%s' '%s'", g_merge, p.out, p.a, p.b);
    CHECK(run(cmd, "seeds.log") == 0, "merging two seeds failed");
    CHECK(count_rows(p.out, "mean") == 5 && count_rows(p.out, "std") == 5,
          "expected 5 mean and 5 std rows, got %d, %d", count_rows(p.out, "mean"), count_rows(p.out, "std"));
    SummaryRow *rows;
    int n;
    char err[1024];
    if (results_read_summary(p.out, &rows, &n, err, sizeof err) == 0) {
        int seen = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(rows[i].method, "kd") && !strcmp(rows[i].seed, "mean")) {
                double want = (p.ca[2].value + p.cb[2].value) / 2;
                CHECK(fabs(rows[i].value - want) < 1e-12, "kd mean %g, expected %g", rows[i].value, want);
                seen = 1;
            }
        CHECK(seen, "no kd mean row");
        free(rows);
    }
    check_cell(p.out, &p.cb[1]);
    check_seeds_job(p.out);
done:
    pair_free(&p);
}

static void test_refusals(void)
{
    char a[4096], out[4096], cmd[16384];
    snprintf(a, sizeof a, "%s/expression/results.h5", g_work);
    snprintf(out, sizeof out, "%s/refused.h5", g_work);
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' '%s' '%s'", g_merge, out, a, a);
    CHECK(run(cmd, "dup.log") == 1, "a cell given twice was not refused with status 1");
    CHECK(log_has("dup.log", "expression/vgg_f/teacher seed 1 is in both"), "the duplicate message names no cell");
    snprintf(cmd, sizeof cmd, "'%s' -o '%s' '%s' '%s/missing.h5'", g_merge, out, a, g_work);
    CHECK(run(cmd, "missing.log") == 1, "a missing input was not refused with status 1");
    CHECK(log_has("missing.log", "missing.h5"), "the message does not name the missing input");
    snprintf(cmd, sizeof cmd, "'%s' '%s'", g_merge, a);
    CHECK(run(cmd, "noout.log") == 2, "a missing -o was not refused with status 2");
    CHECK(log_has("noout.log", "no output file"), "the usage message does not ask for -o");
    struct stat st;
    CHECK(stat(out, &st) != 0, "a refused merge left %s behind", out);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_merge OCCKD_MERGE OCCKD_REPORT WORKDIR\n");
        return 2;
    }
    g_merge = argv[1], g_report = argv[2], g_work = argv[3];
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_work, g_work);
    if (system(cmd) != 0) {
        fprintf(stderr, "test_merge: cannot prepare %s\n", g_work);
        return 1;
    }
    test_tasks();
    test_seeds();
    test_refusals();
    return test_finish("test_merge");
}
