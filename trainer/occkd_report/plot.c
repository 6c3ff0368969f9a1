/* plot.c - occkd_report --plot: for every task x model, the training loss
 * and the validation metric per epoch of each method (the cells' history
 * tables), drawn with PLplot into a PNG. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef OCCKD_HAVE_PLPLOT
#include <plplot.h>
#endif

#include "report.h"

#ifdef OCCKD_HAVE_PLPLOT

/* One curve: a cell's (per seed) history. */
typedef struct {
    int task, model, method;  /* indices into the layout's lists */
    int n;
    const EpochRecord *h;     /* the cell's history rows */
} Curve;

/* The curves of every cell with a history (fusions and cells that never
 * ran have none), in /summary's order. */
static int collect_curves(const Report *r, const Layout *L, Curve **out, int *n_out, char *err, size_t errlen)
{
    Curve *c = calloc((size_t)r->n_cells + 1, sizeof *c);
    int n = 0;
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < r->n_cells; i++) {
        const CellResult *cell = &r->cells[i];
        if (cell->history.n > 0)
            c[n++] = (Curve){name_index(&L->tasks, cell->task), name_index(&L->models, cell->model),
                             name_index(&L->methods, cell->method), cell->history.n, cell->history.rows};
    }
    *out = c;
    *n_out = n;
    return 0;
}

