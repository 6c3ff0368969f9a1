/* job_schema.c - the generic part of the job reader: messages that name
 * "<file>:<line>" or the --set argument, the nearest known name for a
 * misspelt one, and reading a libconfig group through key tables (types,
 * ranges, enum names, sub-groups, unknown keys).
 */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/job_internal.h"

/* ------------------------------------------------------------- messages */

/* The --set argument that created s or one of its parents, or NULL. */
static const char *set_of(const config_setting_t *s)
{
    for (; s; s = config_setting_parent(s))
        if (config_setting_get_hook(s))
            return config_setting_get_hook(s);
    return NULL;
}

/* "<file>:<line>", "--set '<arg>'" or "<file>". */
static void where(const Ctx *c, const config_setting_t *s, char *buf, size_t len)
{
    const char *set = set_of(s);
    if (set)
        snprintf(buf, len, "--set '%s'", set);
    else if (s && config_setting_source_line(s) > 0)
        snprintf(buf, len, "%s:%u", c->path, (unsigned)config_setting_source_line(s));
    else
        snprintf(buf, len, "%s", c->path);
}

void append_v(Ctx *c, const char *fmt, va_list ap)
{
    if (!c->err || c->used + 1 >= c->errlen)
        return;
    int n = vsnprintf(c->err + c->used, c->errlen - c->used, fmt, ap);
    if (n > 0)
        c->used = c->used + (size_t)n < c->errlen ? c->used + (size_t)n : c->errlen - 1;
}

void append_f(Ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    append_v(c, fmt, ap);
    va_end(ap);
}

/* Records one problem located at s (NULL: the file as a whole). */
void fail(Ctx *c, const config_setting_t *s, const char *fmt, ...)
{
    c->n_errors++;
    if (c->n_errors > JOB_MAX_ERRORS)
        return;
    char loc[SET_MAX + 64];
    where(c, s, loc, sizeof loc);
    append_f(c, "%s%s: ", c->used ? "\n" : "", loc);
    va_list ap;
    va_start(ap, fmt);
    append_v(c, fmt, ap);
    va_end(ap);
}

/* The dotted path of a setting: "tasks[1].data.side". */
void key_path(const config_setting_t *s, char *buf, size_t len)
{
    const config_setting_t *chain[64];
    int n = 0;
    for (; s && !config_setting_is_root(s) && n < 64; s = config_setting_parent(s))
        chain[n++] = s;
    size_t used = 0;
    buf[0] = '\0';
    for (int i = n - 1; i >= 0 && used + 1 < len; i--) {
        const char *name = config_setting_name(chain[i]);
        int w = name ? snprintf(buf + used, len - used, "%s%s", used ? "." : "", name)
                     : snprintf(buf + used, len - used, "[%d]", config_setting_index(chain[i]));
        if (w < 0)
            break;
        used = used + (size_t)w < len ? used + (size_t)w : len - 1;
    }
    if (!buf[0])
        snprintf(buf, len, "the top level");
}

const char *type_desc(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP: return "a group { ... }";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a number";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array [ ... ]";
    case CONFIG_TYPE_LIST: return "a list ( ... )";
    }
    return "nothing";
}

/* Member `name` of group g, or NULL (g may be NULL or not a group). */
const config_setting_t *member(const config_setting_t *g, const char *name)
{
    return g && config_setting_is_group(g) ? config_setting_get_member(g, name) : NULL;
}

/* s when it is not NULL, else fallback: where a message should point. */
const config_setting_t *at_or(const config_setting_t *s, const config_setting_t *fallback)
{
    return s ? s : fallback;
}

static const WideLiteral *wide_literal(Ctx *c, const config_setting_t *s);

/* "expected <what>, got <type> (<value>)" at s. */
void fail_type(Ctx *c, const config_setting_t *s, const char *expected)
{
    char path[256], value[96] = "";
    key_path(s, path, sizeof path);
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_STRING: snprintf(value, sizeof value, " \"%.60s\"", config_setting_get_string(s)); break;
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: {
        const WideLiteral *w = wide_literal(c, s);
        if (w)
            snprintf(value, sizeof value, " %s", w->text);
        else
            snprintf(value, sizeof value, " %lld", config_setting_get_int64(s));
        break;
    }
    case CONFIG_TYPE_FLOAT: snprintf(value, sizeof value, " %g", config_setting_get_float(s)); break;
    case CONFIG_TYPE_BOOL: snprintf(value, sizeof value, " %s", config_setting_get_bool(s) ? "true" : "false"); break;
    }
    fail(c, s, "%s: expected %s, got %s%s", path, expected, type_desc(config_setting_type(s)), value);
}

