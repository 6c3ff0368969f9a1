/* job.c - reading and validating job files (libconfig).
 *
 * The file is parsed by libconfig into a tree; --set overrides are grafted
 * onto that tree (each new setting carries its --set argument as libconfig's
 * hook, so messages can name it); then every section is read through a table
 * of known keys (name, type, range, destination). Every problem is collected,
 * not just the first, so a user fixes a job file in one pass. Cross-section
 * rules (unique names, overrides and fusions naming what exists, per-cell
 * settings after overrides) run last.
 */
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "trainer/job.h"

#define JOB_MAX_ERRORS 20
#define JOB_FILE_MAX (16L << 20)
#define JOB_MAX_ENTRIES 4096 /* tasks, models, overrides, fusions */
#define SET_MAX 4096         /* bytes of one --set argument */

/* ---------------------------------------------------------------- names */

static const char *const target_names[] = {"expression", "gender", "age", "class"};
static const char *const loss_names[] = {"l1", "l2"};
static const char *const label_names[] = {"majority", "distribution"};
static const char *const bad_sample_names[] = {"skip", "fail"};
static const char *const schedule_names[] = {"constant", "step", "cosine"};
static const char *const mining_names[] = {"hardest", "semi-hard", "random"};
static const char *const positive_names[] = {"same", "class"};
static const char *const fusion_names[] = {"average", "concat"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *target_name(Target t) { return (unsigned)t < 4 ? target_names[t] : "?"; }

Attr target_attr(Target t)
{
    switch (t) {
    case TARGET_EXPRESSION: return ATTR_EXPRESSION;
    case TARGET_GENDER: return ATTR_GENDER;
    case TARGET_AGE: return ATTR_AGE;
    case TARGET_CLASS: return ATTR_CLASS;
    }
    return ATTR_COUNT;
}

/* ------------------------------------------------------------- messages */

typedef struct {
    const char *path;   /* the job file, as messages name it */
    unsigned flags;
    char *err;
    size_t errlen, used;
    int n_errors;
} Ctx;

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

static void append(Ctx *c, const char *fmt, va_list ap)
{
    if (!c->err || c->used + 1 >= c->errlen)
        return;
    int n = vsnprintf(c->err + c->used, c->errlen - c->used, fmt, ap);
    if (n > 0)
        c->used = c->used + (size_t)n < c->errlen ? c->used + (size_t)n : c->errlen - 1;
}

static void append_f(Ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    append(c, fmt, ap);
    va_end(ap);
}

/* Records one problem located at s (NULL: the file as a whole). */
static void fail(Ctx *c, const config_setting_t *s, const char *fmt, ...)
{
    c->n_errors++;
    if (c->n_errors > JOB_MAX_ERRORS)
        return;
    char loc[SET_MAX + 64];
    where(c, s, loc, sizeof loc);
    append_f(c, "%s%s: ", c->used ? "\n" : "", loc);
    va_list ap;
    va_start(ap, fmt);
    append(c, fmt, ap);
    va_end(ap);
}

/* The dotted path of a setting: "tasks[1].data.side". */
static void key_path(const config_setting_t *s, char *buf, size_t len)
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

static const char *type_desc(int type)
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
static const config_setting_t *member(const config_setting_t *g, const char *name)
{
    return g && config_setting_is_group(g) ? config_setting_get_member(g, name) : NULL;
}

/* s when it is not NULL, else fallback: where a message should point. */
static const config_setting_t *at_or(const config_setting_t *s, const config_setting_t *fallback)
{
    return s ? s : fallback;
}

/* "expected <what>, got <type> (<value>)" at s. */
static void fail_type(Ctx *c, const config_setting_t *s, const char *expected)
{
    char path[256], value[96] = "";
    key_path(s, path, sizeof path);
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_STRING: snprintf(value, sizeof value, " \"%.60s\"", config_setting_get_string(s)); break;
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: snprintf(value, sizeof value, " %lld", config_setting_get_int64(s)); break;
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
static const char *nearest(const char *name, const char *const *known, int n)
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
static void join_names(const char *const *names, int n, char *buf, size_t len)
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
static void fail_unknown_name(Ctx *c, const config_setting_t *s, const char *what, const char *name,
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

/* -------------------------------------------------------------- key tables */

typedef enum { K_INT, K_I64, K_U64, K_FLOAT, K_DOUBLE, K_BOOL, K_STRING, K_ENUM, K_REF } KeyKind;

typedef struct {
    double lo, hi;                 /* bounds; +-INFINITY: none */
    unsigned char lo_open, hi_open;
} Range;

static const Range R_ANY = {-INFINITY, INFINITY, 0, 0};
static const Range R_POS = {0, INFINITY, 1, 0};      /* > 0 */
static const Range R_NONNEG = {0, INFINITY, 0, 0};   /* >= 0 */
static const Range R_UNIT = {0, 1, 0, 0};            /* [0, 1] */
static const Range R_UNIT_RO = {0, 1, 0, 1};         /* [0, 1) */
static const Range R_UNIT_LO = {0, 1, 1, 0};         /* (0, 1] */

static Range range(double lo, double hi) { return (Range){lo, hi, 0, 0}; }

typedef struct {
    const char *name;
    KeyKind kind;
    void *dst;               /* int, int64_t, uint64_t, float, double, int (bool, enum), char[cap], setting ptr */
    Range r;
    const char *const *names; /* K_ENUM */
    int n_names;
    size_t cap;              /* K_STRING */
    unsigned bit;            /* or-ed into *seen when the key is present (valid or not) */
} Key;

static Key k_int(const char *name, int *dst, Range r, unsigned bit)
{
    return (Key){.name = name, .kind = K_INT, .dst = dst, .r = r, .bit = bit};
}
static Key k_i64(const char *name, int64_t *dst, Range r, unsigned bit)
{
    return (Key){.name = name, .kind = K_I64, .dst = dst, .r = r, .bit = bit};
}
static Key k_u64(const char *name, uint64_t *dst, unsigned bit)
{
    return (Key){.name = name, .kind = K_U64, .dst = dst, .r = R_NONNEG, .bit = bit};
}
static Key k_float(const char *name, float *dst, Range r, unsigned bit)
{
    return (Key){.name = name, .kind = K_FLOAT, .dst = dst, .r = r, .bit = bit};
}
static Key k_double(const char *name, double *dst, Range r, unsigned bit)
{
    return (Key){.name = name, .kind = K_DOUBLE, .dst = dst, .r = r, .bit = bit};
}
static Key k_bool(const char *name, int *dst, unsigned bit)
{
    return (Key){.name = name, .kind = K_BOOL, .dst = dst, .r = R_ANY, .bit = bit};
}
static Key k_str(const char *name, char *dst, size_t cap, unsigned bit)
{
    return (Key){.name = name, .kind = K_STRING, .dst = dst, .r = R_ANY, .cap = cap, .bit = bit};
}
static Key k_enum(const char *name, int *dst, const char *const *names, int n, unsigned bit)
{
    return (Key){.name = name, .kind = K_ENUM, .dst = dst, .r = R_ANY, .names = names, .n_names = n, .bit = bit};
}
static Key k_ref(const char *name, const config_setting_t **dst, unsigned bit)
{
    return (Key){.name = name, .kind = K_REF, .dst = dst, .r = R_ANY, .bit = bit};
}

/* "> 0", ">= 1", "in [0, 1)", "<= 4" */
static void range_desc(Range r, char *buf, size_t len)
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

/* The number in s for a numeric key: integers for integer kinds. 0 or -1. */
static int get_number(Ctx *c, const Key *k, const config_setting_t *s, double *v)
{
    int type = config_setting_type(s);
    int integral = k->kind == K_INT || k->kind == K_I64 || k->kind == K_U64;
    if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
        *v = (double)config_setting_get_int64(s);
    else if (type == CONFIG_TYPE_FLOAT && !integral)
        *v = config_setting_get_float(s);
    else {
        fail_type(c, s, integral ? "an integer" : "a number");
        return -1;
    }
    if (k->kind == K_INT && in_range(k->r, *v) && !(*v >= INT_MIN && *v <= INT_MAX)) {
        char path[256];
        key_path(s, path, sizeof path);
        fail(c, s, "%s = %g is too large (at most %d)", path, *v, INT_MAX);
        return -1;
    }
    if (!in_range(k->r, *v)) {
        char path[256], want[96];
        key_path(s, path, sizeof path);
        range_desc(k->r, want, sizeof want);
        fail(c, s, "%s = %g is out of range (expected %s)", path, *v, want);
        return -1;
    }
    return 0;
}

static int parse_string(Ctx *c, const Key *k, const config_setting_t *s)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        fail_type(c, s, "a string");
        return -1;
    }
    const char *v = config_setting_get_string(s);
    if (strlen(v) >= k->cap) {
        char path[256];
        key_path(s, path, sizeof path);
        fail(c, s, "%s is too long (at most %zu characters)", path, k->cap - 1);
        return -1;
    }
    memcpy(k->dst, v, strlen(v) + 1);
    return 0;
}

static int parse_enum(Ctx *c, const Key *k, const config_setting_t *s)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        char want[600], known[512];
        join_names(k->names, k->n_names, known, sizeof known);
        snprintf(want, sizeof want, "a string (one of %s)", known);
        fail_type(c, s, want);
        return -1;
    }
    const char *v = config_setting_get_string(s);
    for (int i = 0; i < k->n_names; i++)
        if (strcmp(v, k->names[i]) == 0) {
            *(int *)k->dst = i;
            return 0;
        }
    fail_unknown_name(c, s, k->name, v, k->names, k->n_names);
    return -1;
}