/* Colours of methods (cmap0 indices 2..); teacher dark grey, student blue. */
static const unsigned char PALETTE[][3] = {
    {60, 60, 60},   {150, 150, 150}, {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
    {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {188, 189, 34}, {23, 190, 207}, {127, 127, 127},
};
#define N_PALETTE ((int)(sizeof PALETTE / sizeof PALETTE[0]))

/* The same method gets the same colour in every job: the paper's methods
 * by their fixed position, fusions after them in order of appearance. */
static int method_colour(const Layout *L, int method)
{
    const char *name = L->methods.name[method];
    int k = 0;
    for (int c = 0; c < N_CANONICAL; c++) {
        if (strcmp(name, canonical_method(c)) == 0)
            return 2 + c;
        k += name_index(&L->methods, canonical_method(c)) >= 0;
    }
    return 2 + (N_CANONICAL + method - k) % N_PALETTE;
}

/* Draws the rows of one curve as a polyline, broken where a value is not a
 * number; `field` 0 train loss, 1 validation metric (scaled by `scale`). */
static void draw_curve(const Curve *c, int field, double scale, PLFLT *x, PLFLT *y)
{
    int k = 0;
    for (int i = 0; i <= c->n; i++) {
        double v = i < c->n ? (field ? c->h[i].val_metric * scale : c->h[i].train_loss) : NAN;
        if (i < c->n && isfinite(v)) {
            x[k] = (double)c->h[i].epoch;
            y[k] = v;
            k++;
            continue;
        }
        if (k == 1)
            plpoin(1, x, y, 17);
        else if (k > 1)
            plline(k, x, y);
        k = 0;
    }
}

typedef struct {
    double x0, x1, y0, y1;
} Range;

static Range curve_range(const Curve *c, int n, int task, int model, int field, double scale)
{
    Range r = {INFINITY, -INFINITY, INFINITY, -INFINITY};
    for (int k = 0; k < n; k++) {
        if (c[k].task != task || c[k].model != model)
            continue;
        for (int i = 0; i < c[k].n; i++) {
            double v = field ? c[k].h[i].val_metric * scale : c[k].h[i].train_loss;
            double e = (double)c[k].h[i].epoch;
            if (!isfinite(v))
                continue;
            r.x0 = fmin(r.x0, e), r.x1 = fmax(r.x1, e);
            r.y0 = fmin(r.y0, v), r.y1 = fmax(r.y1, v);
        }
    }
    if (!isfinite(r.x0))
        return (Range){0, 1, 0, 1};
    if (r.x1 - r.x0 < 1)
        r.x0 -= 0.5, r.x1 += 0.5;
    double pad = 0.06 * (r.y1 - r.y0);
    if (pad <= 0)
        pad = fabs(r.y0) > 0 ? 0.05 * fabs(r.y0) : 0.5;
    r.y0 -= pad, r.y1 += pad;
    return r;
}

/* Layout of the page in normalised device coordinates. */
#define PANEL_W 420
#define PANEL_H 250
#define TOP_PX 100
#define LEFT_PX 20
#define MIN_WIDTH_PX 700
#define FONT_REF_PX 1980 /* width + height of the page the text sizes were chosen on */

static void draw_panel(const Report *r, const Layout *L, const Curve *c, int n, int task, int model, int field,
                       double vx0, double vx1, double vy0, double vy1, PLFLT *x, PLFLT *y)
{
    const char *metric = "";
    for (int i = 0; i < r->n_rows; i++)
        if (strcmp(r->rows[i].task, L->tasks.name[task]) == 0) {
            metric = r->rows[i].metric;
            break;
        }
    double scale = field && is_accuracy(metric) ? 100.0 : 1.0;
    Range g = curve_range(c, n, task, model, field, scale);
    plvpor(vx0, vx1, vy0, vy1);
    plwind(g.x0, g.x1, g.y0, g.y1);
    plcol0(1);
    plwidth(1.0);
    double span = g.x1 - g.x0, xtick = span <= 12 ? 1.0 : 0.0;  // whole epochs while they fit
    plbox("bcnst", xtick, xtick > 0 ? 1 : 0, "bcnstv", 0.0, 0);
    char title[3 * NAME_LEN];
    const char *what = !field ? "train loss" : is_accuracy(metric) ? "val accuracy (%)" : is_mae(metric)
                                                                                          ? "val MAE (years)"
                                                                                          : "val metric";
    snprintf(title, sizeof title, "%s / %s: %s", L->tasks.name[task], L->models.name[model], what);
    plmtex("t", 1.0, 0.5, 0.5, title);
    plmtex("b", 3.0, 0.5, 0.5, "epoch");
    int any = 0;
    plwidth(2.0);
    for (int k = 0; k < n; k++) {
        if (c[k].task != task || c[k].model != model)
            continue;
        plcol0(method_colour(L, c[k].method));
        draw_curve(&c[k], field, scale, x, y);
        any = 1;
    }
    plwidth(1.0);
    if (!any) {
        int cell = 0;
        for (int p = 0; p < L->n_pairs; p++)
            cell |= L->pair_task[p] == task && L->pair_model[p] == model;
        plcol0(1);
        plptex(0.5 * (g.x0 + g.x1), 0.5 * (g.y0 + g.y1), 1, 0, 0.5, cell ? "no history" : "not in the job");
    }
}

/* The legend: one entry per method that has a curve (a short line in the
 * method's colour and its name), two to six to a row as the page's width
 * allows, in the strip under the title. */
static void draw_legend(const Layout *L, const Curve *c, int n, double top, int width, double font)
{
    int used[256] = {0}, k = 0, per_row = width / 220 < 2 ? 2 : width / 220 > 6 ? 6 : width / 220;
    for (int i = 0; i < n; i++)
        used[c[i].method] = 1;
    plvpor(0.04, 0.98, top + 0.05 * (1.0 - top), top + 0.58 * (1.0 - top));
    plwind(0, 1, 0, 1);
    plschr(0.0, 0.6 * font);
    for (int m = 0; m < L->methods.n; m++) {
        if (!used[m])
            continue;
        double w = 1.0 / per_row;
        PLFLT x[2] = {w * (k % per_row), w * (k % per_row) + 0.2 * w}, y[2];
        y[0] = y[1] = 0.75 - 0.5 * (k / per_row);
        plcol0(method_colour(L, m));
        plwidth(3.0);
        plline(2, x, y);
        plcol0(1);
        plwidth(1.0);
        plptex(x[1] + 0.05 * w, y[0], 1, 0, 0.0, column_title(L->methods.name[m]));
        k++;
    }
    plschr(0.0, 0.65 * font);
}

static int plot_exit_handler(PLCHAR_VECTOR msg)
{
    fprintf(stderr, "occkd_report: plotting failed: %s\n", msg);
    return 1;
}

int write_plot(const Report *r, const char *out, char *err, size_t errlen)
{
    Layout L;
    if (layout_build(r, &L, err, errlen) < 0)
        return REPORT_INVALID;
    Curve *c;
    int n;
    if (collect_curves(r, &L, &c, &n, err, errlen) < 0)
        return REPORT_INVALID;
    FILE *probe = fopen(out, "wb");
    if (!probe) {
        snprintf(err, errlen, "%s: cannot be written", out);
        free(c);
        return REPORT_FAILED;
    }
    fclose(probe);
    int max_len = 1;
    for (int k = 0; k < n; k++)
        max_len = c[k].n + 1 > max_len ? c[k].n + 1 : max_len;
    PLFLT *x = malloc((size_t)max_len * sizeof *x), *y = malloc((size_t)max_len * sizeof *y);

    int cols = L.models.n > 0 ? L.models.n : 1, rows = 2 * (L.tasks.n > 0 ? L.tasks.n : 1);
    int width = LEFT_PX * 2 + cols * PANEL_W, height = TOP_PX + rows * PANEL_H;
    width = width < MIN_WIDTH_PX ? MIN_WIDTH_PX : width; // room for the title and legend
    char geometry[64];
    snprintf(geometry, sizeof geometry, "%dx%d", width, height);
    plsexit(plot_exit_handler);
    plsdev("pngcairo");
    plsfnam(out);
    plsetopt("geometry", geometry);
    plscol0(0, 255, 255, 255);
    plscol0(1, 0, 0, 0);
    for (int i = 0; i < N_PALETTE; i++)
        plscol0(2 + i, PALETTE[i][0], PALETTE[i][1], PALETTE[i][2]);
    plinit();
    pladv(0);
    double top = 1.0 - (double)TOP_PX / height;
    // title strip
    plvpor(0.0, 1.0, top, 1.0);
    plwind(0, 1, 0, 1);
    plcol0(1);
    char title[2 * NAME_LEN];
    snprintf(title, sizeof title, "occkd: training curves of job %s", r->job_name[0] ? r->job_name : "(unnamed)");
    // PLplot's default text height grows with width + height of the page;
    // keep the text the same size in pixels whatever the grid
    double font = (double)FONT_REF_PX / (width + height);
    plschr(0.0, 1.0 * font);
    plmtex("t", -1.5, 0.5, 0.5, title);
    plschr(0.0, 0.65 * font);
    draw_legend(&L, c, n, top, width, font);
    // panels: a column per model; per task a loss row over a validation row
    double pw = (1.0 - 2.0 * LEFT_PX / width) / cols, ph = top / rows;
    for (int t = 0; t < L.tasks.n; t++)
        for (int m = 0; m < L.models.n; m++)
            for (int field = 0; field < 2; field++) {
                int row = 2 * t + field;
                double x0 = (double)LEFT_PX / width + m * pw, y1 = top - row * ph;
                draw_panel(r, &L, c, n, t, m, field, x0 + 0.16 * pw, x0 + 0.96 * pw, y1 - 0.74 * ph, y1 - 0.13 * ph,
                           x, y);
            }
    plend();
    free(x);
    free(y);
    free(c);
    fprintf(stderr, "occkd_report: wrote %s (%d x %d, %d curves in %d panels)\n", out, width, height, n,
            2 * L.tasks.n * L.models.n);
    return REPORT_OK;
}

#else

int write_plot(const Report *r, const char *out, char *err, size_t errlen)
{
    snprintf(err, errlen, "--plot: this occkd_report was built without PLplot (install libplplot-dev and "
                          "plplot-driver-cairo, e.g. with jobs/setup-debian.sh, and rebuild)");
    return REPORT_FAILED;
}

#endif
