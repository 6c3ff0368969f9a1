/* job_internal.h - what the files of the job reader share (trainer/job*.c
 * only; tests may read the tables).
 *
 * Every key of a job file is one row of a key table (job_keys.c): its name,
 * type, range, default, where it lands (an offset into the section's
 * struct), whether overrides may set it, how --check shows it and a line
 * for the key reference of jobs/README.md. The schema engine
 * (job_schema.c) reads a libconfig group through such tables; the section
 * readers (job_sections.c, job_settings.c) add only the rules between keys;
 * printing (job_print.c) and the reference (job_doc.c) walk the same rows.
 */
#ifndef OCCKD_JOB_INTERNAL_H
#define OCCKD_JOB_INTERNAL_H

#include <libconfig.h>
#include <stdarg.h>
#include <stddef.h>

#include "trainer/job.h"

#define JOB_MAX_ERRORS 20
#define JOB_MAX_ENTRIES 4096 /* tasks, models, overrides, fusions */
#define SET_MAX 4096         /* bytes of one --set argument */
#define KEY_ROWS_MAX 32      /* rows of one table (a bit each in masks) */
#define KEY_NAMES_MAX 16     /* names of one enum key */

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* ------------------------------------------------------------- messages */

/* An integer literal of the job file that libconfig 1.5 reads wrongly: one
 * without the L suffix beyond 32 bits (it keeps the low 32 bits:
 * 4294967297 becomes 1), or one beyond 64 bits (clamped). */
typedef struct {
    char path[160];     /* the key path of its setting, as key_path writes it: "tasks[0].data.count" */
    long long value;    /* exact, unless beyond */
    int beyond;         /* 1: fits no 64-bit integer */
    char text[40];      /* the literal as written (cut to fit) */
} WideLiteral;

#define WIDE_MAX 32 /* wide literals of one file that are remembered */

typedef struct {
    const char *path;   /* the job file, as messages name it */
    unsigned flags;
    char *err;
    size_t errlen, used;
    int n_errors;
    /* the file's wide literals, found when the first integer is read (zero-initialised: not yet) */
    int wide_scanned, n_wide;
    WideLiteral wide[WIDE_MAX];
} Ctx;

void append_f(Ctx *c, const char *fmt, ...);
void append_v(Ctx *c, const char *fmt, va_list ap);
/* Records one problem located at s (NULL: the file as a whole). */
void fail(Ctx *c, const config_setting_t *s, const char *fmt, ...);
/* "expected <what>, got <type> (<value>)" at s. */
void fail_type(Ctx *c, const config_setting_t *s, const char *expected);
/* "unknown <what> 'x' (did you mean 'y'? known: a, b, c)" at s. */
void fail_unknown_name(Ctx *c, const config_setting_t *s, const char *what, const char *name,
                       const char *const *names, int n);
/* The dotted path of a setting: "tasks[1].data.side" ("the top level" for the root). */
void key_path(const config_setting_t *s, char *buf, size_t len);
const char *type_desc(int type);
/* The known name closest to `name`, or NULL when none is close. */
const char *nearest(const char *name, const char *const *known, int n);
/* "a, b, c" into buf. */
void join_names(const char *const *names, int n, char *buf, size_t len);
/* Member `name` of group g, or NULL (g may be NULL or not a group). */
const config_setting_t *member(const config_setting_t *g, const char *name);
/* s when it is not NULL, else fallback: where a message should point. */
const config_setting_t *at_or(const config_setting_t *s, const config_setting_t *fallback);

/* ------------------------------------------------------------ key tables */

typedef enum { K_INT, K_I64, K_U64, K_FLOAT, K_DOUBLE, K_BOOL, K_STRING, K_ENUM, K_GROUP, K_REF } KeyKind;

typedef struct {
    double lo, hi;                 /* bounds; +-INFINITY: none */
    unsigned char lo_open, hi_open;
} Range;

