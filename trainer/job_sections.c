/* job_sections.c - the sections that describe the grid: job, tasks (with
 * their data and occlusion), models, methods and fusions. The key tables
 * read the values; what is here are the rules between keys and entries.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/job_internal.h"

/* ---------------------------------------------------------------- lists */

/* Lists' names (n, stride apart) must be unique: reports each repeat with its first line. */
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

void *parse_entries(Ctx *c, const config_setting_t *s, const EntryList *l, const Job *job, int *count)
{
    *count = 0;
    if (!s) {
        if (l->missing)
            fail(c, NULL, "%s", l->missing);
        return NULL;
    }
    int n = list_of_groups(c, s, l->example);
    if (n < 0)
        return NULL;
    if (n == 0) {
        if (l->empty)
            fail(c, s, "%s", l->empty);
        return NULL;
    }
    char *entries = calloc((size_t)n, l->size);
    if (!entries) {
        fail(c, s, "out of memory");
        return NULL;
    }
    *count = n;
    for (int i = 0; i < n; i++)
        l->parse(c, config_setting_get_elem(s, (unsigned)i), job, entries + (size_t)i * l->size, i);
    unique_names(c, s, l->what, entries + l->name_offset, l->size, n);
    return entries;
}

/* Row `name` of t was given with a valid value. */
static int valid(const KeyTable *t, const config_setting_t *const *got, unsigned bad, const char *name)
{
    int i = table_find(t, name);
    return i >= 0 && got[i] && !(bad & (1u << i));
}

static const config_setting_t *given(const KeyTable *t, const config_setting_t *const *got, const char *name)
{
    int i = table_find(t, name);
    return i >= 0 ? got[i] : NULL;
}

/* ------------------------------------------------------------------ job */

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
    static const KeyRow seed_row = {.name = "seed", .kind = K_U64, .r = {0, INFINITY, 0, 0}};
    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        fail_type(c, s, "an array of integers [1, 2, 3]");
        return;
    }
    int n = config_setting_length(s);
    if (n < 1 || n > JOB_MAX_SEEDS) {
        fail(c, s, "job.seeds has %d entries (expected 1 to %d)", n, JOB_MAX_SEEDS);
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (parse_row(c, &seed_row, e, &job->seeds[i]))
            return;
        for (int j = 0; j < i; j++)
            if (job->seeds[j] == job->seeds[i]) {
                fail(c, e, "job.seeds lists %llu twice", (unsigned long long)job->seeds[i]);
                return;
            }
    }
    job->n_seeds = n;
}