/* Reads one setting into its key's destination (written only when valid). */
static int parse_value(Ctx *c, const Key *k, const config_setting_t *s)
{
    double v;
    switch (k->kind) {
    case K_INT:
        if (get_number(c, k, s, &v))
            return -1;
        *(int *)k->dst = (int)v;
        return 0;
    case K_I64:
        if (get_number(c, k, s, &v))
            return -1;
        *(int64_t *)k->dst = config_setting_get_int64(s);
        return 0;
    case K_U64:
        if (get_number(c, k, s, &v))
            return -1;
        *(uint64_t *)k->dst = (uint64_t)config_setting_get_int64(s);
        return 0;
    case K_FLOAT:
        if (get_number(c, k, s, &v))
            return -1;
        *(float *)k->dst = (float)v;
        return 0;
    case K_DOUBLE:
        if (get_number(c, k, s, &v))
            return -1;
        *(double *)k->dst = v;
        return 0;
    case K_BOOL:
        if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
            fail_type(c, s, "a boolean (true or false)");
            return -1;
        }
        *(int *)k->dst = config_setting_get_bool(s) ? 1 : 0;
        return 0;
    case K_STRING: return parse_string(c, k, s);
    case K_ENUM: return parse_enum(c, k, s);
    case K_REF: *(const config_setting_t **)k->dst = s; return 0;
    }
    return -1;
}

static void fail_unknown_key(Ctx *c, const config_setting_t *group, const config_setting_t *m, const Key *keys,
                             int n)
{
    const char *known[40];
    int nk = n < 40 ? n : 40;
    for (int i = 0; i < nk; i++)
        known[i] = keys[i].name;
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

/* Reads group g through its key table. Unknown keys, wrong types and values
 * out of range are errors; *seen (optional) gets the bits of the keys present.
 * Returns 0 when every member was valid. */
static int parse_group(Ctx *c, const config_setting_t *g, const Key *keys, int n, unsigned *seen)
{
    if (!config_setting_is_group(g)) {
        fail_type(c, g, "a group { ... }");
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *file = config_setting_source_file(m);
        if (file && strcmp(file, c->path) != 0) {
            fail(c, m, "'%s' comes from @include \"%s\": job files must be one file (its text is the job's "
                       "identity)", config_setting_name(m), file);
            rc = -1;
            continue;
        }
        const Key *k = NULL;
        for (int j = 0; j < n && !k; j++)
            if (strcmp(keys[j].name, config_setting_name(m)) == 0)
                k = &keys[j];
        if (!k) {
            fail_unknown_key(c, g, m, keys, n);
            rc = -1;
            continue;
        }
        if (seen)
            *seen |= k->bit;
        if (parse_value(c, k, m))
            rc = -1;
    }
    return rc;
}

/* A list ( { ... }, ... ) of at most JOB_MAX_ENTRIES groups. Returns its
 * length, or -1 after a message. */
static int list_of_groups(Ctx *c, const config_setting_t *s, const char *example)
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

/* Names of tasks, models, fusions and jobs become folder and HDF5 group
 * names: letters, digits and _ . + - only, not starting with a dot. */
static int check_name(Ctx *c, const config_setting_t *s, const char *what, const char *name)
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

/* ---------------------------------------------------------------- paths */

static int path_kind(const char *path) /* 0 missing, 1 file, 2 folder, 3 other */
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    return S_ISDIR(st.st_mode) ? 2 : S_ISREG(st.st_mode) ? 1 : 3;
}

static int need_folder(Ctx *c, const config_setting_t *s, const char *key, const char *path, const char *what)
{
    int kind = path_kind(path);
    if (kind == 2)
        return 0;
    fail(c, s, "%s: '%s' %s (expected %s)", key, path, kind == 0 ? "does not exist" : "is not a folder", what);
    return -1;
}

static int need_file_in(Ctx *c, const config_setting_t *s, const char *key, const char *dir, const char *name,
                        int gz_ok)
{
    char p[JOB_PATH_MAX + 64];
    size_t n = strlen(dir);
    const char *sep = n && dir[n - 1] == '/' ? "" : "/";
    snprintf(p, sizeof p, "%s%s%s", dir, sep, name);
    if (path_kind(p) == 1)
        return 0;
    if (gz_ok) {
        snprintf(p, sizeof p, "%s%s%s.gz", dir, sep, name);
        if (path_kind(p) == 1)
            return 0;
    }
    fail(c, s, "%s: '%s%s%s%s' not found", key, dir, sep, name, gz_ok ? "[.gz]" : "");
    return -1;
}

/* What each source reads at `path`, and the files it needs there. */
static void check_source_path(Ctx *c, const config_setting_t *s, const char *key, const DataOptions *o)
{
    static const char *const idx_names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    switch (o->source) {
    case SOURCE_SYNTH: return;
    case SOURCE_FERPLUS:
        if (!need_folder(c, s, key, o->path, "a folder holding fer2013.csv and fer2013new.csv") &&
            !need_file_in(c, s, key, o->path, "fer2013.csv", 0))
            need_file_in(c, s, key, o->path, "fer2013new.csv", 0);
        return;
    case SOURCE_AFFECTNET:
        if (!need_folder(c, s, key, o->path, "a folder holding training.csv and validation.csv") &&
            !need_file_in(c, s, key, o->path, "training.csv", 0))
            need_file_in(c, s, key, o->path, "validation.csv", 0);
        return;
    case SOURCE_UTKFACE: need_folder(c, s, key, o->path, "the folder of UTKFace's <age>_<gender>_... images"); return;
    case SOURCE_IDX:
        if (!need_folder(c, s, key, o->path, "a folder holding the four IDX files"))
            for (int i = 0; i < 4; i++)
                if (need_file_in(c, s, key, o->path, idx_names[i], 1))
                    return;
        return;
    case SOURCE_FOLDER: need_folder(c, s, key, o->path, "a folder with one sub-folder of images per class"); return;
    }
}

/* ---------------------------------------------------------------- job */

/* The job name from the file name: base name without extension, with
 * characters not allowed in names replaced by '_'. */
static void name_from_path(const char *path, char *out, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, ".");
    if (n == 0)
        n = strlen(base);
    if (n >= len)
        n = len - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (isalnum((unsigned char)base[i]) || strchr("_+-", base[i])) ? base[i] : '_';
    out[n] = '\0';
    if (!out[0])
        snprintf(out, len, "job");
}

static void parse_seeds(Ctx *c, const config_setting_t *s, Job *job)
{
    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        fail_type(c, s, "an array of integers [1, 2, 3]");
        return;
    }
    int n = config_setting_length(s);
    if (n < 1 || n > JOB_MAX_SEEDS) {
        fail(c, s, "job.seeds has %d entries (expected 1 to %d)", n, JOB_MAX_SEEDS);
        return;
    }
    Key k = k_u64("seed", NULL, 0);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        k.dst = &job->seeds[i];
        if (parse_value(c, &k, e))
            return;
        for (int j = 0; j < i; j++)
            if (job->seeds[j] == job->seeds[i]) {
                fail(c, e, "job.seeds lists %llu twice", (unsigned long long)job->seeds[i]);
                return;
            }
    }
    job->n_seeds = n;
}

static void parse_job_section(Ctx *c, const config_setting_t *s, Job *job)
{
    enum { B_NAME = 1, B_OUTPUT = 2, B_CACHE = 4, B_SEED = 8, B_SEEDS = 16 };
    name_from_path(c->path, job->name, sizeof job->name);
    job->n_seeds = 1;
    job->seeds[0] = 1;
    const config_setting_t *seeds = NULL, *name = NULL, *only_task = NULL;
    /* only_task is read by select_only_task once the tasks are known */
    Key keys[] = {k_ref("name", &name, B_NAME), k_str("output", job->output, sizeof job->output, B_OUTPUT),
                  k_str("cache", job->cache, sizeof job->cache, B_CACHE), k_u64("seed", &job->seeds[0], B_SEED),
                  k_ref("seeds", &seeds, B_SEEDS), k_ref("only_task", &only_task, 0)};
    unsigned seen = 0;
    if (s)
        parse_group(c, s, keys, COUNT(keys), &seen);
    if (name) {
        Key k = k_str("name", job->name, sizeof job->name, 0);
        if (!parse_value(c, &k, name))
            check_name(c, name, "job", job->name);
    }
    if ((seen & B_OUTPUT) && !job->output[0])
        fail(c, member(s, "output"), "job.output is empty (expected a folder name)");
    if (!job->output[0])
        snprintf(job->output, sizeof job->output, "runs/%s", job->name);
    if (!job->cache[0] && strlen(job->output) + 7 < sizeof job->cache)
        snprintf(job->cache, sizeof job->cache, "%s/cache", job->output);
    if (seeds) {
        if (seen & B_SEED)
            fail(c, seeds, "job: give either seed or seeds, not both");
        else
            parse_seeds(c, seeds, job);
    }
}

/* ------------------------------------------------------------- tasks */

/* The sources that provide each target's labels. */
static int source_has(Source src, Target t)
{
    switch (t) {
    case TARGET_EXPRESSION: return src == SOURCE_SYNTH || src == SOURCE_FERPLUS || src == SOURCE_AFFECTNET;
    case TARGET_GENDER:
    case TARGET_AGE: return src == SOURCE_SYNTH || src == SOURCE_UTKFACE;
    case TARGET_CLASS: return src == SOURCE_IDX || src == SOURCE_FOLDER;
    }
    return 0;
}

static const char *sources_for(Target t)
{
    switch (t) {
    case TARGET_EXPRESSION: return "synth, ferplus, affectnet";
    case TARGET_GENDER:
    case TARGET_AGE: return "synth, utkface";
    case TARGET_CLASS: return "idx, folder";
    }
    return "";
}

enum {
    D_SOURCE = 1 << 0, D_PATH = 1 << 1, D_IMAGES = 1 << 2, D_SIDE = 1 << 3, D_CHANNELS = 1 << 4, D_LABELS = 1 << 5,
    D_VAL = 1 << 6, D_TEST = 1 << 7, D_SPLIT_SEED = 1 << 8, D_BAD = 1 << 9, D_COUNT = 1 << 10, D_SYNTH_SEED = 1 << 11,
    D_LIMIT = 1 << 12, D_IN_MEMORY = 1 << 13, D_CACHE_SIDE = 1 << 14
};