enum {
    KEY_OVERRIDE = 1 << 0,  /* train keys an override may set */
    KEY_NO_DEFAULT = 1 << 1 /* the section computes the default (or the key is required) */
};

typedef struct KeyRow KeyRow;
struct KeyRow {
    const char *name;        /* "epochs"; "augment.pad": key pad of the sub-group augment (a K_GROUP row) */
    KeyKind kind;            /* K_GROUP: read through the rows "<name>.*"; K_REF: left to the section */
    size_t offset, size;     /* where the value lands in the section's struct, and its bytes */
    Range r;                 /* numbers */
    double def;              /* numbers, bools, enums (the index) */
    const char *def_str;     /* strings */
    const char *const *names; /* enums: the names, or */
    const char *(*name_of)(int i); /* the name of value i, of n_names */
    int n_names;
    unsigned flags;          /* KEY_* */
    /* --check: fmt takes the value (printf), fmt_off instead when the value is
     * <= 0 or false (NULL: fmt); shown only when show is NULL or says so */
    const char *fmt, *fmt_off;
    int (*show)(const void *base, const KeyRow *row);
    /* the key reference: type, range and default when not derived from the row */
    const char *type_doc, *range_doc, *def_doc;
    const char *doc;         /* what the key means */
};

typedef struct {
    const char *name;        /* as the key reference names the group: "train", "tasks[i].data" */
    const KeyRow *rows;
    int n;
} KeyTable;

extern const KeyTable root_table, job_table, task_table, data_table, occlusion_table, model_table, train_table,
    override_table, distill_table, fusion_table, parallel_table, checkpoint_table, log_table;
/* The tables of the key reference, in the order of jobs/README.md. */
extern const KeyTable *const doc_tables[];
extern const int n_doc_tables;

/* Enum names the sections share. */
extern const char *const target_names[4];
extern const char *const fusion_names[2];

/* One table read into one struct: got[i] receives the member of row i
 * (NULL when absent), bad gets the bit of each row whose value was refused. */
typedef struct {
    const KeyTable *t;
    void *base;
    const config_setting_t **got; /* t->n entries, or NULL */
    unsigned *bad;                /* or NULL */
} TableUse;

/* Reads group g through the tables (their rows together are the group's
 * known keys, in order). Unknown keys, wrong types and values out of range
 * are errors; a value is written only when valid. Returns 0 when every
 * member was valid. */
int parse_tables(Ctx *c, const config_setting_t *g, const TableUse *u, int n_u);
/* The same for one table. */
int parse_table(Ctx *c, const config_setting_t *g, const KeyTable *t, void *base, const config_setting_t **got,
                unsigned *bad);
/* Reads one setting as row r into base (written only when valid). 0 or -1. */
int parse_row(Ctx *c, const KeyRow *r, const config_setting_t *s, void *base);
/* Writes every row's default into base (rows without KEY_NO_DEFAULT). */
void table_defaults(const KeyTable *t, void *base);
/* Row `name` of t, its index, or -1. */
int table_find(const KeyTable *t, const char *name);
/* The names of an enum row into out (KEY_NAMES_MAX); returns their count. */
int row_names(const KeyRow *r, const char **out);
/* "> 0", ">= 1", "in [0, 1)", "<= 4" */
void range_desc(Range r, char *buf, size_t len);
/* The value of a numeric, bool or enum row in base. */
double row_number(const KeyRow *r, const void *base);

/* A list ( { ... }, ... ) of at most JOB_MAX_ENTRIES groups: its length, or -1 after a message. */
int list_of_groups(Ctx *c, const config_setting_t *s, const char *example);
/* Names of tasks, models, fusions and jobs become folder and HDF5 group names. 0 or -1. */
int check_name(Ctx *c, const config_setting_t *s, const char *what, const char *name);

/* ------------------------------------------------------------- sections */