void parse_job_section(Ctx *c, const config_setting_t *s, Job *job)
{
    const KeyTable *t = &job_table;
    const config_setting_t *got[KEY_ROWS_MAX] = {0};
    unsigned bad = 0;
    table_defaults(t, job);
    name_from_path(c->path, job->name, sizeof job->name);
    job->n_seeds = 1;
    if (s)
        parse_table(c, s, t, job, got, &bad);
    if (valid(t, got, bad, "name"))
        check_name(c, given(t, got, "name"), "job", job->name);
    if (given(t, got, "output") && !job->output[0])
        fail(c, given(t, got, "output"), "job.output is empty (expected a folder name)");
    if (!job->output[0])
        snprintf(job->output, sizeof job->output, "runs/%s", job->name);
    if (!job->cache[0] && strlen(job->output) + 7 < sizeof job->cache)
        snprintf(job->cache, sizeof job->cache, "%s/cache", job->output);
    const config_setting_t *seeds = given(t, got, "seeds");
    if (seeds) {
        if (given(t, got, "seed"))
            fail(c, seeds, "job: give either seed or seeds, not both");
        else
            parse_seeds(c, seeds, job);
    }
    /* only_task is read by select_only_task once the tasks are known */
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

/* A key given for a source that does not read it is an error (it would be
 * silently ignored otherwise). */
static void data_key_rules(Ctx *c, const config_setting_t *g, const config_setting_t *const *got, Source src,
                           const char *key)
{
    struct {
        const char *name;
        int allowed;
        const char *why;
    } rules[] = {
        {"path", src != SOURCE_SYNTH, "synthetic faces read no files"},
        {"images", src == SOURCE_AFFECTNET, "only affectnet reads images from a separate folder"},
        {"labels", src == SOURCE_FERPLUS, "only ferplus has vote distributions"},
        {"count", src == SOURCE_SYNTH, "count is the number of synthetic faces"},
        {"synth_seed", src == SOURCE_SYNTH, "synth_seed draws the synthetic faces"},
        {"val_fraction", src != SOURCE_FERPLUS, "ferplus has official train, val and test splits"},
        {"test_fraction", src != SOURCE_FERPLUS && src != SOURCE_AFFECTNET && src != SOURCE_IDX,
         "this source has an official test split"},
    };
    for (int i = 0; i < COUNT(rules); i++)
        if (given(&data_table, got, rules[i].name) && !rules[i].allowed)
            fail(c, at_or(member(g, rules[i].name), g), "%s.%s does not apply to source %s (%s)", key,
                 rules[i].name, source_name(src), rules[i].why);
}

/* The data folders and files a source needs exist. */
static void data_paths(Ctx *c, const config_setting_t *g, const config_setting_t *task, const DataOptions *o,
                       const char *key)
{
    char pkey[300];
    snprintf(pkey, sizeof pkey, "%s.path", key);
    check_source_path(c, at_or(member(g, "path"), task), pkey, o);
    if (o->images[0]) {
        snprintf(pkey, sizeof pkey, "%s.images", key);
        need_folder(c, at_or(member(g, "images"), task), pkey, o->images, "the AffectNet image folder");
    }
}

static void parse_data(Ctx *c, const config_setting_t *g, const config_setting_t *task, TaskSpec *t,
                       const char *key)
{
    DataOptions *o = &t->data;
    const KeyTable *tab = &data_table;
    const config_setting_t *got[KEY_ROWS_MAX] = {0};
    unsigned bad = 0;
    data_options_default(o);
    table_defaults(tab, o);
    if (g && parse_table(c, g, tab, o, got, &bad) && !config_setting_is_group(g))
        return;
    if (given(tab, got, "source") && !valid(tab, got, bad, "source"))
        return; /* an unknown source: its rules cannot be checked */
    if (o->channels == 2)
        fail(c, at_or(member(g, "channels"), g), "%s.channels = 2 (expected 1 grey or 3 colour)", key);
    if (g)
        data_key_rules(c, g, got, o->source, key);
    /* splits: defaults where the source has no official one */
    int has_val = o->source != SOURCE_FERPLUS;
    int has_test = o->source == SOURCE_SYNTH || o->source == SOURCE_UTKFACE || o->source == SOURCE_FOLDER;
    if (!valid(tab, got, bad, "val_fraction"))
        o->val_fraction = has_val ? 0.1f : 0.0f;
    if (!valid(tab, got, bad, "test_fraction"))
        o->test_fraction = has_test ? 0.2f : 0.0f;
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
    if (!(c->flags & JOB_NO_PATH_CHECK) && o->source != SOURCE_SYNTH)
        data_paths(c, g, task, o, key);
}

static void parse_occlusion(Ctx *c, const config_setting_t *g, TaskSpec *t, const char *key)
{
    t->occ = occlusion_default();
    table_defaults(&occlusion_table, &t->occ);
    t->occ.kind = t->target == TARGET_GENDER || t->target == TARGET_AGE ? OCC_MASK : OCC_VR;
    if (g)
        parse_table(c, g, &occlusion_table, &t->occ, NULL, NULL);
    char msg[256];
    if (occlusion_check(&t->occ, msg, sizeof msg))
        fail(c, g, "%s: %s", key, msg);
}

static void parse_task(Ctx *c, const config_setting_t *s, const Job *job, void *entry, int index)
{
    TaskSpec *t = entry;
    const KeyTable *tab = &task_table;
    const config_setting_t *got[KEY_ROWS_MAX] = {0};
    unsigned bad = 0;
    char key[64];
    snprintf(key, sizeof key, "tasks[%d]", index);
    table_defaults(tab, t);
    if (parse_table(c, s, tab, t, got, &bad) && !config_setting_is_group(s))
        return;
    if (!given(tab, got, "target"))
        fail(c, s, "%s: missing key 'target' (one of expression, gender, age, class)", key);
    if (!valid(tab, got, bad, "target"))
        return; /* nothing below makes sense without a target */
    t->attr = target_attr(t->target);
    t->regression = t->target == TARGET_AGE;
    t->classes = t->target == TARGET_EXPRESSION ? FERPLUS_CLASSES : t->target == TARGET_GENDER ? 2
               : t->target == TARGET_AGE      ? 1
                                               : 0;
    if (given(tab, got, "loss") && t->target != TARGET_AGE)
        fail(c, member(s, "loss"), "%s.loss applies to target age only (classification uses cross-entropy)", key);
    if (!given(tab, got, "name"))
        snprintf(t->name, sizeof t->name, "%s", target_name(t->target));
    else
        check_name(c, member(s, "name"), "task", t->name);
    char sub[96];
    snprintf(sub, sizeof sub, "%s.data", key);
    parse_data(c, given(tab, got, "data"), s, t, sub);
    snprintf(sub, sizeof sub, "%s.occlusion", key);
    parse_occlusion(c, given(tab, got, "occlusion"), t, sub);
}

void parse_tasks(Ctx *c, const config_setting_t *s, Job *job)
{
    static const EntryList tasks = {
        "task", "missing 'tasks' (a list of tasks: tasks = ( { target = \"expression\"; ... } );)",
        "{ name = ...; target = ...; data = { ... }; }", "tasks is empty (expected at least one task)",
        sizeof(TaskSpec), offsetof(TaskSpec, name), parse_task};
    job->tasks = parse_entries(c, s, &tasks, job, &job->n_tasks);
}

/* ------------------------------------------------------------- models */

static void parse_model(Ctx *c, const config_setting_t *s, const Job *job, void *entry, int index)
{
    ModelSpec *m = entry;
    const KeyTable *tab = &model_table;
    const config_setting_t *got[KEY_ROWS_MAX] = {0};
    unsigned bad = 0;
    if (parse_table(c, s, tab, m, got, &bad) && !config_setting_is_group(s))
        return;
    const char *archs[KEY_NAMES_MAX];
    int n_archs = row_names(&tab->rows[table_find(tab, "arch")], archs);
    if (!given(tab, got, "arch")) {
        char known[128];
        join_names(archs, n_archs, known, sizeof known);
        fail(c, s, "models[%d]: missing key 'arch' (one of %s)", index, known);
    }
    if (!valid(tab, got, bad, "arch"))
        return;
    NetSpec set = m->net; /* the keys given; the architecture's defaults for the others */
    m->net = netspec_default(set.arch);
    m->net.input = set.input;
    m->net.channels = 0;
    m->net.classes = 0;
    if (given(tab, got, "width"))
        m->net.width = set.width;
    if (given(tab, got, "fc"))
        m->net.fc = set.fc;
    if (given(tab, got, "dropout"))
        m->net.dropout = set.dropout;
    if (given(tab, got, "batchnorm"))
        m->net.batchnorm = set.batchnorm;
    if (given(tab, got, "fc_layers"))
        m->net.fc_layers = set.fc_layers;
    if (given(tab, got, "fc") && set.fc == 0 && set.arch != ARCH_RESNET50)
        fail(c, member(s, "fc"), "models[%d].fc = 0: %s needs fully connected layers of width >= 1 (0 means "
                                 "none, for resnet50 only)", index, archs[set.arch]);
    if (!given(tab, got, "name"))
        snprintf(m->name, sizeof m->name, "%s", archs[set.arch]);
    else
        check_name(c, member(s, "name"), "model", m->name);
    if (m->init[0] && !(c->flags & JOB_NO_PATH_CHECK)) {
        int kind = path_kind(m->init);
        if (kind != 1)
            fail(c, member(s, "init"), "models[%d].init: '%s' %s (expected an HDF5 file of weights, "
                                       "/params/<layer>/<tensor>)", index, m->init,
                 kind == 0 ? "does not exist" : "is not a file");
    }
}

void parse_models(Ctx *c, const config_setting_t *s, Job *job)
{
    static const EntryList models = {
        "model", "missing 'models' (a list of networks: models = ( { arch = \"vgg_f\"; ... } );)",
        "{ name = ...; arch = ...; }", "models is empty (expected at least one model)", sizeof(ModelSpec),
        offsetof(ModelSpec, name), parse_model};
    job->models = parse_entries(c, s, &models, job, &job->n_models);
}

/* ------------------------------------------------------------- methods */

int parse_method(Ctx *c, const config_setting_t *s, Method *out)
{
    const char *names[METHOD_COUNT];
    for (int i = 0; i < METHOD_COUNT; i++)
        names[i] = method_name((Method)i);
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

static int listed(const Method *list, int n, Method m)
{
    for (int i = 0; i < n; i++)
        if (list[i] == m)
            return 1;
    return 0;
}

int job_has_method(const Job *job, Method m) { return listed(job->methods, job->n_methods, m); }

void parse_methods(Ctx *c, const config_setting_t *s, Job *job)
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
    int count = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        Method m;
        if (parse_method(c, e, &m))
            continue;
        if (listed(list, count, m))
            fail(c, e, "methods lists '%s' twice", method_name(m));
        else
            list[count++] = m;
    }
    if (count && !listed(list, count, METHOD_TEACHER)) /* students learn from their teacher: it is trained first */
        job->methods[job->n_methods++] = METHOD_TEACHER;
    for (int i = 0; i < count; i++)
        job->methods[job->n_methods++] = list[i];
}