/* A key given for a source that does not read it is an error (it would be
 * silently ignored otherwise). */
static void data_key_rules(Ctx *c, const config_setting_t *g, unsigned seen, Source src, const char *key)
{
    const char *const sname = source_name(src);
    struct {
        unsigned bit;
        const char *name;
        int allowed;
        const char *why;
    } rules[] = {
        {D_PATH, "path", src != SOURCE_SYNTH, "synthetic faces read no files"},
        {D_IMAGES, "images", src == SOURCE_AFFECTNET, "only affectnet reads images from a separate folder"},
        {D_LABELS, "labels", src == SOURCE_FERPLUS, "only ferplus has vote distributions"},
        {D_COUNT, "count", src == SOURCE_SYNTH, "count is the number of synthetic faces"},
        {D_SYNTH_SEED, "synth_seed", src == SOURCE_SYNTH, "synth_seed draws the synthetic faces"},
        {D_VAL, "val_fraction", src != SOURCE_FERPLUS, "ferplus has official train, val and test splits"},
        {D_TEST, "test_fraction", src != SOURCE_FERPLUS && src != SOURCE_AFFECTNET && src != SOURCE_IDX,
         "this source has an official test split"},
    };
    for (int i = 0; i < COUNT(rules); i++)
        if ((seen & rules[i].bit) && !rules[i].allowed)
            fail(c, at_or(member(g, rules[i].name), g), "%s.%s does not apply to source %s (%s)", key,
                 rules[i].name, sname, rules[i].why);
}

static void parse_data(Ctx *c, const config_setting_t *g, const config_setting_t *task, TaskSpec *t,
                       const char *key)
{
    DataOptions *o = &t->data;
    data_options_default(o);
    const char *srcs[SOURCE_FOLDER + 1];
    for (int i = 0; i <= SOURCE_FOLDER; i++)
        srcs[i] = source_name((Source)i);
    int source = -1, labels = 0, bad = BAD_SAMPLE_SKIP;
    float val = -1, test = -1;
    Key keys[] = {
        k_enum("source", &source, srcs, COUNT(srcs), D_SOURCE),
        k_str("path", o->path, sizeof o->path, D_PATH),
        k_str("images", o->images, sizeof o->images, D_IMAGES),
        k_int("side", &o->side, range(8, 4096), D_SIDE),
        k_int("channels", &o->channels, range(1, 3), D_CHANNELS),
        k_enum("labels", &labels, label_names, COUNT(label_names), D_LABELS),
        k_float("val_fraction", &val, R_UNIT_RO, D_VAL),
        k_float("test_fraction", &test, R_UNIT_RO, D_TEST),
        k_u64("split_seed", &o->split_seed, D_SPLIT_SEED),
        k_enum("on_bad_sample", &bad, bad_sample_names, COUNT(bad_sample_names), D_BAD),
        k_int("count", &o->synth_count, range(1, INFINITY), D_COUNT),
        k_u64("synth_seed", &o->synth_seed, D_SYNTH_SEED),
        k_int("limit", &o->limit, R_NONNEG, D_LIMIT),
        k_bool("in_memory", &o->in_memory, D_IN_MEMORY),
        k_int("cache_side", &o->cache_side, range(0, 4096), D_CACHE_SIDE),
    };
    unsigned seen = 0;
    if (g && parse_group(c, g, keys, COUNT(keys), &seen) && !config_setting_is_group(g))
        return;
    if (source < 0 && (seen & D_SOURCE))
        return; /* an unknown source: its rules cannot be checked */
    o->source = source < 0 ? SOURCE_SYNTH : (Source)source;
    o->ferplus_distribution = labels;
    o->on_bad_sample = (BadSamplePolicy)bad;
    if (o->channels == 2)
        fail(c, at_or(member(g, "channels"), g), "%s.channels = 2 (expected 1 grey or 3 colour)", key);
    if (g)
        data_key_rules(c, g, seen, o->source, key);
    /* splits: defaults where the source has no official one */
    int has_val = o->source != SOURCE_FERPLUS;
    int has_test = o->source == SOURCE_SYNTH || o->source == SOURCE_UTKFACE || o->source == SOURCE_FOLDER;
    o->val_fraction = val >= 0 ? val : has_val ? 0.1f : 0.0f;
    o->test_fraction = test >= 0 ? test : has_test ? 0.2f : 0.0f;
    if (!(o->val_fraction + o->test_fraction < 1.0f))
        fail(c, g, "%s: val_fraction %g + test_fraction %g must be below 1 (the rest is training data)", key,
             (double)o->val_fraction, (double)o->test_fraction);
    if (o->source == SOURCE_SYNTH && o->side < 16)
        fail(c, at_or(member(g, "side"), task), "%s.side = %d: synthetic faces need at least 16 pixels", key,
             o->side);
    if (o->source != SOURCE_SYNTH && !o->path[0]) {
        fail(c, at_or(g, task), "%s: source %s needs a path", key, source_name(o->source));
        return;
    }
    if (!source_has(o->source, t->target))
        fail(c, at_or(member(g, "source"), task), "%s: source %s has no %s labels (sources with them: %s)", key,
             source_name(o->source), target_name(t->target), sources_for(t->target));
    if (!(c->flags & JOB_NO_PATH_CHECK) && o->source != SOURCE_SYNTH) {
        char pkey[300];
        snprintf(pkey, sizeof pkey, "%s.path", key);
        check_source_path(c, at_or(member(g, "path"), task), pkey, o);
        if (o->images[0]) {
            snprintf(pkey, sizeof pkey, "%s.images", key);
            need_folder(c, at_or(member(g, "images"), task), pkey, o->images, "the AffectNet image folder");
        }
    }
}

static void parse_occlusion(Ctx *c, const config_setting_t *g, TaskSpec *t, const char *key)
{
    t->occ = occlusion_default();
    t->occ.kind = t->target == TARGET_GENDER || t->target == TARGET_AGE ? OCC_MASK : OCC_VR;
    t->occ.seed = 1;
    const char *kinds[3], *fills[3], *shapes[2];
    for (int i = 0; i < 3; i++) {
        kinds[i] = occlusion_kind_name((OcclusionKind)i);
        fills[i] = occlusion_fill_name((OcclusionFill)i);
    }
    for (int i = 0; i < 2; i++)
        shapes[i] = occlusion_shape_name((OcclusionShape)i);
    int kind = (int)t->occ.kind, fill = (int)t->occ.fill, shape = (int)t->occ.shape;
    Key keys[] = {
        k_enum("kind", &kind, kinds, 3, 1),          k_float("fraction", &t->occ.fraction, R_UNIT_LO, 2),
        k_enum("fill", &fill, fills, 3, 4),          k_enum("shape", &shape, shapes, 2, 8),
        k_u64("seed", &t->occ.seed, 16),
    };
    if (g)
        parse_group(c, g, keys, COUNT(keys), NULL);
    t->occ.kind = (OcclusionKind)kind;
    t->occ.fill = (OcclusionFill)fill;
    t->occ.shape = (OcclusionShape)shape;
    char msg[256];
    if (occlusion_check(&t->occ, msg, sizeof msg))
        fail(c, g, "%s: %s", key, msg);
}

static void parse_task(Ctx *c, const config_setting_t *s, TaskSpec *t, int index)
{
    enum { B_NAME = 1, B_TARGET = 2, B_LOSS = 4 };
    char key[64];
    snprintf(key, sizeof key, "tasks[%d]", index);
    int target = -1, loss = 0;
    const config_setting_t *data = NULL, *occ = NULL;
    Key keys[] = {k_str("name", t->name, sizeof t->name, B_NAME),
                  k_enum("target", &target, target_names, COUNT(target_names), B_TARGET),
                  k_enum("loss", &loss, loss_names, COUNT(loss_names), B_LOSS), k_ref("data", &data, 0),
                  k_ref("occlusion", &occ, 0)};
    unsigned seen = 0;
    if (parse_group(c, s, keys, COUNT(keys), &seen) && !config_setting_is_group(s))
        return;
    if (!(seen & B_TARGET))
        fail(c, s, "%s: missing key 'target' (one of expression, gender, age, class)", key);
    if (target < 0)
        return; /* nothing below makes sense without a target */
    t->target = (Target)target;
    t->attr = target_attr(t->target);
    t->regression = t->target == TARGET_AGE;
    t->l2 = loss == 1;
    t->classes = t->target == TARGET_EXPRESSION ? FERPLUS_CLASSES : t->target == TARGET_GENDER ? 2
               : t->target == TARGET_AGE      ? 1
                                               : 0;
    if ((seen & B_LOSS) && t->target != TARGET_AGE)
        fail(c, member(s, "loss"), "%s.loss applies to target age only (classification uses "
                                                      "cross-entropy)", key);
    if (!(seen & B_NAME))
        snprintf(t->name, sizeof t->name, "%s", target_name(t->target));
    else
        check_name(c, member(s, "name"), "task", t->name);
    char sub[96];
    snprintf(sub, sizeof sub, "%s.data", key);
    parse_data(c, data, s, t, sub);
    snprintf(sub, sizeof sub, "%s.occlusion", key);
    parse_occlusion(c, occ, t, sub);
}

/* Lists name (n) must be unique: reports each repeat with its first line. */
static void unique_names(Ctx *c, const config_setting_t *list, const char *what, const char *name, size_t stride,
                         int n)
{
    for (int i = 1; i < n; i++) {
        const char *a = name + (size_t)i * stride;
        for (int j = 0; j < i; j++)
            if (a[0] && strcmp(a, name + (size_t)j * stride) == 0) {
                const config_setting_t *first = config_setting_get_elem(list, (unsigned)j);
                fail(c, config_setting_get_elem(list, (unsigned)i),
                     "duplicate %s name '%s' (also the name of entry %d at line %u); give each %s its own name",
                     what, a, j, first ? (unsigned)config_setting_source_line(first) : 0u, what);
                break;
            }
    }
}