/* ------------------------------------------------------ nearest names */

/* Optimal string alignment distance (insertions, deletions, substitutions and
 * swaps of neighbours cost 1), ignoring case. */
static int edit_distance(const char *a, const char *b)
{
    enum { M = 48 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= M || m >= M)
        return 1000;
    int d[M][M];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

/* Names people reach for that mean a known key. */
static const char *const key_aliases[][2] = {
    {"learning_rate", "lr"},  {"lr_schedule", "schedule"}, {"batch_size", "batch"},
    {"wd", "weight_decay"},   {"decay", "weight_decay"},   {"warmup", "warmup_epochs"},
    {"grad_accum", "accum"},  {"accumulate", "accum"},     {"T", "temperature"},
    {"alpha", "lambda"},      {"kd_weight", "lambda"},     {"triplet_weight", "beta"},
    {"architecture", "arch"}, {"dataset", "data"},         {"occluder", "occlusion"},
    {"size", "side"},         {"image_size", "side"},
    {"pretrained", "init"},   {"ranks", "groups"},
};

/* The known name closest to `name`, or NULL when none is close. */
const char *nearest(const char *name, const char *const *known, int n)
{
    const char *best = NULL;
    int best_d = 1000;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(name, known[i]);
        if (d < best_d) {
            best_d = d;
            best = known[i];
        }
    }
    for (int a = 0; a < COUNT(key_aliases); a++)
        for (int i = 0; i < n; i++)
            if (strcmp(key_aliases[a][1], known[i]) == 0) {
                int d = edit_distance(name, key_aliases[a][0]);
                if (d < best_d) {
                    best_d = d;
                    best = known[i];
                }
            }
    int len = (int)strlen(name);
    int limit = len < 6 ? 2 : len / 3 + 1;
    if (best_d <= limit)
        return best;
    for (int i = 0; i < n && len >= 2; i++) /* "hard" -> "hardest", "fer" -> "ferplus" */
        if (strncmp(known[i], name, (size_t)len) == 0)
            return known[i];
    return NULL;
}

/* "a, b, c" into buf. */
void join_names(const char *const *names, int n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used + 1 < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0)
            break;
        used = used + (size_t)w < len ? used + (size_t)w : len - 1;
    }
}

/* "unknown <what> 'x' (did you mean 'y'? known: a, b, c)" at s. */
void fail_unknown_name(Ctx *c, const config_setting_t *s, const char *what, const char *name,
                              const char *const *names, int n)
{
    char path[256], known[512];
    key_path(s, path, sizeof path);
    join_names(names, n, known, sizeof known);
    const char *near = nearest(name, names, n);
    if (near)
        fail(c, s, "%s: unknown %s '%s' (did you mean '%s'? known: %s)", path, what, name, near, known);
    else
        fail(c, s, "%s: unknown %s '%s' (known: %s)", path, what, name, known);
}

/* ---------------------------------------------------------------- ranges */

/* "> 0", ">= 1", "in [0, 1)", "<= 4" */
void range_desc(Range r, char *buf, size_t len)
{
    if (isinf(r.lo) && isinf(r.hi))
        snprintf(buf, len, "any number");
    else if (isinf(r.hi))
        snprintf(buf, len, "%s %g", r.lo_open ? ">" : ">=", r.lo);
    else if (isinf(r.lo))
        snprintf(buf, len, "%s %g", r.hi_open ? "<" : "<=", r.hi);
    else
        snprintf(buf, len, "in %c%g, %g%c", r.lo_open ? '(' : '[', r.lo, r.hi, r.hi_open ? ')' : ']');
}

static int in_range(Range r, double v)
{
    if (!isfinite(v))
        return 0;
    if (r.lo_open ? !(v > r.lo) : !(v >= r.lo))
        return 0;
    if (r.hi_open ? !(v < r.hi) : !(v <= r.hi))
        return 0;
    return 1;
}

/* ------------------------------------------------------------ one value */

static void *at(void *base, const KeyRow *r) { return (char *)base + r->offset; }

int row_names(const KeyRow *r, const char **out)
{
    int n = r->n_names < KEY_NAMES_MAX ? r->n_names : KEY_NAMES_MAX;
    for (int i = 0; i < n; i++)
        out[i] = r->names ? r->names[i] : r->name_of(i);
    return n;
}

