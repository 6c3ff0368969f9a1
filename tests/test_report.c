/* test_report - occkd_report on small results files in the layout that
 * checkpoints.h documents at results_write: the table (values, marks,
 * omitted columns, mean ± std over seeds, failed and skipped cells), the CSV
 * (parsed back to the exact doubles), the training-curve image (a PNG of the
 * expected size with the methods' colours in it) and the refusals of bad
 * input (exit status 2 and a message naming the problem).
 *
 *   test_report OCCKD_REPORT FIXTURE_DIR plot|noplot
 *
 * The good fixtures are written with results_write() (checkpoints/), so the
 * report is tested on exactly what the trainer writes. One more good file and
 * the damaged ones are written here with the HDF5 C API in the documented
 * layout: its /summary stores the fields in a shuffled order and with other
 * string sizes, which proves that the report finds fields by name.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <hdf5.h>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb/stb_image.h>

#include "checkpoints/checkpoints.h"

#include "gradcheck.h" /* CHECK, g_failures */

/* ------------------------------------------------------------ fixtures */

static const char FIXTURE_JOB[] = "job = { name = \"fixture-grid\"; output = \"runs/fixture\"; };\n";

/* One trained (or failed) cell for one seed, as the trainer reports it. */
typedef struct {
    const char *task, *model, *method;
    int seed;
    const char *status, *message, *metric;
    double value, value_occluded, p_value, p_value_occluded;
    int epochs;  /* history rows (0: none, e.g. fusions and cells that never ran) */
} FixCell;

/* /summary in the file: field order shuffled, strings of other sizes. */
typedef struct {
    char status[12];
    double p_value;
    char task[48];
    double value;
    char metric[12];
    char seed[12];
    char model[40];
    char method[56];
} FileRow;

typedef struct {
    double epoch, lr, train_loss, val_metric, images_per_s;
} FileHistory;

static void put_attr_text(hid_t obj, const char *name, const char *text)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(text) + 1);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, text);
    H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
}

static void put_attr_int(hid_t obj, const char *name, int v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, &v);
    H5Aclose(a);
    H5Sclose(s);
}

static hid_t string_type(size_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    return t;
}

/* The compound type of FileRow; `drop` names a field to leave out. */
static hid_t summary_type(const char *drop)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(FileRow));
#define STR_FIELD(f)                                                                                         \
    if (!drop || strcmp(drop, #f)) {                                                                         \
        hid_t st = string_type(sizeof((FileRow *)0)->f);                                                     \
        H5Tinsert(t, #f, HOFFSET(FileRow, f), st);                                                           \
        H5Tclose(st);                                                                                        \
    }
#define NUM_FIELD(f)                                                                                         \
    if (!drop || strcmp(drop, #f))                                                                           \
        H5Tinsert(t, #f, HOFFSET(FileRow, f), H5T_NATIVE_DOUBLE);
    STR_FIELD(status) NUM_FIELD(p_value) STR_FIELD(task) NUM_FIELD(value) STR_FIELD(metric) STR_FIELD(seed)
        STR_FIELD(model) STR_FIELD(method)
#undef STR_FIELD
#undef NUM_FIELD
    return t;
}

static void fill_row(FileRow *r, const FixCell *c, const char *method, const char *seed, double value, double p,
                     const char *status)
{
    memset(r, 0, sizeof *r);
    snprintf(r->task, sizeof r->task, "%s", c->task);
    snprintf(r->model, sizeof r->model, "%s", c->model);
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->seed, sizeof r->seed, "%s", seed);
    snprintf(r->metric, sizeof r->metric, "%s", c->metric);
    snprintf(r->status, sizeof r->status, "%s", status);
    r->value = value;
    r->p_value = p;
}

static int n_seeds(const FixCell *cells, int n)
{
    int seeds[64], k = 0;
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < k && seeds[j] != cells[i].seed)
            j++;
        if (j == k)
            seeds[k++] = cells[i].seed;
    }
    return k;
}

/* Appends the "mean" and "std" rows (sample std over the done seeds) of
 * every (task, model, method) after the per-seed rows. */
static int add_aggregates(const FileRow *rows, int n, FileRow *out)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= !strcmp(rows[j].task, rows[i].task) && !strcmp(rows[j].model, rows[i].model) &&
                    !strcmp(rows[j].method, rows[i].method);
        if (seen)
            continue;
        double sum = 0, sq = 0;
        int m = 0, all = 0;
        for (int j = 0; j < n; j++) {
            if (strcmp(rows[j].task, rows[i].task) || strcmp(rows[j].model, rows[i].model) ||
                strcmp(rows[j].method, rows[i].method))
                continue;
            all++;
            if (!strcmp(rows[j].status, "done")) {
                sum += rows[j].value;
                sq += rows[j].value * rows[j].value;
                m++;
            }
        }
        double mean = m ? sum / m : NAN, sd = m > 1 ? sqrt((sq - m * mean * mean) / (m - 1)) : NAN;
        out[k] = rows[i];
        snprintf(out[k].seed, sizeof out[k].seed, "mean");
        out[k].value = mean;
        out[k].p_value = NAN;
        snprintf(out[k].status, sizeof out[k].status, "%s", m == all ? "done" : m ? "incomplete" : "failed");
        out[k + 1] = out[k];
        snprintf(out[k + 1].seed, sizeof out[k + 1].seed, "std");
        out[k + 1].value = sd;
        k += 2;
    }
    return k;
}