static void parse_tasks(Ctx *c, const config_setting_t *s, Job *job)
{
    if (!s) {
        fail(c, NULL, "missing 'tasks' (a list of tasks: tasks = ( { target = \"expression\"; ... } );)");
        return;
    }
    int n = list_of_groups(c, s, "{ name = ...; target = ...; data = { ... }; }");
    if (n < 0)
        return;
    if (n == 0) {
        fail(c, s, "tasks is empty (expected at least one task)");
        return;
    }
    job->tasks = calloc((size_t)n, sizeof *job->tasks);
    if (!job->tasks) {
        fail(c, s, "out of memory");
        return;
    }
    job->n_tasks = n;
    for (int i = 0; i < n; i++)
        parse_task(c, config_setting_get_elem(s, (unsigned)i), &job->tasks[i], i);
    unique_names(c, s, "task", job->tasks[0].name, sizeof job->tasks[0], n);
}

/* ------------------------------------------------------------- models */

static void parse_model(Ctx *c, const config_setting_t *s, ModelSpec *m, int index)
{
    enum { B_NAME = 1, B_ARCH = 2, B_INPUT = 4, B_WIDTH = 8, B_FC = 16, B_DROPOUT = 32 };
    const char *archs[ARCH_RESNET50 + 1];
    for (int i = 0; i <= ARCH_RESNET50; i++)
        archs[i] = arch_name((Arch)i);
    int arch = -1, input = 0, fc = 0;
    float width = 1, dropout = 0;
    Key keys[] = {k_str("name", m->name, sizeof m->name, B_NAME), k_enum("arch", &arch, archs, COUNT(archs), B_ARCH),
                  k_int("input", &input, range(16, 4096), B_INPUT), k_float("width", &width, (Range){0, 16, 1, 0}, B_WIDTH),
                  k_int("fc", &fc, R_NONNEG, B_FC), k_float("dropout", &dropout, R_UNIT_RO, B_DROPOUT),
                  k_str("init", m->init, sizeof m->init, 0)};
    unsigned seen = 0;
    if (parse_group(c, s, keys, COUNT(keys), &seen) && !config_setting_is_group(s))
        return;
    if (!(seen & B_ARCH)) {
        char known[128];
        join_names(archs, COUNT(archs), known, sizeof known);
        fail(c, s, "models[%d]: missing key 'arch' (one of %s)", index, known);
    }
    if (arch < 0)
        return;
    m->net = netspec_default((Arch)arch);
    m->net.input = input;
    m->net.channels = 0;
    m->net.classes = 0;
    if (seen & B_WIDTH)
        m->net.width = width;
    if (seen & B_FC)
        m->net.fc = fc;
    if (seen & B_DROPOUT)
        m->net.dropout = dropout;
    if ((seen & B_FC) && fc == 0 && arch != ARCH_RESNET50)
        fail(c, member(s, "fc"), "models[%d].fc = 0: %s needs fully connected layers of width "
                                                    ">= 1 (0 means none, for resnet50 only)", index, archs[arch]);
    if (!(seen & B_NAME))
        snprintf(m->name, sizeof m->name, "%s", archs[arch]);
    else
        check_name(c, member(s, "name"), "model", m->name);
    if (m->init[0] && !(c->flags & JOB_NO_PATH_CHECK)) {
        int kind = path_kind(m->init);
        if (kind != 1)
            fail(c, member(s, "init"), "models[%d].init: '%s' %s (expected an HDF5 file of "
                                                          "weights, /params/<layer>/<tensor>)", index, m->init,
                 kind == 0 ? "does not exist" : "is not a file");
    }
}

static void parse_models(Ctx *c, const config_setting_t *s, Job *job)
{
    if (!s) {
        fail(c, NULL, "missing 'models' (a list of networks: models = ( { arch = \"vgg_f\"; ... } );)");
        return;
    }
    int n = list_of_groups(c, s, "{ name = ...; arch = ...; }");
    if (n < 0)
        return;
    if (n == 0) {
        fail(c, s, "models is empty (expected at least one model)");
        return;
    }
    job->models = calloc((size_t)n, sizeof *job->models);
    if (!job->models) {
        fail(c, s, "out of memory");
        return;
    }
    job->n_models = n;
    for (int i = 0; i < n; i++)
        parse_model(c, config_setting_get_elem(s, (unsigned)i), &job->models[i], i);
    unique_names(c, s, "model", job->models[0].name, sizeof job->models[0], n);
}

/* ------------------------------------------------------------- methods */

static void method_names(const char **out)
{
    for (int i = 0; i < METHOD_COUNT; i++)
        out[i] = method_name((Method)i);
}

/* A method name in s (an element of methods or of a fusion's students). */
static int parse_method(Ctx *c, const config_setting_t *s, Method *out)
{
    const char *names[METHOD_COUNT];
    method_names(names);
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        fail_type(c, s, "a method name (teacher, student, kd, triplet, kd+triplet)");
        return -1;
    }
    if (method_parse(config_setting_get_string(s), out)) {
        fail_unknown_name(c, s, "method", config_setting_get_string(s), names, METHOD_COUNT);
        return -1;
    }
    return 0;
}

static void parse_methods(Ctx *c, const config_setting_t *s, Job *job)
{
    job->n_methods = 0;
    if (!s) { /* default: every method */
        for (int i = 0; i < METHOD_COUNT; i++)
            job->methods[job->n_methods++] = (Method)i;
        return;
    }
    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        fail_type(c, s, "an array of method names [ \"teacher\", \"kd\", ... ]");
        return;
    }
    int n = config_setting_length(s);
    if (n == 0) {
        fail(c, s, "methods is empty (expected some of teacher, student, kd, triplet, kd+triplet)");
        return;
    }
    Method list[METHOD_COUNT];
    int count = 0, has_teacher = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        Method m;
        if (parse_method(c, e, &m))
            continue;
        int dup = 0;
        for (int j = 0; j < count; j++)
            dup |= list[j] == m;
        if (dup) {
            fail(c, e, "methods lists '%s' twice", method_name(m));
            continue;
        }
        has_teacher |= m == METHOD_TEACHER;
        list[count++] = m;
    }
    if (count && !has_teacher) /* students learn from their teacher: it is trained first */
        job->methods[job->n_methods++] = METHOD_TEACHER;
    for (int i = 0; i < count; i++)
        job->methods[job->n_methods++] = list[i];
}

static int job_has_method(const Job *job, Method m)
{
    for (int i = 0; i < job->n_methods; i++)
        if (job->methods[i] == m)
            return 1;
    return 0;
}

/* --------------------------------------------------------------- train */

/* Where the augment group of a train or override section writes. */
typedef struct {
    TrainSettings *s;
    int schedule;
    const config_setting_t *augment;
} TrainDst;

/* The keys of a train section (also valid in an override): fills keys,
 * returns their count. */
static int train_keys(TrainDst *d, Key *keys)
{
    TrainSettings *s = d->s;
    int n = 0;
    keys[n++] = k_int("epochs", &s->epochs, range(1, INFINITY), JOB_OV_EPOCHS);
    keys[n++] = k_int("batch", &s->batch, range(1, INFINITY), JOB_OV_BATCH);
    keys[n++] = k_int("accum", &s->accum, range(1, INFINITY), JOB_OV_ACCUM);
    keys[n++] = k_float("lr", &s->sgd.lr, R_POS, JOB_OV_LR);
    keys[n++] = k_enum("schedule", &d->schedule, schedule_names, COUNT(schedule_names), JOB_OV_SCHEDULE);
    keys[n++] = k_float("warmup_epochs", &s->warmup_epochs, R_NONNEG, JOB_OV_WARMUP);
    keys[n++] = k_float("step_epochs", &s->step_epochs, R_POS, JOB_OV_STEP_EPOCHS);
    keys[n++] = k_float("gamma", &s->sgd.gamma, R_UNIT_LO, JOB_OV_GAMMA);
    keys[n++] = k_float("min_lr", &s->sgd.min_lr, R_NONNEG, JOB_OV_MIN_LR);
    keys[n++] = k_float("momentum", &s->sgd.momentum, R_UNIT_RO, JOB_OV_MOMENTUM);
    keys[n++] = k_bool("nesterov", &s->sgd.nesterov, JOB_OV_NESTEROV);
    keys[n++] = k_float("weight_decay", &s->sgd.weight_decay, R_UNIT_RO, JOB_OV_WEIGHT_DECAY);
    keys[n++] = k_bool("decoupled_decay", &s->sgd.decoupled, JOB_OV_DECOUPLED);
    keys[n++] = k_int("eval_batch", &s->eval_batch, range(1, INFINITY), JOB_OV_EVAL_BATCH);
    keys[n++] = k_ref("augment", &d->augment, 0);
    return n;
}

#define TRAIN_KEYS_MAX 24

/* Reads the train keys of g (plus `extra` keys, e.g. an override's match
 * keys) into *s; *set gets the JOB_OV_* bits present. */
static void parse_train_like(Ctx *c, const config_setting_t *g, TrainSettings *s, const Key *extra, int n_extra,
                             unsigned *set)
{
    TrainDst d = {.s = s, .schedule = (int)s->sgd.schedule};
    Key keys[TRAIN_KEYS_MAX + 8];
    int n = train_keys(&d, keys);
    for (int i = 0; i < n_extra && i < 8; i++)
        keys[n++] = extra[i];
    parse_group(c, g, keys, n, set);
    if (*set & JOB_OV_SCHEDULE)
        s->sgd.schedule = (Schedule)d.schedule;
    if (d.augment) {
        Key aug[] = {k_int("pad", &s->aug.pad, range(0, 64), JOB_OV_PAD), k_bool("flip", &s->aug.flip, JOB_OV_FLIP)};
        parse_group(c, d.augment, aug, COUNT(aug), set);
    }
}