double row_number(const KeyRow *r, const void *base)
{
    const void *p = (const char *)base + r->offset;
    switch (r->kind) {
    case K_INT:
    case K_BOOL:
    case K_ENUM: return *(const int *)p;
    case K_I64: return (double)*(const int64_t *)p;
    case K_U64: return (double)*(const uint64_t *)p;
    case K_FLOAT: return *(const float *)p;
    case K_DOUBLE: return *(const double *)p;
    default: return 0;
    }
}

/* libconfig 1.5 reads an integer literal without the L suffix in 32 bits
 * (4294967297 becomes 1) and clamps one beyond 64 bits; the file's literal
 * is read again for the exact value (scan_wide_literals, once per file).
 * Values of --set are read in 64 bits when they are parsed (job_set.c).
 * The wide literal of s, or NULL when libconfig's value is right. */
static const WideLiteral *wide_literal(Ctx *c, const config_setting_t *s)
{
    if (set_of(s))
        return NULL;
    if (!c->wide_scanned) {
        c->wide_scanned = 1;
        char why[8];
        size_t len;
        char *text = read_text(c->path, &len, why, sizeof why);
        if (text)
            c->n_wide = scan_wide_literals(text, c->wide, WIDE_MAX);
        free(text);
        if (c->n_wide > WIDE_MAX)
            fail(c, NULL, "%d integers need more than 32 bits: at most %d are read without the L suffix "
                          "(write 5000000000L)", c->n_wide, WIDE_MAX);
    }
    char path[256];
    key_path(s, path, sizeof path);
    for (int i = 0; i < c->n_wide && i < WIDE_MAX; i++)
        if (strcmp(c->wide[i].path, path) == 0)
            return &c->wide[i];
    return NULL;
}

int setting_integer(Ctx *c, const config_setting_t *s, long long *out)
{
    *out = config_setting_get_int64(s);
    const WideLiteral *w = wide_literal(c, s);
    if (w && w->beyond) {
        char path[256];
        key_path(s, path, sizeof path);
        fail(c, s, "%s = %s does not fit in a 64-bit integer", path, w->text);
        return -1;
    }
    if (w)
        *out = w->value;
    return 0;
}

/* The number in s for a numeric row: integers for integer kinds, exact in
 * *iv (and as near as a double goes in *v). 0 or -1. */
static int get_number(Ctx *c, const KeyRow *k, const config_setting_t *s, double *v, long long *iv)
{
    int type = config_setting_type(s);
    int integral = k->kind == K_INT || k->kind == K_I64 || k->kind == K_U64;
    int exact = type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
    *iv = 0;
    if (exact) {
        if (setting_integer(c, s, iv))
            return -1;
        *v = (double)*iv;
    } else if (type == CONFIG_TYPE_FLOAT && !integral)
        *v = config_setting_get_float(s);
    else {
        fail_type(c, s, integral ? "an integer" : "a number");
        return -1;
    }
    char path[256], shown[32];
    key_path(s, path, sizeof path);
    if (exact)
        snprintf(shown, sizeof shown, "%lld", *iv);
    else
        snprintf(shown, sizeof shown, "%g", *v);
    if (k->kind == K_INT && in_range(k->r, *v) && !(*iv >= INT_MIN && *iv <= INT_MAX)) {
        fail(c, s, "%s = %s is too large (at most %d)", path, shown, INT_MAX);
        return -1;
    }
    if (!in_range(k->r, *v)) {
        char want[96];
        range_desc(k->r, want, sizeof want);
        fail(c, s, "%s = %s is out of range (expected %s)", path, shown, want);
        return -1;
    }
    return 0;
}

static int parse_string(Ctx *c, const KeyRow *k, const config_setting_t *s, char *dst)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        fail_type(c, s, "a string");
        return -1;
    }
    const char *v = config_setting_get_string(s);
    if (strlen(v) >= k->size) {
        char path[256];
        key_path(s, path, sizeof path);
        fail(c, s, "%s is too long (at most %zu characters)", path, k->size - 1);
        return -1;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int parse_enum(Ctx *c, const KeyRow *k, const config_setting_t *s, int *dst)
{
    const char *names[KEY_NAMES_MAX];
    int n = row_names(k, names);
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        char want[600], known[512];
        join_names(names, n, known, sizeof known);
        snprintf(want, sizeof want, "a string (one of %s)", known);
        fail_type(c, s, want);
        return -1;
    }
    const char *v = config_setting_get_string(s);
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) {
            *dst = i;
            return 0;
        }
    fail_unknown_name(c, s, k->name, v, names, n);
    return -1;
}