static hid_t open_or_create(hid_t loc, const char *name)
{
    return H5Lexists(loc, name, H5P_DEFAULT) > 0 ? H5Gopen(loc, name, H5P_DEFAULT)
                                                 : H5Gcreate(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

/* A plain 1-D dataset loc/name of n rows of type t (no chunks, no filters). */
static void write_table(hid_t loc, const char *name, hid_t t, int n, const void *rows)
{
    hsize_t dim = (hsize_t)n;
    hid_t s = H5Screate_simple(1, &dim, NULL);
    hid_t d = H5Dcreate(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows);
    H5Dclose(d);
    H5Sclose(s);
}

/* Epoch e of a cell's made-up training curves: the loss falls, the
 * validation metric rises towards the test value; each method at its own
 * height, so that the curves do not hide one another. */
static void fixture_curve(const FixCell *c, int e, double *train_loss, double *val_metric)
{
    double offset = 0.0;
    for (const char *m = c->method; *m; m++)
        offset += 0.013 * (unsigned char)*m;
    offset -= floor(offset);
    *train_loss = 2.0 * exp(-0.4 * e) + offset;
    *val_metric = c->value * (1.0 - 0.5 * exp(-0.6 * e));
}

/* /<task>/<model>/<method>/seed-<n> with its attributes and history. */
static void write_cell_group(hid_t file, const FixCell *c)
{
    hid_t g[4];
    char name[32];
    snprintf(name, sizeof name, "seed-%d", c->seed);
    g[0] = open_or_create(file, c->task);
    g[1] = open_or_create(g[0], c->model);
    g[2] = open_or_create(g[1], c->method);
    g[3] = open_or_create(g[2], name);
    int depth = 4;
    hid_t cell = g[depth - 1];
    put_attr_text(cell, "status", c->status);
    put_attr_text(cell, "message", c->message ? c->message : "");
    if (c->epochs > 0) {
        FileHistory *h = calloc((size_t)c->epochs, sizeof *h);
        for (int e = 0; e < c->epochs; e++) {
            h[e] = (FileHistory){e + 1, 0.01, 0, 0, 1000.0};
            fixture_curve(c, e, &h[e].train_loss, &h[e].val_metric);
        }
        hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(FileHistory));
        H5Tinsert(t, "epoch", HOFFSET(FileHistory, epoch), H5T_NATIVE_DOUBLE);
        H5Tinsert(t, "lr", HOFFSET(FileHistory, lr), H5T_NATIVE_DOUBLE);
        H5Tinsert(t, "train_loss", HOFFSET(FileHistory, train_loss), H5T_NATIVE_DOUBLE);
        H5Tinsert(t, "val_metric", HOFFSET(FileHistory, val_metric), H5T_NATIVE_DOUBLE);
        H5Tinsert(t, "images_per_s", HOFFSET(FileHistory, images_per_s), H5T_NATIVE_DOUBLE);
        write_table(cell, "history", t, c->epochs, h);
        H5Tclose(t);
        free(h);
    }
    for (int i = depth - 1; i >= 0; i--)
        H5Gclose(g[i]);
}

/* What a fixture leaves out or changes, to provoke the reader's refusals. */
typedef struct {
    const char *format;      /* NULL: no format attribute */
    int no_summary;
    const char *drop_field;  /* a /summary field to leave out */
} Damage;

/* Writes results.h5 from cells the way results_write documents it. */
static int write_fixture(const char *path, const FixCell *cells, int n, const Damage *dmg)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return -1;
    const char *format = dmg ? dmg->format : "occkd-results-1";
    hid_t job = H5Gcreate(f, "job", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (format)
        put_attr_text(job, "format", format);
    put_attr_text(job, "job_file", FIXTURE_JOB);
    put_attr_text(job, "job_path", "jobs/fixture.cfg");
    put_attr_text(job, "occkd_version", "0.1.0");
    put_attr_int(job, "ranks", 2);
    put_attr_text(job, "start", "2024-05-01T10:00:00Z");
    put_attr_text(job, "end", "2024-05-01T10:09:30Z");
    H5Gclose(job);

    int several = n_seeds(cells, n) > 1;
    FileRow *rows = calloc((size_t)n * 6 + 1, sizeof *rows);
    int k = 0;
    for (int i = 0; i < n; i++) {
        const FixCell *c = &cells[i];
        char seed[12];
        snprintf(seed, sizeof seed, "%d", c->seed % 1000000);
        fill_row(&rows[k++], c, c->method, seed, c->value, c->p_value, c->status);
        if (!strcmp(c->method, "teacher"))
            fill_row(&rows[k++], c, "teacher (occluded)", seed, c->value_occluded, c->p_value_occluded, c->status);
        write_cell_group(f, c);
    }
    if (several)
        k += add_aggregates(rows, k, rows + k);
    if (!dmg || !dmg->no_summary) {
        hid_t t = summary_type(dmg ? dmg->drop_field : NULL);
        write_table(f, "summary", t, k, rows);
        H5Tclose(t);
    }
    free(rows);
    return H5Fclose(f) < 0 ? -1 : 0;
}

/* Writes results.h5 from cells with the project's own writer, so that the
 * report reads exactly what the trainer writes. */
static int write_results(const char *path, const FixCell *cells, int n)
{
    CellResult *r = calloc((size_t)n, sizeof *r);
    for (int i = 0; i < n; i++) {
        const FixCell *c = &cells[i];
        CellResult *x = &r[i];
        snprintf(x->task, sizeof x->task, "%s", c->task);
        snprintf(x->model, sizeof x->model, "%s", c->model);
        snprintf(x->method, sizeof x->method, "%s", c->method);
        snprintf(x->status, sizeof x->status, "%s", c->status);
        snprintf(x->message, sizeof x->message, "%s", c->message ? c->message : "");
        snprintf(x->metric, sizeof x->metric, "%s", c->metric);
        x->seed = (uint64_t)c->seed;
        x->value = c->value;
        x->value_occluded = c->value_occluded;
        x->p_value = c->p_value;
        x->p_value_occluded = c->p_value_occluded;
        x->seconds = 1.0;
        x->best_epoch = c->epochs;
        for (int e = 0; e < c->epochs; e++) {
            EpochRecord row = {.epoch = e + 1, .lr = 0.01, .images_per_s = 1000.0};
            fixture_curve(c, e, &row.train_loss, &row.val_metric);
            history_append(&x->history, &row);
        }
    }
    ResultsInfo info = {.job_text = FIXTURE_JOB, .job_path = "jobs/fixture.cfg", .version = "0.1.0", .ranks = 2,
                        .start = "2024-05-01T10:00:00Z", .end = "2024-05-01T10:09:30Z"};
    char err[1024];
    int rc = results_write(path, &info, r, n, err, sizeof err);
    if (rc)
        fprintf(stderr, "test_report: results_write: %s\n", err);
    for (int i = 0; i < n; i++)
        cell_result_free(&r[i]);
    free(r);
    return rc;
}

/* ------------------------------------------------------ running the program */

typedef struct {
    int status;     /* exit status, or -1 when it did not exit normally */
    char *out, *err;
} Run;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n = 0;
    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    char *s = calloc((size_t)(n > 0 ? n : 0) + 1, 1);
    if (!s) {
        fprintf(stderr, "test_report: out of memory reading %s\n", path);
        exit(1);
    }
    if (f && n > 0 && (fseek(f, 0, SEEK_SET) != 0 || fread(s, 1, (size_t)n, f) != (size_t)n))
        s[0] = '\0';
    if (f)
        fclose(f);
    return s;
}