static TrainSettings train_defaults(void)
{
    TrainSettings s;
    memset(&s, 0, sizeof s);
    s.epochs = 10;
    s.batch = 64;
    s.accum = 1;
    s.sgd = sgd_default();
    s.sgd.schedule = SCHED_COSINE;
    s.sgd.gamma = 0.1f;
    s.sgd.min_lr = 0;
    s.warmup_epochs = 0;
    s.step_epochs = 0;
    s.aug.pad = 4;
    s.aug.flip = 1;
    s.eval_batch = 256;
    return s;
}

static void parse_train(Ctx *c, const config_setting_t *s, Job *job)
{
    job->train = train_defaults();
    unsigned set = 0;
    if (s)
        parse_train_like(c, s, &job->train, NULL, 0, &set);
}

/* A name an override matches: "*" or "" (any) or one of names. */
static void check_match(Ctx *c, const config_setting_t *o, const char *key, const char *value, const char *what,
                        const char *const *names, int n)
{
    if (!value[0] || strcmp(value, "*") == 0)
        return;
    for (int i = 0; i < n; i++)
        if (strcmp(value, names[i]) == 0)
            return;
    char known[512];
    join_names(names, n, known, sizeof known);
    const char *near = nearest(value, names, n);
    const config_setting_t *at = member(o, key);
    if (near)
        fail(c, at ? at : o, "override %s '%s' matches no %s (did you mean '%s'? known: %s, or \"*\")", key, value,
             what, near, known);
    else
        fail(c, at ? at : o, "override %s '%s' matches no %s (known: %s, or \"*\")", key, value, what, known);
}

static void parse_overrides(Ctx *c, const config_setting_t *s, Job *job)
{
    if (!s)
        return;
    int n = list_of_groups(c, s, "{ task = ...; model = ...; method = ...; epochs = ...; }");
    if (n <= 0)
        return;
    job->overrides = calloc((size_t)n, sizeof *job->overrides);
    if (!job->overrides) {
        fail(c, s, "out of memory");
        return;
    }
    job->n_overrides = n;
    const char **tasks = calloc((size_t)job->n_tasks + 1, sizeof *tasks);
    const char **models = calloc((size_t)job->n_models + 1, sizeof *models);
    const char *methods[METHOD_COUNT];
    for (int i = 0; i < job->n_tasks; i++)
        tasks[i] = job->tasks[i].name;
    for (int i = 0; i < job->n_models; i++)
        models[i] = job->models[i].name;
    for (int i = 0; i < job->n_methods; i++)
        methods[i] = method_name(job->methods[i]);
    for (int i = 0; i < n && tasks && models; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        Override *o = &job->overrides[i];
        snprintf(o->task, sizeof o->task, "*");
        snprintf(o->model, sizeof o->model, "*");
        snprintf(o->method, sizeof o->method, "*");
        o->s = job->train;
        Key match[] = {k_str("task", o->task, sizeof o->task, 0), k_str("model", o->model, sizeof o->model, 0),
                       k_str("method", o->method, sizeof o->method, 0)};
        parse_train_like(c, e, &o->s, match, COUNT(match), &o->set);
        if (!config_setting_is_group(e))
            continue;
        if (!o->set)
            fail(c, e, "overrides[%d] changes nothing (give settings such as epochs or lr besides task, model and "
                       "method)", i);
        check_match(c, e, "task", o->task, "task", tasks, job->n_tasks);
        check_match(c, e, "model", o->model, "model", models, job->n_models);
        check_match(c, e, "method", o->method, "trained method", methods, job->n_methods);
    }
    free(tasks);
    free(models);
}

/* ---------------------------------------------------- distill, parallel, ... */

static void parse_distill(Ctx *c, const config_setting_t *s, Job *job)
{
    DistillSettings *d = &job->distill;
    d->T = 3.0f;
    d->lambda = 0.5f;
    d->beta = 1.0f;
    d->margin = 0.2f;
    d->age_bin = 10.0f;
    d->mining = MINE_HARDEST;
    d->positive = POSITIVE_SAME;
    int mining = (int)d->mining, positive = (int)d->positive;
    Key keys[] = {
        k_float("temperature", &d->T, (Range){0, 100, 1, 0}, 0),
        k_float("lambda", &d->lambda, R_UNIT, 0),
        k_float("beta", &d->beta, R_NONNEG, 0),
        k_float("margin", &d->margin, range(0, 4), 0),
        k_enum("mining", &mining, mining_names, COUNT(mining_names), 0),
        k_enum("positive", &positive, positive_names, COUNT(positive_names), 0),
        k_float("age_bin", &d->age_bin, (Range){0, 100, 1, 0}, 0),
    };
    if (s)
        parse_group(c, s, keys, COUNT(keys), NULL);
    d->mining = (Mining)mining;
    d->positive = (PositiveMode)positive;
}

static void parse_parallel(Ctx *c, const config_setting_t *s, Job *job)
{
    ParallelSettings *p = &job->parallel;
    float bucket_mb = 25;
    double watchdog = COMM_WATCHDOG_DEFAULT;
    p->groups = 1;
    p->overlap = 1;
    p->threads = 0;
    Key keys[] = {
        k_int("groups", &p->groups, range(1, INFINITY), 0),
        k_float("bucket_mb", &bucket_mb, (Range){0, 4096, 1, 0}, 0),
        k_bool("overlap", &p->overlap, 0),
        k_int("threads", &p->threads, range(0, 1024), 0),
        k_double("watchdog_seconds", &watchdog, R_NONNEG, 0),
    };
    if (s)
        parse_group(c, s, keys, COUNT(keys), NULL);
    p->bucket_bytes = (size_t)((double)bucket_mb * 1048576.0);
    if (p->bucket_bytes < 4)
        p->bucket_bytes = 4;
    p->watchdog_seconds = watchdog > 0 ? watchdog : -1.0;
}

static void parse_checkpoint_log(Ctx *c, const config_setting_t *ck, const config_setting_t *log, Job *job)
{
    job->checkpoint_steps = 0;
    job->checkpoint_minutes = 10;
    job->log_every = 0;
    Key ck_keys[] = {k_i64("every_steps", &job->checkpoint_steps, R_NONNEG, 0),
                     k_double("every_minutes", &job->checkpoint_minutes, R_NONNEG, 0)};
    Key log_keys[] = {k_int("every_steps", &job->log_every, range(-1, INFINITY), 0)};
    if (ck)
        parse_group(c, ck, ck_keys, COUNT(ck_keys), NULL);
    if (log)
        parse_group(c, log, log_keys, COUNT(log_keys), NULL);
}

/* -------------------------------------------------------------- fusions */

static void parse_fusion(Ctx *c, const config_setting_t *s, const Job *job, FusionSpec *f, int index)
{
    enum { B_NAME = 1, B_STUDENTS = 2, B_HEAD = 4 };
    const config_setting_t *students = NULL;
    int kind = FUSION_AVERAGE;
    f->head_epochs = 5;
    Key keys[] = {k_str("name", f->name, sizeof f->name, B_NAME), k_ref("students", &students, B_STUDENTS),
                  k_enum("kind", &kind, fusion_names, COUNT(fusion_names), 0),
                  k_int("head_epochs", &f->head_epochs, range(1, INFINITY), B_HEAD)};
    unsigned seen = 0;
    if (parse_group(c, s, keys, COUNT(keys), &seen) && !config_setting_is_group(s))
        return;
    f->kind = (FusionKind)kind;
    if ((seen & B_HEAD) && f->kind != FUSION_CONCAT)
        fail(c, member(s, "head_epochs"), "fusions[%d].head_epochs applies to kind \"concat\" "
                                                             "only (an average has no head to train)", index);
    if (!students) {
        fail(c, s, "fusions[%d]: missing key 'students' (the methods whose students are fused, e.g. [\"kd\", "
                   "\"triplet\"])", index);
        return;
    }
    if (!config_setting_is_array(students) && !config_setting_is_list(students)) {
        fail_type(c, students, "an array of method names [ \"kd\", \"triplet\" ]");
        return;
    }
    int n = config_setting_length(students);
    if (n < 2 || n >= METHOD_COUNT) {
        fail(c, students, "fusions[%d].students has %d entries (expected 2 to %d student methods)", index, n,
             METHOD_COUNT - 1);
        return;
    }
    f->n_students = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(students, (unsigned)i);
        Method m;
        if (parse_method(c, e, &m))
            continue;
        int dup = 0;
        for (int j = 0; j < f->n_students; j++)
            dup |= f->students[j] == m;
        if (m == METHOD_TEACHER)
            fail(c, e, "fusions[%d] fuses students; the teacher sees clean faces and cannot be one", index);
        else if (dup)
            fail(c, e, "fusions[%d].students lists '%s' twice", index, method_name(m));
        else if (!job_has_method(job, m))
            fail(c, e, "fusions[%d] fuses '%s', which is not trained (add it to methods)", index, method_name(m));
        else
            f->students[f->n_students++] = m;
    }
    if (!(seen & B_NAME)) { /* "average-kd-triplet" */
        int w = snprintf(f->name, sizeof f->name, "%s", fusion_names[f->kind]);
        for (int i = 0; i < f->n_students && w > 0 && (size_t)w < sizeof f->name; i++)
            w += snprintf(f->name + w, sizeof f->name - (size_t)w, "-%s", method_name(f->students[i]));
    } else if (!check_name(c, member(s, "name"), "fusion", f->name)) {
        Method m;
        if (method_parse(f->name, &m) == 0)
            fail(c, member(s, "name"), "fusion name '%s' is a method's name (fusion results sit "
                                                          "beside the methods' results)", f->name);
    }
}