int parse_row(Ctx *c, const KeyRow *k, const config_setting_t *s, void *base)
{
    double v;
    long long iv;
    if (k->kind == K_GROUP || k->kind == K_REF)
        return 0; /* read by the caller (base may be NULL for a table of these only) */
    void *dst = at(base, k);
    switch (k->kind) {
    case K_BOOL:
        if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
            fail_type(c, s, "a boolean (true or false)");
            return -1;
        }
        *(int *)dst = config_setting_get_bool(s) ? 1 : 0;
        return 0;
    case K_STRING: return parse_string(c, k, s, dst);
    case K_ENUM: return parse_enum(c, k, s, dst);
    default: break;
    }
    if (get_number(c, k, s, &v, &iv))
        return -1;
    switch (k->kind) {
    case K_INT: *(int *)dst = (int)iv; break;
    case K_I64: *(int64_t *)dst = iv; break;
    case K_U64: *(uint64_t *)dst = (uint64_t)iv; break;
    case K_FLOAT: *(float *)dst = (float)v; break;
    case K_DOUBLE: *(double *)dst = v; break;
    default: break;
    }
    return 0;
}

void table_defaults(const KeyTable *t, void *base)
{
    for (int i = 0; i < t->n; i++) {
        const KeyRow *r = &t->rows[i];
        void *dst = at(base, r);
        if (r->flags & KEY_NO_DEFAULT)
            continue;
        switch (r->kind) {
        case K_INT:
        case K_BOOL:
        case K_ENUM: *(int *)dst = (int)r->def; break;
        case K_I64: *(int64_t *)dst = (int64_t)r->def; break;
        case K_U64: *(uint64_t *)dst = (uint64_t)r->def; break;
        case K_FLOAT: *(float *)dst = (float)r->def; break;
        case K_DOUBLE: *(double *)dst = r->def; break;
        case K_STRING: snprintf(dst, r->size, "%s", r->def_str ? r->def_str : ""); break;
        case K_GROUP:
        case K_REF: break;
        }
    }
}

int table_find(const KeyTable *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->rows[i].name, name) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------ one group */

/* The row called prefix + name at this level, or NULL (*ui, *ri its place). */
static const KeyRow *find_row(const TableUse *u, int n_u, const char *prefix, const char *name, int *ui, int *ri)
{
    size_t plen = strlen(prefix);
    for (int i = 0; i < n_u; i++)
        for (int j = 0; j < u[i].t->n; j++) {
            const char *rn = u[i].t->rows[j].name;
            if (strncmp(rn, prefix, plen) == 0 && strcmp(rn + plen, name) == 0) {
                *ui = i;
                *ri = j;
                return &u[i].t->rows[j];
            }
        }
    return NULL;
}

static void fail_unknown_key(Ctx *c, const config_setting_t *group, const config_setting_t *m, const TableUse *u,
                             int n_u, const char *prefix)
{
    const char *known[40];
    int nk = 0;
    size_t plen = strlen(prefix);
    for (int i = 0; i < n_u; i++)
        for (int j = 0; j < u[i].t->n && nk < 40; j++) {
            const char *rn = u[i].t->rows[j].name;
            if (strncmp(rn, prefix, plen) == 0 && !strchr(rn + plen, '.'))
                known[nk++] = rn + plen;
        }
    char in[256], list[512];
    if (config_setting_is_root(group))
        snprintf(in, sizeof in, "the job file");
    else
        key_path(group, in, sizeof in);
    const char *name = config_setting_name(m);
    const char *near = nearest(name, known, nk);
    if (near)
        fail(c, m, "unknown key '%s' in %s (did you mean '%s'?)", name, in, near);
    else {
        join_names(known, nk, list, sizeof list);
        fail(c, m, "unknown key '%s' in %s (known keys: %s)", name, in, list);
    }
}

/* The line of the job file's `@include` that names `file` (the last part of
 * its path), or 0. */
static unsigned include_line(const char *job_path, const char *file)
{
    FILE *f = fopen(job_path, "r");
    if (!f)
        return 0;
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    char line[4096];
    unsigned n = 0, found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        n++;
        const char *p = line + strspn(line, " \t");
        if (strncmp(p, "@include", 8) == 0 && strstr(p, base))
            found = n;
    }
    fclose(f);
    return found;
}