static Run run(const char *prog, const char *dir, const char *args)
{
    char cmd[4096], out[1024], err[1024];
    snprintf(out, sizeof out, "%s/stdout.txt", dir);
    snprintf(err, sizeof err, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", prog, args, out, err);
    int rc = system(cmd);
    Run r = {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out), slurp(err)};
    return r;
}

static void run_free(Run *r)
{
    free(r->out);
    free(r->err);
}

/* Splits a table line into cells: the columns are separated by two or
 * more spaces, cells hold at most single spaces. Returns the cell count. */
static int split_cells(const char *line, char cells[][64], int max)
{
    int n = 0;
    const char *p = line;
    while (*p && *p != '\n' && n < max) {
        while (*p == ' ')
            p++;
        if (!*p || *p == '\n')
            break;
        int k = 0;
        while (*p && *p != '\n' && !(p[0] == ' ' && p[1] == ' ') && k < 63)
            cells[n][k++] = *p++;
        while (k > 0 && cells[n][k - 1] == ' ')
            k--;
        cells[n][k] = '\0';
        n++;
    }
    return n;
}

/* The table line whose first two cells are task and model (or the title
 * line for task "task"), split into cells; returns the count or -1. */
static int table_row(const char *out, const char *task, const char *model, char cells[][64], int max)
{
    const char *line = out;
    while (*line) {
        int n = split_cells(line, cells, max);
        if (n >= 2 && !strcmp(cells[0], task) && !strcmp(cells[1], model))
            return n;
        const char *next = strchr(line, '\n');
        if (!next)
            break;
        line = next + 1;
    }
    return -1;
}