static void parse_fusions(Ctx *c, const config_setting_t *s, Job *job)
{
    if (!s)
        return;
    int n = list_of_groups(c, s, "{ students = [\"kd\", \"triplet\"]; kind = \"average\"; }");
    if (n <= 0)
        return;
    job->fusions = calloc((size_t)n, sizeof *job->fusions);
    if (!job->fusions) {
        fail(c, s, "out of memory");
        return;
    }
    job->n_fusions = n;
    for (int i = 0; i < n; i++)
        parse_fusion(c, config_setting_get_elem(s, (unsigned)i), job, &job->fusions[i], i);
    unique_names(c, s, "fusion", job->fusions[0].name, sizeof job->fusions[0], n);
}

/* -------------------------------------------------------- cross checks */

/* A model with a fixed input must match every task's stored side: the
 * loader hands images at the stored side and does not resize. */
static void check_inputs(Ctx *c, const config_setting_t *models, const Job *job)
{
    for (int m = 0; m < job->n_models; m++) {
        int input = job->models[m].net.input;
        for (int t = 0; t < job->n_tasks && input; t++)
            if (job->tasks[t].name[0] && job->tasks[t].data.side != input) {
                const config_setting_t *e = config_setting_get_elem(models, (unsigned)m);
                fail(c, at_or(member(e, "input"), models),
                     "models[%d].input = %d differs from task '%s' data.side = %d (the loader does not resize: "
                     "set data.side, or leave input out to follow each task's side)",
                     m, input, job->tasks[t].name, job->tasks[t].data.side);
                break;
            }
    }
}

/* Every model must fit every task's images: the geometry of a network does
 * not depend on its width or fc, so a network of the same architecture and
 * input at the smallest width is built (a few kilobytes) and its message
 * reported if it does not fit. */
static void check_geometry(Ctx *c, const config_setting_t *models, const Job *job)
{
    for (int m = 0; m < job->n_models; m++)
        for (int t = 0; t < job->n_tasks; t++) {
            if (!job->tasks[t].name[0] || !job->models[m].name[0])
                continue;
            NetSpec spec = job_netspec(job, t, m);
            spec.width = 1.0f / 64;
            spec.fc = 1;
            spec.classes = 1;
            spec.channels = 1;
            char msg[256];
            Net *net = net_create(&spec, 1, 1 << 20, msg, sizeof msg);
            if (!net) {
                fail(c, at_or(config_setting_get_elem(models, (unsigned)m), models),
                     "models[%d] (%s) does not fit task '%s' (%d px): %s", m, job->models[m].name,
                     job->tasks[t].name, spec.input, msg);
                break;
            }
            net_free(net);
        }
}

/* Rules between settings, checked on every cell after the overrides; each
 * rule reports its first offending cell only. */
static void check_cells(Ctx *c, const config_setting_t *train, const Job *job)
{
    enum { RULE_ACCUM, RULE_MIN_LR, RULE_WARMUP, RULE_COUNT };
    int reported[RULE_COUNT] = {0};
    for (int t = 0; t < job->n_tasks; t++)
        for (int m = 0; m < job->n_models; m++)
            for (int k = 0; k < job->n_methods; k++) {
                TrainSettings s = job_settings(job, t, m, job->methods[k]);
                char cell[3 * JOB_NAME_MAX + 8];
                snprintf(cell, sizeof cell, "%s/%s/%s", job->tasks[t].name, job->models[m].name,
                         method_name(job->methods[k]));
                if (!reported[RULE_ACCUM] && s.batch % s.accum != 0) {
                    reported[RULE_ACCUM] = 1;
                    fail(c, train, "cell %s: batch %d is not a multiple of accum %d (each step is accum equal "
                                   "micro-batches)", cell, s.batch, s.accum);
                }
                if (!reported[RULE_MIN_LR] && s.sgd.schedule == SCHED_COSINE && s.sgd.min_lr > s.sgd.lr) {
                    reported[RULE_MIN_LR] = 1;
                    fail(c, train, "cell %s: min_lr %g is above lr %g", cell, (double)s.sgd.min_lr,
                         (double)s.sgd.lr);
                }
                if (!reported[RULE_WARMUP] && s.warmup_epochs >= (float)s.epochs) {
                    reported[RULE_WARMUP] = 1;
                    fail(c, train, "cell %s: warmup_epochs %g must be below epochs %d", cell,
                         (double)s.warmup_epochs, s.epochs);
                }
            }
}

/* ---------------------------------------------------------------- --set */

static void fail_set(Ctx *c, const char *arg, const char *fmt, ...)
{
    c->n_errors++;
    if (c->n_errors > JOB_MAX_ERRORS)
        return;
    append_f(c, "%s--set '%s': ", c->used ? "\n" : "", arg);
    va_list ap;
    va_start(ap, fmt);
    append(c, fmt, ap);
    va_end(ap);
}

/* Copies src (and its children) into parent as `name` (NULL inside lists
 * and arrays). */
static config_setting_t *copy_setting(config_setting_t *parent, const char *name, const config_setting_t *src)
{
    int type = config_setting_type(src);
    config_setting_t *d = config_setting_add(parent, name, type);
    if (!d)
        return NULL;
    switch (type) {
    case CONFIG_TYPE_INT: config_setting_set_int(d, config_setting_get_int(src)); break;
    case CONFIG_TYPE_INT64: config_setting_set_int64(d, config_setting_get_int64(src)); break;
    case CONFIG_TYPE_FLOAT: config_setting_set_float(d, config_setting_get_float(src)); break;
    case CONFIG_TYPE_BOOL: config_setting_set_bool(d, config_setting_get_bool(src)); break;
    case CONFIG_TYPE_STRING: config_setting_set_string(d, config_setting_get_string(src)); break;
    default:
        for (int i = 0; i < config_setting_length(src); i++) {
            const config_setting_t *e = config_setting_get_elem(src, (unsigned)i);
            if (!copy_setting(d, type == CONFIG_TYPE_GROUP ? config_setting_name(e) : NULL, e))
                return NULL;
        }
    }
    return d;
}

/* The entry of list s called `name` (its name key, or its target/arch when it
 * has no name), or NULL. */
static config_setting_t *entry_named(const config_setting_t *s, const char *name)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < config_setting_length(s); i++) {
            config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            const char *v = NULL;
            if (!config_setting_is_group(e))
                continue;
            if (pass == 0)
                config_setting_lookup_string(e, "name", &v);
            else if (!config_setting_get_member(e, "name") && !config_setting_lookup_string(e, "target", &v))
                config_setting_lookup_string(e, "arch", &v);
            if (v && strcmp(v, name) == 0)
                return e;
        }
    return NULL;
}

/* Child `comp` of cur: a group member (created as a group when missing and
 * `create`), a list index or a list entry's name. NULL after a message. */
static config_setting_t *set_child(Ctx *c, const char *arg, config_setting_t *cur, const char *comp, int create)
{
    char path[256];
    key_path(cur, path, sizeof path);
    if (config_setting_is_group(cur)) {
        config_setting_t *m = config_setting_get_member(cur, comp);
        if (m || !create)
            return m;
        m = config_setting_add(cur, comp, CONFIG_TYPE_GROUP);
        if (!m)
            fail_set(c, arg, "'%s' is not a valid key name", comp);
        else
            config_setting_set_hook(m, (void *)arg);
        return m;
    }
    if (config_setting_is_list(cur) || config_setting_is_array(cur)) {
        char *end;
        errno = 0;
        long idx = strtol(comp, &end, 10);
        int n = config_setting_length(cur);
        if (*comp && !*end && errno == 0) {
            if (idx >= 0 && idx < n)
                return config_setting_get_elem(cur, (unsigned)idx);
            fail_set(c, arg, "%s has %d entries: index %ld is out of range", path, n, idx);
            return NULL;
        }
        config_setting_t *e = entry_named(cur, comp);
        if (!e)
            fail_set(c, arg, "no entry of %s is named '%s' (use its name or its index from 0)", path, comp);
        return e;
    }
    fail_set(c, arg, "%s is %s, it has no '%s'", path, type_desc(config_setting_type(cur)), comp);
    return NULL;
}

/* Replaces element e of a list or array by the scalar v in place (libconfig
 * cannot insert at an index). */
static int set_element(Ctx *c, const char *arg, config_setting_t *e, const config_setting_t *v)
{
    int et = config_setting_type(e), vt = config_setting_type(v);
    int ok = 0;
    if (et == CONFIG_TYPE_STRING && vt == CONFIG_TYPE_STRING)
        ok = config_setting_set_string(e, config_setting_get_string(v));
    else if ((et == CONFIG_TYPE_INT || et == CONFIG_TYPE_INT64) && (vt == CONFIG_TYPE_INT || vt == CONFIG_TYPE_INT64))
        ok = et == CONFIG_TYPE_INT ? config_setting_set_int(e, (int)config_setting_get_int64(v))
                                   : config_setting_set_int64(e, config_setting_get_int64(v));
    else if (et == CONFIG_TYPE_FLOAT && vt == CONFIG_TYPE_FLOAT)
        ok = config_setting_set_float(e, config_setting_get_float(v));
    else if (et == CONFIG_TYPE_FLOAT && (vt == CONFIG_TYPE_INT || vt == CONFIG_TYPE_INT64))
        ok = config_setting_set_float(e, (double)config_setting_get_int64(v));
    else if (et == CONFIG_TYPE_BOOL && vt == CONFIG_TYPE_BOOL)
        ok = config_setting_set_bool(e, config_setting_get_bool(v));
    if (!ok) {
        fail_set(c, arg, "the entry is %s; the value must be of the same type", type_desc(et));
        return -1;
    }
    config_setting_set_hook(e, (void *)arg);
    return 0;
}

/* Parses the value of a --set as libconfig would; a bare word it cannot
 * parse is a string. tmp holds the result in "v". */