/* ------------------------------------------------------------- fusions */

/* The students of a fusion; -1 when the list itself is wrong (type or length). */
static int fusion_students(Ctx *c, const config_setting_t *students, const Job *job, FusionSpec *f, int index)
{
    if (!config_setting_is_array(students) && !config_setting_is_list(students)) {
        fail_type(c, students, "an array of method names [ \"kd\", \"triplet\" ]");
        return -1;
    }
    int n = config_setting_length(students);
    if (n < 2 || n >= METHOD_COUNT) {
        fail(c, students, "fusions[%d].students has %d entries (expected 2 to %d student methods)", index, n,
             METHOD_COUNT - 1);
        return -1;
    }
    f->n_students = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(students, (unsigned)i);
        Method m;
        if (parse_method(c, e, &m))
            continue;
        if (m == METHOD_TEACHER)
            fail(c, e, "fusions[%d] fuses students; the teacher sees clean faces and cannot be one", index);
        else if (listed(f->students, f->n_students, m))
            fail(c, e, "fusions[%d].students lists '%s' twice", index, method_name(m));
        else if (!job_has_method(job, m))
            fail(c, e, "fusions[%d] fuses '%s', which is not trained (add it to methods)", index, method_name(m));
        else
            f->students[f->n_students++] = m;
    }
    return 0;
}