/* One member: found, recorded in got and read. 0 when valid. */
static int parse_member(Ctx *c, const config_setting_t *g, const config_setting_t *m, const TableUse *u, int n_u,
                        const char *prefix)
{
    const char *file = config_setting_source_file(m);
    if (file && strcmp(file, c->path) != 0) {
        /* named at the @include's line of the job file, not at the
         * setting's line inside the included file */
        unsigned at = include_line(c->path, file);
        c->n_errors++;
        if (c->n_errors <= JOB_MAX_ERRORS) {
            char loc[64] = "";
            if (at)
                snprintf(loc, sizeof loc, ":%u", at);
            append_f(c, "%s%s%s: '%s' comes from @include \"%s\" (its line %u): job files must be one file (its "
                        "text is the job's identity)",
                     c->used ? "\n" : "", c->path, loc, config_setting_name(m), file,
                     (unsigned)config_setting_source_line(m));
        }
        return -1;
    }
    int ui = 0, ri = 0;
    const KeyRow *k = find_row(u, n_u, prefix, config_setting_name(m), &ui, &ri);
    if (!k) {
        fail_unknown_key(c, g, m, u, n_u, prefix);
        return -1;
    }
    if (u[ui].got)
        u[ui].got[ri] = m;
    if (parse_row(c, k, m, u[ui].base)) {
        if (u[ui].bad)
            *u[ui].bad |= 1u << ri;
        return -1;
    }
    return 0;
}

static int parse_level(Ctx *c, const config_setting_t *g, const TableUse *u, int n_u, const char *prefix)
{
    if (!config_setting_is_group(g)) {
        fail_type(c, g, "a group { ... }");
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < config_setting_length(g); i++)
        if (parse_member(c, g, config_setting_get_elem(g, (unsigned)i), u, n_u, prefix))
            rc = -1;
    /* sub-groups after the group's own keys */
    size_t plen = strlen(prefix);
    for (int i = 0; i < n_u; i++)
        for (int j = 0; j < u[i].t->n; j++) {
            const KeyRow *r = &u[i].t->rows[j];
            const config_setting_t *s = NULL;
            if (r->kind != K_GROUP || strncmp(r->name, prefix, plen) != 0 || strchr(r->name + plen, '.'))
                continue;
            if (!(s = member(g, r->name + plen)))
                continue;
            char sub[128];
            snprintf(sub, sizeof sub, "%s.", r->name);
            if (parse_level(c, s, u, n_u, sub))
                rc = -1;
        }
    return rc;
}

int parse_tables(Ctx *c, const config_setting_t *g, const TableUse *u, int n_u)
{
    for (int i = 0; i < n_u; i++)
        if (u[i].got)
            for (int j = 0; j < u[i].t->n; j++)
                u[i].got[j] = NULL;
    return parse_level(c, g, u, n_u, "");
}

int parse_table(Ctx *c, const config_setting_t *g, const KeyTable *t, void *base, const config_setting_t **got,
                unsigned *bad)
{
    TableUse u = {t, base, got, bad};
    return parse_tables(c, g, &u, 1);
}

/* ------------------------------------------------------ lists and names */

int list_of_groups(Ctx *c, const config_setting_t *s, const char *example)
{
    if (!config_setting_is_list(s)) {
        char want[160];
        snprintf(want, sizeof want, "a list ( %s, ... )", example);
        fail_type(c, s, want);
        return -1;
    }
    int n = config_setting_length(s);
    if (n > JOB_MAX_ENTRIES) {
        char path[256];
        key_path(s, path, sizeof path);
        fail(c, s, "%s has %d entries (at most %d)", path, n, JOB_MAX_ENTRIES);
        return -1;
    }
    return n;
}

/* Letters, digits and _ . + - only, not starting with a dot. */
int check_name(Ctx *c, const config_setting_t *s, const char *what, const char *name)
{
    int ok = name[0] && name[0] != '.';
    for (const char *p = name; *p && ok; p++)
        ok = isalnum((unsigned char)*p) || strchr("_.+-", *p);
    if (!ok) {
        fail(c, s, "%s name '%s' may only hold letters, digits and _ . + - and not start with '.' (it names "
                   "folders and HDF5 groups)", what, name);
        return -1;
    }
    return 0;
}