static config_setting_t *set_value(Ctx *c, const char *arg, const char *value, config_t *tmp)
{
    size_t len = strlen(value);
    char *text = malloc(len + 8);
    if (!text)
        return NULL;
    snprintf(text, len + 8, "v = %s;", value);
    int ok = config_read_string(tmp, text);
    free(text);
    if (ok)
        return config_lookup(tmp, "v");
    if (len && strchr("[({\"", value[0])) {
        fail_set(c, arg, "cannot parse the value '%s': %s", value,
                 config_error_text(tmp) ? config_error_text(tmp) : "syntax error");
        return NULL;
    }
    config_destroy(tmp);
    config_init(tmp);
    config_setting_t *v = config_setting_add(config_root_setting(tmp), "v", CONFIG_TYPE_STRING);
    if (v)
        config_setting_set_string(v, value);
    return v;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Grafts one "a.b.c=value" onto the tree. */
static void apply_set(Ctx *c, config_t *cfg, const char *arg)
{
    if (strlen(arg) >= SET_MAX) {
        fail_set(c, "...", "argument longer than %d bytes", SET_MAX);
        return;
    }
    char buf[SET_MAX];
    snprintf(buf, sizeof buf, "%s", arg);
    char *eq = strchr(buf, '=');
    if (!eq) {
        fail_set(c, arg, "expected key.path=value (for example train.epochs=2)");
        return;
    }
    *eq = '\0';
    char *key = trim(buf), *value = trim(eq + 1);
    if (!key[0] || key[0] == '.' || key[strlen(key) - 1] == '.' || strstr(key, "..")) {
        fail_set(c, arg, "'%s' is not a key path (expected names and indices joined by dots, e.g. "
                         "tasks.0.data.count)", key);
        return;
    }
    config_t tmp;
    config_init(&tmp);
    config_setting_t *v = set_value(c, arg, value, &tmp);
    config_setting_t *cur = config_root_setting(cfg);
    char *save = NULL, *comp = strtok_r(key, ".", &save);
    while (v && cur && comp) {
        char *next = strtok_r(NULL, ".", &save);
        if (next) {
            cur = set_child(c, arg, cur, comp, 1);
        } else if (config_setting_is_group(cur)) {
            if (config_setting_get_member(cur, comp))
                config_setting_remove(cur, comp);
            config_setting_t *d = copy_setting(cur, comp, v);
            if (!d)
                fail_set(c, arg, "'%s' is not a valid key name", comp);
            else
                config_setting_set_hook(d, (void *)arg);
        } else {
            config_setting_t *e = set_child(c, arg, cur, comp, 0);
            if (e && config_setting_is_scalar(v) && config_setting_is_scalar(e))
                set_element(c, arg, e, v);
            else if (e)
                fail_set(c, arg, "only a single value can replace an entry of a list");
        }
        comp = next;
    }
    config_destroy(&tmp);
}

/* ---------------------------------------------------------------- load */

static char *read_text(const char *path, size_t *len, char *err, size_t errlen)
{
    if (path_kind(path) == 2) {
        snprintf(err, errlen, "%s: is a folder, not a job file", path);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t used = 0, cap = 0;
    for (;;) {
        if (used + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *t = realloc(text, cap);
            if (!t)
                break;
            text = t;
        }
        size_t got = fread(text + used, 1, cap - used - 1, f);
        used += got;
        if (got == 0 || used > (size_t)JOB_FILE_MAX)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!text || bad || used > (size_t)JOB_FILE_MAX) {
        snprintf(err, errlen, "%s: %s", path, !text ? "out of memory" : bad ? "read error" : "larger than 16 MiB");
        free(text);
        return NULL;
    }
    text[used] = '\0';
    if (strlen(text) != used) {
        snprintf(err, errlen, "%s: holds a NUL byte at offset %zu (not a text file)", path, strlen(text));
        free(text);
        return NULL;
    }
    *len = used;
    return text;
}

/* " (near '<text of the line>')" for a syntax error at line. */
static void line_excerpt(const char *text, int line, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!text || line < 1)
        return;
    const char *p = text;
    for (int i = 1; i < line && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p)
        return;
    while (*p == ' ' || *p == '\t')
        p++;
    int n = (int)strcspn(p, "\r\n");
    if (n > 60)
        n = 60;
    if (n > 0)
        snprintf(buf, len, " (in '%.*s')", n, p);
}

static void hash_job(Job *job, const char *const *sets, int n_sets, size_t text_len)
{
    Sha256 h;
    sha256_init(&h);
    sha256_update(&h, job->text, text_len);
    size_t total = 1;
    for (int i = 0; i < n_sets; i++) {
        sha256_update(&h, "\n--set ", 7);
        sha256_update(&h, sets[i], strlen(sets[i]));
        total += strlen(sets[i]) + 1;
    }
    sha256_final_hex(&h, job->sha256);
    job->sets = malloc(total);
    if (job->sets) {
        job->sets[0] = '\0';
        size_t used = 0;
        for (int i = 0; i < n_sets; i++)
            used += (size_t)sprintf(job->sets + used, "%s%s", i ? "\n" : "", sets[i]);
    }
}

/* ------------------------------------------------------ job.only_task */

/* job.only_task = "<task name>" or <index from 0>: the job keeps that one
 * task and drops the others (a Slurm array element trains one task, e.g.
 * --set job.only_task=$SLURM_ARRAY_TASK_ID). Runs after every other rule, so
 * the whole file, all tasks included, is validated as usual; overrides and
 * fusions name tasks and methods, not indices, so nothing else changes. */
static void select_only_task(Ctx *c, const config_setting_t *s, Job *job)
{
    if (!s)
        return;
    int type = config_setting_type(s), pick = -1;
    if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
        long long i = config_setting_get_int64(s);
        if (i < 0 || i >= job->n_tasks) {
            fail(c, s, "job.only_task %lld is out of range: the job has %d task(s), indices 0 to %d", i,
                 job->n_tasks, job->n_tasks - 1);
            return;
        }
        pick = (int)i;
    } else if (type == CONFIG_TYPE_STRING) {
        const char *v = config_setting_get_string(s);
        for (int i = 0; i < job->n_tasks && pick < 0; i++)
            if (strcmp(job->tasks[i].name, v) == 0)
                pick = i;
        if (pick < 0) {
            const char **names = calloc(job->n_tasks > 0 ? (size_t)job->n_tasks : 1, sizeof *names);
            if (!names) {
                fail(c, s, "out of memory");
                return;
            }
            for (int i = 0; i < job->n_tasks; i++)
                names[i] = job->tasks[i].name;
            fail_unknown_name(c, s, "task", v, names, job->n_tasks);
            free(names);
            return;
        }
    } else {
        fail_type(c, s, "a task name (\"age\") or a task index from 0");
        return;
    }
    if (pick > 0)
        job->tasks[0] = job->tasks[pick];
    job->n_tasks = 1;
}

/* Every section, in dependency order. */
static void parse_root(Ctx *c, config_setting_t *root, Job *job)
{
    const config_setting_t *sec[11] = {0};
    static const char *const names[11] = {"job",     "tasks",    "models",     "methods", "train", "overrides",
                                          "distill", "fusions",  "parallel",   "checkpoint", "log"};
    Key keys[11];
    for (int i = 0; i < 11; i++)
        keys[i] = k_ref(names[i], &sec[i], 0);
    parse_group(c, root, keys, 11, NULL);
    parse_job_section(c, sec[0], job);
    parse_tasks(c, sec[1], job);
    parse_models(c, sec[2], job);
    parse_methods(c, sec[3], job);
    parse_train(c, sec[4], job);
    parse_distill(c, sec[6], job);
    parse_parallel(c, sec[8], job);
    parse_checkpoint_log(c, sec[9], sec[10], job);
    if (job->n_tasks && job->n_models && job->n_methods)
        parse_overrides(c, sec[5], job);
    parse_fusions(c, sec[7], job);
    if (sec[2] && job->n_models) {
        int before = c->n_errors;
        check_inputs(c, sec[2], job);
        if (c->n_errors == 0 && before == 0)
            check_geometry(c, sec[2], job);
    }
    if (c->n_errors == 0)
        check_cells(c, sec[4] ? sec[4] : NULL, job);
    if (c->n_errors == 0 && sec[0])
        select_only_task(c, member(sec[0], "only_task"), job);
}

int job_load_ex(const char *path, const char *const *sets, int n_sets, unsigned flags, Job *job, char *err,
                size_t errlen)
{
    memset(job, 0, sizeof *job);
    if (err && errlen)
        err[0] = '\0';
    char scratch[1];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    if (!path || strlen(path) >= sizeof job->path) {
        snprintf(err, errlen, "job file path missing or too long");
        return -1;
    }
    snprintf(job->path, sizeof job->path, "%s", path);
    size_t text_len = 0;
    job->text = read_text(path, &text_len, err, errlen);
    if (!job->text)
        return -1;
    config_t cfg;
    config_init(&cfg);
    if (!config_read_file(&cfg, path)) {
        char near[96];
        line_excerpt(job->text, config_error_line(&cfg), near, sizeof near);
        const char *file = config_error_file(&cfg) ? config_error_file(&cfg) : path;
        snprintf(err, errlen, "%s:%d: %s%s", file, config_error_line(&cfg),
                 config_error_text(&cfg) ? config_error_text(&cfg) : "cannot parse", near);
        config_destroy(&cfg);
        job_free(job);
        return -1;
    }
    Ctx c = {.path = path, .flags = flags, .err = err, .errlen = errlen};
    for (int i = 0; i < n_sets; i++)
        apply_set(&c, &cfg, sets[i] ? sets[i] : "");
    if (c.n_errors == 0)
        parse_root(&c, config_root_setting(&cfg), job);
    config_destroy(&cfg);
    if (c.n_errors > JOB_MAX_ERRORS)
        append_f(&c, "\n... and %d more problems", c.n_errors - JOB_MAX_ERRORS);
    if (c.n_errors) {
        job_free(job);
        return -1;
    }
    hash_job(job, sets, n_sets, text_len);
    if (!job->sets) {
        snprintf(err, errlen, "%s: out of memory", path);
        job_free(job);
        return -1;
    }
    return 0;
}