static void parse_fusion(Ctx *c, const config_setting_t *s, const Job *job, void *entry, int index)
{
    FusionSpec *f = entry;
    const KeyTable *tab = &fusion_table;
    const config_setting_t *got[KEY_ROWS_MAX] = {0};
    table_defaults(tab, f);
    if (parse_table(c, s, tab, f, got, NULL) && !config_setting_is_group(s))
        return;
    if (given(tab, got, "head_epochs") && f->kind != FUSION_CONCAT)
        fail(c, member(s, "head_epochs"), "fusions[%d].head_epochs applies to kind \"concat\" only (an average "
                                          "has no head to train)", index);
    if (!given(tab, got, "students")) {
        fail(c, s, "fusions[%d]: missing key 'students' (the methods whose students are fused, e.g. [\"kd\", "
                   "\"triplet\"])", index);
        return;
    }
    if (fusion_students(c, given(tab, got, "students"), job, f, index))
        return;
    if (!given(tab, got, "name")) { /* "average-kd-triplet" */
        int w = snprintf(f->name, sizeof f->name, "%s", fusion_names[f->kind]);
        for (int i = 0; i < f->n_students && w > 0 && (size_t)w < sizeof f->name; i++)
            w += snprintf(f->name + w, sizeof f->name - (size_t)w, "-%s", method_name(f->students[i]));
    } else if (!check_name(c, member(s, "name"), "fusion", f->name)) {
        Method m;
        if (method_parse(f->name, &m) == 0)
            fail(c, member(s, "name"), "fusion name '%s' is a method's name (fusion results sit beside the "
                                       "methods' results)", f->name);
    }
}

void parse_fusions(Ctx *c, const config_setting_t *s, Job *job)
{
    static const EntryList fusions = {"fusion", NULL, "{ students = [\"kd\", \"triplet\"]; kind = \"average\"; }",
                                      NULL, sizeof(FusionSpec), offsetof(FusionSpec, name), parse_fusion};
    job->fusions = parse_entries(c, s, &fusions, job, &job->n_fusions);
}