static void expect_row(const char *out, const char *task, const char *model, const char *const *want, int n_want)
{
    char cells[32][64];
    int n = table_row(out, task, model, cells, 32);
    CHECK(n == n_want, "row %s/%s: %d cells, expected %d\n%s", task, model, n, n_want, out);
    for (int i = 0; i < n && i < n_want; i++)
        CHECK(!strcmp(cells[i], want[i]), "row %s/%s, column %d: '%s', expected '%s'", task, model, i, cells[i],
              want[i]);
}

/* ------------------------------------------------------------- the tests */

/* One seed: two tasks with different metrics, no kd+triplet, a fusion
 * (named with a comma, for the CSV quoting), a failed and a skipped cell. */
static const FixCell SINGLE[] = {
    {"expression", "vgg_f", "teacher", 7, "done", NULL, "accuracy", 0.8137, 0.5012, NAN, 0.0004, 6},
    {"expression", "vgg_f", "student", 7, "done", NULL, "accuracy", 0.6021, NAN, NAN, NAN, 6},
    {"expression", "vgg_f", "avg,p", 7, "done", NULL, "accuracy", 0.6666, NAN, 0.049, NAN, 0},
    {"expression", "vgg_f", "kd", 7, "done", NULL, "accuracy", 0.65432, NAN, 0.03, NAN, 6},
    {"expression", "vgg_f", "triplet", 7, "done", NULL, "accuracy", 0.6104, NAN, 0.2, NAN, 6},
    {"expression", "resnet50", "teacher", 7, "done", NULL, "accuracy", 0.7, 0.4, NAN, 0.5, 6},
    {"expression", "resnet50", "student", 7, "done", NULL, "accuracy", 0.55, NAN, NAN, NAN, 6},
    {"expression", "resnet50", "kd", 7, "failed", "loss became NaN at epoch 3, step 41", "accuracy", NAN, NAN, NAN,
     NAN, 2},
    {"expression", "resnet50", "triplet", 7, "skipped", "its teacher failed", "accuracy", NAN, NAN, NAN, NAN, 0},
    {"age", "vgg_f", "teacher", 7, "done", NULL, "mae", 5.123, 8.456, NAN, 0.001, 6},
    {"age", "vgg_f", "student", 7, "done", NULL, "mae", 7.5, NAN, NAN, NAN, 6},
    {"age", "vgg_f", "kd", 7, "done", NULL, "mae", 6.987, NAN, 0.01, NAN, 6},
    {"age", "vgg_f", "triplet", 7, "done", NULL, "mae", 7.4, NAN, 0.5, NAN, 6},
    {"age", "vgg_f", "avg,p", 7, "done", NULL, "mae", 7.0, NAN, NAN, NAN, 0},
};
#define N_SINGLE ((int)(sizeof SINGLE / sizeof SINGLE[0]))