void parse_job_section(Ctx *c, const config_setting_t *s, Job *job);
void parse_tasks(Ctx *c, const config_setting_t *s, Job *job);
void parse_models(Ctx *c, const config_setting_t *s, Job *job);
void parse_methods(Ctx *c, const config_setting_t *s, Job *job);
void parse_fusions(Ctx *c, const config_setting_t *s, Job *job);
void parse_train(Ctx *c, const config_setting_t *s, Job *job);
void parse_overrides(Ctx *c, const config_setting_t *s, Job *job);
void parse_distill(Ctx *c, const config_setting_t *s, Job *job);
void parse_parallel(Ctx *c, const config_setting_t *s, Job *job);
void parse_checkpoint_log(Ctx *c, const config_setting_t *ck, const config_setting_t *log, Job *job);

/* A list of groups read into a new array, one entry per group. */
typedef struct {
    const char *what;        /* "task": names messages and the uniqueness rule */
    const char *missing;     /* message when the list is absent (NULL: optional) */
    const char *example;     /* "{ name = ...; }" for the type message */
    const char *empty;       /* message when it is empty (NULL: allowed) */
    size_t size;             /* bytes of an entry */
    size_t name_offset;      /* of its name (char[JOB_NAME_MAX]) */
    void (*parse)(Ctx *c, const config_setting_t *e, const Job *job, void *entry, int index);
} EntryList;
/* The entries of list s (NULL when none), *n their count. */
void *parse_entries(Ctx *c, const config_setting_t *s, const EntryList *l, const Job *job, int *n);
/* A method name in s (an element of methods or of a fusion's students). */
int parse_method(Ctx *c, const config_setting_t *s, Method *out);
int job_has_method(const Job *job, Method m);

/* --------------------------------------------------------------- checks */

/* What each source reads at `path`, and the files it needs there. */
void check_source_path(Ctx *c, const config_setting_t *s, const char *key, const DataOptions *o);
int need_folder(Ctx *c, const config_setting_t *s, const char *key, const char *path, const char *what);
int path_kind(const char *path); /* 0 missing, 1 file, 2 folder, 3 other */
void check_inputs(Ctx *c, const config_setting_t *models, const Job *job);
void check_geometry(Ctx *c, const config_setting_t *models, const Job *job);
void check_cells(Ctx *c, const config_setting_t *train, const Job *job);
void select_only_task(Ctx *c, const config_setting_t *s, Job *job);

/* ------------------------------------------------------------ --set, load */

/* Grafts one "a.b.c=value" onto the tree. */
void apply_set(Ctx *c, config_t *cfg, const char *arg);
char *read_text(const char *path, size_t *len, char *err, size_t errlen);
/* The wide integer literals of a job text that libconfig parsed (see
 * WideLiteral) into out, at most max; returns how many there are (more than
 * max when some were left out). */
int scan_wide_literals(const char *text, WideLiteral *out, int max);
/* What libconfig makes of the n bytes at w when they are an integer literal
 * ([-+]digits or 0x hex digits, then L or LL or nothing). */
typedef enum {
    LIT_NONE,   /* not an integer literal */
    LIT_FITS,   /* read right */
    LIT_WIDE,   /* no L suffix and beyond 32 bits: read wrapped; the value is *v */
    LIT_BEYOND  /* beyond 64 bits */
} LitKind;
LitKind int_literal(const char *w, size_t n, long long *v, int *has_suffix);
/* A byte of a libconfig name or number (letters, digits, _ + - . *). */
int word_char(int ch);
/* The integer in s exactly, for s from the file or from --set (whose
 * values are read in 64 bits); -1 after a message when it fits no 64-bit
 * integer. */
int setting_integer(Ctx *c, const config_setting_t *s, long long *out);
/* " (in '<text of the line>')" for a syntax error at line. */
void line_excerpt(const char *text, int line, char *buf, size_t len);
/* job->sha256 and job->sets from the text and the --set arguments. */
void hash_job(Job *job, const char *const *sets, int n_sets, size_t text_len);

/* ---------------------------------------------------------------- print */

/* The rows of t that have a fmt, shown from base. */
void print_rows(const KeyTable *t, const void *base, FILE *f);

#endif