int job_load(const char *path, const char *const *sets, int n_sets, Job *job, char *err, size_t errlen)
{
    return job_load_ex(path, sets, n_sets, 0, job, err, errlen);
}

void job_free(Job *job)
{
    if (!job)
        return;
    free(job->text);
    free(job->sets);
    free(job->tasks);
    free(job->models);
    free(job->overrides);
    free(job->fusions);
    memset(job, 0, sizeof *job);
}

/* ------------------------------------------------------------ per cell */

static int matches(const char *pattern, const char *name)
{
    return !pattern[0] || strcmp(pattern, "*") == 0 || strcmp(pattern, name) == 0;
}

static void apply_override(TrainSettings *s, const Override *o)
{
    const TrainSettings *v = &o->s;
    unsigned f = o->set;
    if (f & JOB_OV_EPOCHS) s->epochs = v->epochs;
    if (f & JOB_OV_BATCH) s->batch = v->batch;
    if (f & JOB_OV_ACCUM) s->accum = v->accum;
    if (f & JOB_OV_LR) s->sgd.lr = v->sgd.lr;
    if (f & JOB_OV_SCHEDULE) s->sgd.schedule = v->sgd.schedule;
    if (f & JOB_OV_MOMENTUM) s->sgd.momentum = v->sgd.momentum;
    if (f & JOB_OV_WEIGHT_DECAY) s->sgd.weight_decay = v->sgd.weight_decay;
    if (f & JOB_OV_WARMUP) s->warmup_epochs = v->warmup_epochs;
    if (f & JOB_OV_NESTEROV) s->sgd.nesterov = v->sgd.nesterov;
    if (f & JOB_OV_DECOUPLED) s->sgd.decoupled = v->sgd.decoupled;
    if (f & JOB_OV_STEP_EPOCHS) s->step_epochs = v->step_epochs;
    if (f & JOB_OV_GAMMA) s->sgd.gamma = v->sgd.gamma;
    if (f & JOB_OV_MIN_LR) s->sgd.min_lr = v->sgd.min_lr;
    if (f & JOB_OV_EVAL_BATCH) s->eval_batch = v->eval_batch;
    if (f & JOB_OV_PAD) s->aug.pad = v->aug.pad;
    if (f & JOB_OV_FLIP) s->aug.flip = v->aug.flip;
}

TrainSettings job_settings(const Job *job, int task, int model, Method method)
{
    TrainSettings s = job->train;
    for (int i = 0; i < job->n_overrides; i++) {
        const Override *o = &job->overrides[i];
        if (matches(o->task, job->tasks[task].name) && matches(o->model, job->models[model].name) &&
            matches(o->method, method_name(method)))
            apply_override(&s, o);
    }
    if (s.step_epochs <= 0)
        s.step_epochs = s.epochs / 3.0f >= 1.0f ? s.epochs / 3.0f : 1.0f;
    return s;
}

NetSpec job_netspec(const Job *job, int task, int model)
{
    NetSpec n = job->models[model].net;
    const TaskSpec *t = &job->tasks[task];
    if (n.input == 0)
        n.input = t->data.side;
    n.channels = t->data.channels;
    n.classes = t->regression ? 1 : t->classes;
    return n;
}

/* -------------------------------------------------------------- print */

static void print_task(const TaskSpec *t, FILE *f)
{
    const DataOptions *d = &t->data;
    fprintf(f, "  %-14s %s", t->name, target_name(t->target));
    if (t->regression)
        fprintf(f, " (regression, %s loss)", t->l2 ? "L2" : "L1");
    else if (t->classes)
        fprintf(f, " (%d classes)", t->classes);
    else
        fprintf(f, " (classes from the data)");
    fprintf(f, "; %s", source_name(d->source));
    if (d->source == SOURCE_SYNTH)
        fprintf(f, " %d faces (seed %llu)", d->synth_count, (unsigned long long)d->synth_seed);
    else
        fprintf(f, " '%s'", d->path);
    fprintf(f, ", %d px x%d", d->side, d->channels);
    if (d->source == SOURCE_FERPLUS)
        fprintf(f, ", official splits");
    else if (d->source == SOURCE_AFFECTNET || d->source == SOURCE_IDX)
        fprintf(f, ", val %g, official test", (double)d->val_fraction);
    else
        fprintf(f, ", val %g test %g", (double)d->val_fraction, (double)d->test_fraction);
    if (d->limit)
        fprintf(f, ", limit %d", d->limit);
    fprintf(f, "; occlusion %s %g %s %s\n", occlusion_kind_name(t->occ.kind), (double)t->occ.fraction,
            occlusion_fill_name(t->occ.fill), occlusion_shape_name(t->occ.shape));
}

static void print_settings(const TrainSettings *s, FILE *f)
{
    fprintf(f, "epochs %d batch %d", s->epochs, s->batch);
    if (s->accum > 1)
        fprintf(f, " (accum %d)", s->accum);
    fprintf(f, " lr %g %s", (double)s->sgd.lr, schedule_names[s->sgd.schedule]);
    if (s->sgd.schedule == SCHED_STEP)
        fprintf(f, " (x%g every %g epochs)", (double)s->sgd.gamma, (double)s->step_epochs);
    if (s->sgd.schedule == SCHED_COSINE && s->sgd.min_lr > 0)
        fprintf(f, " (to %g)", (double)s->sgd.min_lr);
    if (s->warmup_epochs > 0)
        fprintf(f, " warmup %g", (double)s->warmup_epochs);
    fprintf(f, " momentum %g%s wd %g%s aug pad %d%s\n", (double)s->sgd.momentum, s->sgd.nesterov ? " nesterov" : "",
            (double)s->sgd.weight_decay, s->sgd.decoupled ? " decoupled" : "", s->aug.pad,
            s->aug.flip ? " flip" : "");
}

void job_print(const Job *job, FILE *f)
{
    fprintf(f, "job %s (%s)\n  sha256 %s\n  output %s, cache %s, seeds", job->name, job->path, job->sha256,
            job->output, job->cache);
    for (int i = 0; i < job->n_seeds; i++)
        fprintf(f, " %llu", (unsigned long long)job->seeds[i]);
    fprintf(f, "\n");
    if (job->sets && job->sets[0])
        fprintf(f, "  --set %s\n", job->sets);
    fprintf(f, "tasks (%d):\n", job->n_tasks);
    for (int i = 0; i < job->n_tasks; i++)
        print_task(&job->tasks[i], f);
    fprintf(f, "models (%d):\n", job->n_models);
    for (int i = 0; i < job->n_models; i++) {
        const ModelSpec *m = &job->models[i];
        fprintf(f, "  %-14s %s input ", m->name, arch_name(m->net.arch));
        if (m->net.input)
            fprintf(f, "%d", m->net.input);
        else
            fprintf(f, "(task side)");
        fprintf(f, " width %g fc %d dropout %g%s%s\n", (double)m->net.width, m->net.fc, (double)m->net.dropout,
                m->init[0] ? " init " : "", m->init);
    }
    fprintf(f, "methods:");
    for (int i = 0; i < job->n_methods; i++)
        fprintf(f, " %s", method_name(job->methods[i]));
    fprintf(f, "\n");
    for (int i = 0; i < job->n_fusions; i++) {
        const FusionSpec *u = &job->fusions[i];
        fprintf(f, "fusion %s: %s of", u->name, fusion_names[u->kind]);
        for (int j = 0; j < u->n_students; j++)
            fprintf(f, " %s", method_name(u->students[j]));
        if (u->kind == FUSION_CONCAT)
            fprintf(f, " (linear head, %d epochs)", u->head_epochs);
        fprintf(f, "\n");
    }
    const DistillSettings *d = &job->distill;
    fprintf(f, "distill: temperature %g lambda %g beta %g margin %g mining %s positive %s age_bin %g\n", (double)d->T,
            (double)d->lambda, (double)d->beta, (double)d->margin, mining_names[d->mining],
            positive_names[d->positive], (double)d->age_bin);
    const ParallelSettings *p = &job->parallel;
    fprintf(f, "parallel: groups %d, bucket %.3g MiB, overlap %s, threads ", p->groups,
            (double)p->bucket_bytes / 1048576.0, p->overlap ? "on" : "off");
    if (p->threads)
        fprintf(f, "%d", p->threads);
    else
        fprintf(f, "auto");
    if (p->watchdog_seconds > 0)
        fprintf(f, ", watchdog %g s\n", p->watchdog_seconds);
    else
        fprintf(f, ", watchdog off\n");
    fprintf(f, "checkpoint: every %lld steps, every %g minutes (0: off); log every %d steps\n",
            (long long)job->checkpoint_steps, job->checkpoint_minutes, job->log_every);
    int cells = job->n_tasks * job->n_models * job->n_methods;
    fprintf(f, "cells: %d trained (%d tasks x %d models x %d methods) + %d fusions, x %d seed%s\n", cells,
            job->n_tasks, job->n_models, job->n_methods, job->n_tasks * job->n_models * job->n_fusions,
            job->n_seeds, job->n_seeds == 1 ? "" : "s");
    for (int t = 0; t < job->n_tasks; t++)
        for (int m = 0; m < job->n_models; m++)
            for (int k = 0; k < job->n_methods; k++) {
                char cell[3 * JOB_NAME_MAX + 8];
                snprintf(cell, sizeof cell, "%s/%s/%s", job->tasks[t].name, job->models[m].name,
                         method_name(job->methods[k]));
                TrainSettings s = job_settings(job, t, m, job->methods[k]);
                fprintf(f, "  %-36s ", cell);
                print_settings(&s, f);
            }
}