static void test_single_table(const char *prog, const char *dir, const char *path)
{
    char args[2100];
    snprintf(args, sizeof args, "'%s'", path);
    Run r = run(prog, dir, args);
    CHECK(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    static const char *const title[] = {"task",    "model",   "metric", "teacher (clean)", "teacher (occluded)",
                                        "student", "kd",      "triplet", "avg,p"};
    expect_row(r.out, "task", "model", title, 9);  // kd+triplet never ran: no column
    static const char *const ev[] = {"expression", "vgg_f", "acc. %", "81.4", "50.1*", "60.2", "65.4*", "61.0",
                                     "66.7*"};
    expect_row(r.out, "expression", "vgg_f", ev, 9);
    static const char *const er[] = {"expression", "resnet50", "acc. %", "70.0", "40.0", "55.0", "failed",
                                     "skipped", "-"};
    expect_row(r.out, "expression", "resnet50", er, 9);
    static const char *const av[] = {"age", "vgg_f", "MAE yr", "5.12", "8.46*", "7.50", "6.99*", "7.40", "7.00"};
    expect_row(r.out, "age", "vgg_f", av, 9);
    CHECK(strstr(r.out, "job fixture-grid (jobs/fixture.cfg)"), "header names the job:\n%s", r.out);
    CHECK(strstr(r.out, "2 ranks") && strstr(r.out, "2024-05-01T10:00:00Z") && strstr(r.out, "2024-05-01T10:09:30Z"),
          "header gives ranks and dates:\n%s", r.out);
    CHECK(strstr(r.out, "* p < 0.05 against student"), "legend explains the mark:\n%s", r.out);
    CHECK(strstr(r.out, "in every seed") == NULL, "one seed: no seed wording:\n%s", r.out);
    CHECK(strstr(r.out, "MAE: mean absolute error") && strstr(r.out, "accuracy: %"), "legend names metrics:\n%s",
          r.out);
    CHECK(strstr(r.out, "failed: expression / resnet50 / kd, seed 7: loss became NaN at epoch 3, step 41"),
          "the failure's reason is listed:\n%s", r.out);
    CHECK(strstr(r.out, "skipped: expression / resnet50 / triplet, seed 7: its teacher failed"),
          "the skip's reason is listed:\n%s", r.out);
    run_free(&r);
}

/* The same cells, hand-written with /summary's fields in another order and
 * other string sizes: the table must not change. */
static void test_field_order(const char *prog, const char *dir)
{
    char path[1024], args[2100];
    snprintf(path, sizeof path, "%s/shuffled.h5", dir);
    CHECK(write_fixture(path, SINGLE, N_SINGLE, NULL) == 0, "write %s", path);
    snprintf(args, sizeof args, "'%s'", path);
    Run r = run(prog, dir, args);
    CHECK(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    static const char *const ev[] = {"expression", "vgg_f", "acc. %", "81.4", "50.1*", "60.2", "65.4*", "61.0",
                                     "66.7*"};
    expect_row(r.out, "expression", "vgg_f", ev, 9);
    static const char *const av[] = {"age", "vgg_f", "MAE yr", "5.12", "8.46*", "7.50", "6.99*", "7.40", "7.00"};
    expect_row(r.out, "age", "vgg_f", av, 9);
    run_free(&r);
}

/* Parses one CSV line (RFC 4180 quoting) into fields; returns the count. */
static int csv_split(const char *line, char fields[][128], int max)
{
    int n = 0;
    const char *p = line;
    for (;;) {
        int k = 0;
        if (*p == '"') {
            p++;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"')
                    p++;
                if (k < 127)
                    fields[n][k++] = *p;
                p++;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != '\n')
                if (k < 127)
                    fields[n][k++] = *p++;
        }
        fields[n][k] = '\0';
        if (++n == max || *p != ',')
            break;
        p++;
    }
    return n;
}

static int same_double(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

static void test_single_csv(const char *prog, const char *dir, const char *path)
{
    char args[2100];
    snprintf(args, sizeof args, "--csv '%s'", path);
    Run r = run(prog, dir, args);
    CHECK(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    const char *line = r.out;
    static const char header[] = "task,model,method,seed,metric,value,p_value,status\n";
    CHECK(!strncmp(line, header, strlen(header)), "CSV header: %.60s", line);
    line = strchr(line, '\n');
    int rows = 0, teacher_occluded = 0;
    while (line && line[1]) {
        line++;
        char f[10][128];
        int n = csv_split(line, f, 10);
        CHECK(n == 8, "CSV line %d has %d fields: %.120s", rows + 2, n, line);
        if (n == 8) {
            // find the cell this row comes from and compare every field
            int found = 0;
            for (int i = 0; i < N_SINGLE && !found; i++) {
                const FixCell *c = &SINGLE[i];
                int occ = !strcmp(f[2], "teacher (occluded)");
                if (strcmp(c->task, f[0]) || strcmp(c->model, f[1]) ||
                    strcmp(c->method, occ ? "teacher" : f[2]))
                    continue;
                found = 1;
                teacher_occluded += occ;
                double v = f[5][0] ? strtod(f[5], NULL) : NAN, p = f[6][0] ? strtod(f[6], NULL) : NAN;
                CHECK(same_double(v, occ ? c->value_occluded : c->value), "%s/%s/%s value %s", f[0], f[1], f[2],
                      f[5]);
                CHECK(same_double(p, occ ? c->p_value_occluded : c->p_value), "%s/%s/%s p_value %s", f[0], f[1],
                      f[2], f[6]);
                CHECK(!strcmp(f[3], "7") && !strcmp(f[4], c->metric) && !strcmp(f[7], c->status),
                      "%s/%s/%s seed/metric/status: %s %s %s", f[0], f[1], f[2], f[3], f[4], f[7]);
            }
            CHECK(found, "CSV row of no fixture cell: %.120s", line);
        }
        rows++;
        line = strchr(line, '\n');
    }
    CHECK(rows == N_SINGLE + 3, "CSV has %d rows, expected %d (cells plus one per teacher)", rows, N_SINGLE + 3);
    CHECK(teacher_occluded == 3, "%d teacher (occluded) rows, expected 3", teacher_occluded);
    CHECK(strstr(r.out, "\"avg,p\"") != NULL, "a name with a comma is quoted");
    run_free(&r);
}

/* Three seeds: mean ± std, marks only when every seed is significant, a
 * failed seed counted as (k/n). */
static void test_seeds(const char *prog, const char *dir, int have_plot)
{
    /* the paper's methods over seeds 1..3; seed 3 of triplet failed */
    static const char *const methods[5] = {"teacher", "student", "kd", "triplet", "kd+triplet"};
    static const double value[3][5] = {{0.90, 0.60, 0.70, 0.65, 0.68}, {0.92, 0.62, 0.71, 0.67, 0.70},
                                       {0.94, 0.64, 0.72, NAN, 0.72}};
    static const double p_value[3][5] = {{NAN, NAN, 0.01, 0.01, 0.01}, {NAN, NAN, 0.02, 0.04, 0.2},
                                         {NAN, NAN, 0.03, NAN, 0.01}};
    FixCell cells[15];
    for (int seed = 0; seed < 3; seed++)
        for (int m = 0; m < 5; m++) {
            int failed = isnan(value[seed][m]), teacher = m == 0;
            cells[5 * seed + m] = (FixCell){"gender", "vgg_face", methods[m], seed + 1,
                                            failed ? "failed" : "done", failed ? "out of memory" : NULL, "accuracy",
                                            value[seed][m], teacher ? 0.70 + 0.02 * seed : NAN, p_value[seed][m],
                                            teacher ? 0.01 * (seed + 1) : NAN, failed ? 0 : 3};
        }
    char path[1024], args[1100];
    snprintf(path, sizeof path, "%s/seeds.h5", dir);
    CHECK(write_results(path, cells, (int)(sizeof cells / sizeof cells[0])) == 0, "write %s", path);
    snprintf(args, sizeof args, "'%s'", path);
    Run r = run(prog, dir, args);
    CHECK(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    static const char *const title[] = {"task", "model",   "metric",  "teacher (clean)", "teacher (occluded)",
                                        "student", "kd", "triplet", "kd+triplet"};
    expect_row(r.out, "task", "model", title, 9);
    static const char *const want[] = {"gender",        "vgg_face",      "acc. %",      "92.0 ± 2.0",
                                       "72.0 ± 2.0*",   "62.0 ± 2.0",    "71.0 ± 1.0*", "66.0 ± 1.4* (2/3)",
                                       "70.0 ± 2.0"};
    expect_row(r.out, "gender", "vgg_face", want, 9);
    CHECK(strstr(r.out, "3 seeds: 1 2 3"), "header lists the seeds:\n%s", r.out);
    CHECK(strstr(r.out, "in every seed") && strstr(r.out, "mean ± std: over the 3 seeds"),
          "legend explains seeds:\n%s", r.out);
    run_free(&r);

    // the CSV passes the mean and std rows through
    snprintf(args, sizeof args, "--csv '%s'", path);
    r = run(prog, dir, args);
    CHECK(r.status == 0, "csv exit %d", r.status);
    const char *mean = strstr(r.out, "\ngender,vgg_face,kd,mean,accuracy,");
    CHECK(mean != NULL, "kd mean row in CSV:\n%s", r.out);
    if (mean) {
        char *end;
        double v = strtod(mean + 35, &end);
        CHECK(fabs(v - 0.71) < 1e-12 && !strncmp(end, ",,done\n", 7), "kd mean row: %.60s", mean + 1);
    }
    CHECK(strstr(r.out, "gender,vgg_face,teacher (occluded),std,accuracy,"), "teacher (occluded) std row");
    run_free(&r);

    // one curve per method and finished seed (the failed triplet seed has
    // no history); one model is drawn on a page of the minimum width
    if (have_plot) {
        snprintf(args, sizeof args, "--plot '%s/seeds.png' '%s'", dir, path);
        r = run(prog, dir, args);
        CHECK(r.status == 0 && strstr(r.err, "(700 x 600, 14 curves in 2 panels)"), "exit %d: %s", r.status, r.err);
        run_free(&r);
    }
}

/* Counts pixels of exactly one colour. */
static long count_colour(const unsigned char *px, int w, int h, int r, int g, int b)
{
    long n = 0;
    for (long i = 0; i < (long)w * h; i++)
        n += px[3 * i] == r && px[3 * i + 1] == g && px[3 * i + 2] == b;
    return n;
}

static void test_plot(const char *prog, const char *dir, const char *path, int have_plot)
{
    char png[1024], args[2200];
    snprintf(png, sizeof png, "%s/curves.png", dir);
    remove(png);
    snprintf(args, sizeof args, "--plot '%s' '%s'", png, path);
    Run r = run(prog, dir, args);
    if (!have_plot) {
        CHECK(r.status == 1 && strstr(r.err, "built without PLplot"), "exit %d: %s", r.status, r.err);
        run_free(&r);
        return;
    }
    CHECK(r.status == 0, "exit %d, stderr: %s", r.status, r.err);
    // 2 models x (2 tasks x 2 panels) of 420 x 230 px, plus margins
    CHECK(strstr(r.err, "(880 x 1100, 11 curves in 8 panels)"), "plot message: %s", r.err);
    CHECK(strstr(r.out, "task") != NULL, "the table is printed too");
    struct stat st;
    CHECK(stat(png, &st) == 0 && st.st_size > 20000 && st.st_size < 5000000, "PNG size %lld",
          (long long)(stat(png, &st) == 0 ? st.st_size : -1));
    FILE *f = fopen(png, "rb");
    unsigned char head[24] = {0};
    CHECK(f && fread(head, 1, 24, f) == 24, "read %s", png);
    if (f)
        fclose(f);
    CHECK(!memcmp(head, "\x89PNG\r\n\x1a\n", 8), "PNG signature");
    int w = 0, h = 0, ch = 0;
    unsigned char *px = stbi_load(png, &w, &h, &ch, 3);
    CHECK(px && w == 880 && h == 1100, "decoded %d x %d", w, h);
    if (px) {
        // method colours: student blue, kd orange, triplet green (see the
        // program's palette); the fusion (purple) has no history, so no curve
        long blue = count_colour(px, w, h, 31, 119, 180), orange = count_colour(px, w, h, 255, 127, 14);
        long green = count_colour(px, w, h, 44, 160, 44), red = count_colour(px, w, h, 148, 103, 189);
        long white = count_colour(px, w, h, 255, 255, 255);
        CHECK(blue > 300 && orange > 300 && green > 300, "curve pixels: blue %ld, orange %ld, green %ld", blue,
              orange, green);
        CHECK(red < 50, "no fusion curve, yet %ld red pixels", red);
        CHECK(white > (long)w * h / 2, "mostly white background (%ld of %d)", white, w * h);
        stbi_image_free(px);
    }
    run_free(&r);

    // an output that cannot be written is a failure while running
    snprintf(args, sizeof args, "--plot '%s/no-such-dir/x.png' '%s'", dir, path);
    r = run(prog, dir, args);
    CHECK(r.status == 1 && strstr(r.err, "no-such-dir/x.png: cannot be written"), "exit %d: %s", r.status, r.err);
    run_free(&r);
}

static void expect_refusal(const char *prog, const char *dir, const char *args, const char *message)
{
    Run r = run(prog, dir, args);
    CHECK(r.status == 2, "'%s': exit %d, expected 2; stderr: %s", args, r.status, r.err);
    CHECK(strstr(r.err, message) != NULL, "'%s': stderr lacks '%s': %s", args, message, r.err);
    CHECK(r.out[0] == '\0', "'%s': nothing on stdout, got: %.200s", args, r.out);
    run_free(&r);
}

static void test_errors(const char *prog, const char *dir, const char *good)
{
    char path[1024], args[2200];
    snprintf(args, sizeof args, "'%s/missing.h5'", dir);
    expect_refusal(prog, dir, args, "missing.h5: no such file");

    snprintf(path, sizeof path, "%s/text.h5", dir);
    FILE *f = fopen(path, "w");
    fputs("task,model\nthis is not HDF5\n", f);
    fclose(f);
    snprintf(args, sizeof args, "'%s'", path);
    expect_refusal(prog, dir, args, "text.h5: not an HDF5 file");

    Damage no_format = {NULL, 0, NULL};
    snprintf(path, sizeof path, "%s/no-format.h5", dir);
    CHECK(write_fixture(path, SINGLE, 2, &no_format) == 0, "write %s", path);
    snprintf(args, sizeof args, "'%s'", path);
    expect_refusal(prog, dir, args, "no-format.h5: not an occkd results file (no 'format' attribute");

    Damage other = {"occkd-checkpoint-1", 0, NULL};
    snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
    CHECK(write_fixture(path, SINGLE, 2, &other) == 0, "write %s", path);
    snprintf(args, sizeof args, "'%s'", path);
    expect_refusal(prog, dir, args, "format 'occkd-checkpoint-1', expected 'occkd-results-1'");

    Damage no_summary = {"occkd-results-1", 1, NULL};
    snprintf(path, sizeof path, "%s/no-summary.h5", dir);
    CHECK(write_fixture(path, SINGLE, 2, &no_summary) == 0, "write %s", path);
    snprintf(args, sizeof args, "'%s'", path);
    expect_refusal(prog, dir, args, "no-summary.h5: /summary is missing");

    Damage no_p = {"occkd-results-1", 0, "p_value"};
    snprintf(path, sizeof path, "%s/no-p.h5", dir);
    CHECK(write_fixture(path, SINGLE, 2, &no_p) == 0, "write %s", path);
    snprintf(args, sizeof args, "--csv '%s'", path);
    expect_refusal(prog, dir, args, "no-p.h5: /summary has no field 'p_value'");

    expect_refusal(prog, dir, "", "no results file given");
    snprintf(args, sizeof args, "--tsv '%s'", good);
    expect_refusal(prog, dir, args, "unknown option '--tsv'");
    snprintf(args, sizeof args, "'%s' --plot", good);
    expect_refusal(prog, dir, args, "--plot expects an output file name");
    snprintf(args, sizeof args, "'%s' '%s'", good, good);
    expect_refusal(prog, dir, args, "one results file expected");
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[3], "plot") && strcmp(argv[3], "noplot"))) {
        fprintf(stderr, "usage: test_report OCCKD_REPORT FIXTURE_DIR plot|noplot\n");
        return 2;
    }
    const char *prog = argv[1], *dir = argv[2];
    mkdir(dir, 0755);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char single[1024];
    snprintf(single, sizeof single, "%s/single.h5", dir);
    if (write_results(single, SINGLE, N_SINGLE) < 0) {
        fprintf(stderr, "test_report: cannot write %s\n", single);
        return 1;
    }
    test_single_table(prog, dir, single);
    test_single_csv(prog, dir, single);
    test_field_order(prog, dir);
    test_seeds(prog, dir, !strcmp(argv[3], "plot"));
    test_plot(prog, dir, single, !strcmp(argv[3], "plot"));
    test_errors(prog, dir, single);
    return test_finish("test_report");
}
