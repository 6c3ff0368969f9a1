/* test_job.c - job files: SHA-256 against the FIPS 180-4 examples, the
 * example jobs in jobs/ load (and quickstart's values are what the file
 * says), defaults, overrides in order, --set, the broken files in
 * tests/jobs_bad/ (each names the message it must produce on its first
 * lines: "# expect: <fragment>", and optional "# set: <key=value>" lines
 * passed as --set), no crash on mangled input, the key tables (well formed;
 * their defaults agree with train_config_default, sgd_default,
 * data_options_default and occlusion_default).
 *
 * Built a second time as test_job_extra_key, with JOB_TEST_EXTRA_KEY: the
 * reader's own sources compiled with one more train row (test_extra, landing
 * in TrainSettings.spare), which must then be validated with its range,
 * defaulted, set by --set and by overrides, shown by --check and listed in
 * the key reference, with no other edit. Without the define the key is
 * unknown everywhere.
 *
 * Usage: test_job <source folder>
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradcheck.h"
#include "trainer/job.h"
#include "trainer/job_internal.h" /* the key tables */

/* libconfig 1.5's lexer loses its string buffer when a syntax error follows
 * an opening quote (for example `arch"= "vgg_f"`): a leak inside libconfig,
 * not in occkd. The sanitizer build is told to ignore that one function. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:strbuf_append\n"; }

static char g_src[1024];
static char g_tmpdir[256];

/* --------------------------------------------------------------- helpers */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return buf;
}

/* Writes text to <tmpdir>/<name> and returns the path (static buffer). */
static const char *write_tmp(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

/* What job_print writes for j (to be freed), or NULL. */
static char *summary_of(const Job *j)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    job_print(j, f);
    fclose(f);
    return buf;
}

static int find_task(const Job *j, const char *name)
{
    for (int i = 0; i < j->n_tasks; i++)
        if (strcmp(j->tasks[i].name, name) == 0)
            return i;
    return -1;
}

/* ---------------------------------------------------------------- sha256 */

static void test_sha256(void)
{
    char hex[65];
    sha256_hex("abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0, "abc: %s", hex);
    sha256_hex("", 0, hex);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0, "empty: %s", hex);
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m448, strlen(m448), hex);
    CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0, "448 bits: %s", hex);
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                       "mnopqrstnopqrstu";
    sha256_hex(m896, strlen(m896), hex);
    CHECK(strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1") == 0, "896 bits: %s", hex);
    /* one million 'a', fed in uneven pieces through the streaming interface */
    static char a[1000];
    memset(a, 'a', sizeof a);
    Sha256 s;
    sha256_init(&s);
    size_t done = 0, piece = 1;
    while (done < 1000000) {
        size_t n = piece < 1000000 - done ? piece : 1000000 - done;
        n = n < sizeof a ? n : sizeof a;
        sha256_update(&s, a, n);
        done += n;
        piece = piece * 7 % 997 + 1;
    }
    sha256_final_hex(&s, hex);
    CHECK(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0, "million a: %s", hex);
    /* the pieces do not change the digest: 55, 56 and 64 bytes around the padding boundary */
    for (size_t n = 55; n <= 65; n++) {
        char one[65], two[65];
        sha256_hex(a, n, one);
        sha256_init(&s);
        sha256_update(&s, a, n / 3);
        sha256_update(&s, a, n - n / 3);
        sha256_final_hex(&s, two);
        CHECK(strcmp(one, two) == 0, "%zu bytes in two pieces", n);
    }
}

/* ---------------------------------------------------------- example jobs */

static void test_examples(void)
{
    static const char *const names[] = {"quickstart", "fashion-mnist", "ferplus", "affectnet", "utkface",
                                        "paper-grid"};
    for (int i = 0; i < 6; i++) {
        char path[1200], err[4096];
        snprintf(path, sizeof path, "%s/jobs/%s.cfg", g_src, names[i]);
        Job j;
        int rc = job_load_ex(path, NULL, 0, JOB_NO_PATH_CHECK, &j, err, sizeof err);
        CHECK(rc == 0, "%s: %s", names[i], err);
        if (rc == 0) {
            CHECK(strcmp(j.name, names[i]) == 0, "%s: name %s", names[i], j.name);
            CHECK(j.n_methods == METHOD_COUNT, "%s: %d methods", names[i], j.n_methods);
            CHECK(j.n_fusions >= 1, "%s: fusions", names[i]);
        }
        job_free(&j);
        /* with the path check, a data set that is not on this machine is reported */
        rc = job_load(path, NULL, 0, &j, err, sizeof err);
        int synth = i == 0;
        int here = i == 1 && access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) == 0;
        int absent = i >= 2 && access("/data", F_OK) != 0;
        if (synth || here)
            CHECK(rc == 0, "%s with paths checked: %s", names[i], err);
        if (absent)
            CHECK(rc != 0 && strstr(err, "does not exist"), "%s: missing data not reported: %s", names[i], err);
        job_free(&j);
    }
}

static void test_quickstart(void)
{
    char path[1200], err[4096];
    snprintf(path, sizeof path, "%s/jobs/quickstart.cfg", g_src);
    Job j;
    if (job_load(path, NULL, 0, &j, err, sizeof err)) {
        CHECK(0, "quickstart: %s", err);
        return;
    }
    CHECK(strcmp(j.output, "runs/quickstart") == 0 && strcmp(j.cache, "runs/quickstart/cache") == 0, "%s %s",
          j.output, j.cache);
    CHECK(j.n_seeds == 1 && j.seeds[0] == 1, "seeds");
    CHECK(j.n_tasks == 3, "tasks %d", j.n_tasks);
    int e = find_task(&j, "expression"), g = find_task(&j, "gender"), a = find_task(&j, "age");
    CHECK(e >= 0 && g >= 0 && a >= 0, "task names");
    if (e >= 0 && g >= 0 && a >= 0) {
        CHECK(j.tasks[e].target == TARGET_EXPRESSION && j.tasks[e].classes == 8 && !j.tasks[e].regression &&
                  j.tasks[e].attr == ATTR_EXPRESSION, "expression task");
        CHECK(j.tasks[g].target == TARGET_GENDER && j.tasks[g].classes == 2, "gender task");
        CHECK(j.tasks[a].target == TARGET_AGE && j.tasks[a].regression && j.tasks[a].classes == 1 && !j.tasks[a].l2,
              "age task");
        CHECK(j.tasks[e].occ.kind == OCC_VR && j.tasks[g].occ.kind == OCC_MASK && j.tasks[a].occ.kind == OCC_MASK,
              "occlusions");
        for (int t = 0; t < 3; t++) {
            const DataOptions *d = &j.tasks[t].data;
            CHECK(d->source == SOURCE_SYNTH && d->synth_count == 2000 && d->side == 64 && d->channels == 1,
                  "task %d data", t);
            CHECK(j.tasks[t].occ.fraction == 0.5f && j.tasks[t].occ.fill == OCC_FILL_BLACK, "task %d occlusion", t);
        }
    }
    CHECK(j.n_models == 3, "models %d", j.n_models);
    if (j.n_models == 3) {
        CHECK(j.models[0].net.arch == ARCH_VGG_F && j.models[1].net.arch == ARCH_VGG_FACE &&
                  j.models[2].net.arch == ARCH_RESNET50, "archs");
        CHECK(j.models[0].net.width == 0.125f && j.models[0].net.fc == 128 && j.models[0].net.dropout == 0.3f,
              "vgg_f knobs");
        CHECK(j.models[2].net.fc == 0 && j.models[0].net.input == 0, "resnet fc, input follows the task");
    }
    for (int i = 0; i < j.n_methods && i < METHOD_COUNT; i++)
        CHECK(j.methods[i] == (Method)i, "method %d", i);
    CHECK(j.n_fusions == 1 && j.fusions[0].kind == FUSION_AVERAGE && j.fusions[0].n_students == 2 &&
              j.fusions[0].students[0] == METHOD_KD && j.fusions[0].students[1] == METHOD_TRIPLET,
          "fusion");
    CHECK(j.parallel.groups == 2 && j.parallel.threads == 1 && j.parallel.overlap == 1, "parallel");
    CHECK(j.checkpoint_minutes == 2.0, "checkpoint minutes %g", j.checkpoint_minutes);
    if (e >= 0 && a >= 0 && j.n_models == 3) {
        TrainSettings t = job_settings(&j, e, 0, METHOD_TEACHER), k = job_settings(&j, a, 2, METHOD_KD);
        CHECK(t.epochs == 16 && t.sgd.lr == 0.02f && t.batch == 64 && t.sgd.schedule == SCHED_COSINE, "teacher");
        CHECK(t.warmup_epochs == 1.0f && t.aug.pad == 4 && t.aug.flip == 1, "teacher warm-up and augmentation");
        CHECK(k.epochs == 4 && k.sgd.lr == 0.01f && k.batch == 64, "kd student");
        /* every cell of the quick start builds at its size */
        for (int ti = 0; ti < j.n_tasks; ti++)
            for (int m = 0; m < j.n_models; m++) {
                NetSpec spec = job_netspec(&j, ti, m);
                CHECK(spec.input == 64 && spec.channels == 1 && spec.classes == j.tasks[ti].classes, "netspec");
                char nerr[256];
                Net *net = net_create(&spec, 2, 0, nerr, sizeof nerr);
                CHECK(net != NULL, "%s/%s: %s", j.tasks[ti].name, j.models[m].name, nerr);
                net_free(net);
            }
    }
    /* the identity is the file's text when there is no --set */
    size_t len = 0;
    char *text = read_all(path, &len);
    char hex[65];
    if (text) {
        sha256_hex(text, len, hex);
        CHECK(strcmp(hex, j.sha256) == 0, "sha256 of the text");
        CHECK(strcmp(text, j.text) == 0, "text kept");
    }
    free(text);
    /* the summary names every cell */
    char *buf = summary_of(&j);
    if (buf) {
        CHECK(strstr(buf, "cells: 45 trained (3 tasks x 3 models x 5 methods) + 9 fusions"), "%s", buf);
        CHECK(strstr(buf, "age/resnet50/kd+triplet"), "cell listed");
        CHECK(strstr(buf, "fusion kd-triplet: average of kd triplet"), "fusion listed");
        free(buf);
    }
    job_free(&j);
}

/* ------------------------------------------------- defaults and overrides */

static void test_defaults(void)
{
    const char *path = write_tmp("my-job.cfg", "tasks = ( { target = \"expression\"; }, { target = \"age\"; } );\n"
                                                "models = ( { arch = \"vgg_f\"; }, { arch = \"resnet50\"; } );\n");
    char err[4096];
    Job j;
    if (!path || job_load(path, NULL, 0, &j, err, sizeof err)) {
        CHECK(0, "minimal job: %s", path ? err : "cannot write");
        return;
    }
    CHECK(strcmp(j.name, "my-job") == 0 && strcmp(j.output, "runs/my-job") == 0, "name %s output %s", j.name,
          j.output);
    CHECK(j.n_methods == METHOD_COUNT, "default methods");
    CHECK(strcmp(j.tasks[0].name, "expression") == 0 && strcmp(j.models[1].name, "resnet50") == 0, "default names");
    CHECK(j.tasks[0].occ.kind == OCC_VR && j.tasks[1].occ.kind == OCC_MASK, "default occlusion follows the target");
    const DataOptions *d = &j.tasks[0].data;
    CHECK(d->source == SOURCE_SYNTH && d->side == 64 && d->channels == 1 && d->val_fraction == 0.1f &&
              d->test_fraction == 0.2f, "data defaults");
    NetSpec vf = netspec_default(ARCH_VGG_F);
    CHECK(j.models[0].net.fc == vf.fc && j.models[0].net.width == 1.0f && j.models[0].net.dropout == vf.dropout,
          "model defaults");
    TrainSettings s = job_settings(&j, 0, 0, METHOD_KD);
    CHECK(s.epochs == 10 && s.batch == 64 && s.accum == 1 && s.sgd.lr == 0.01f && s.sgd.momentum == 0.9f &&
              s.sgd.weight_decay == 5e-4f && s.sgd.schedule == SCHED_COSINE && s.aug.pad == 4 && s.aug.flip == 1 &&
              s.eval_batch == 256, "train defaults");
    CHECK(s.step_epochs > 3.33f && s.step_epochs < 3.34f, "step_epochs resolved to epochs/3: %g", s.step_epochs);
    const DistillSettings *ds = &j.distill;
    CHECK(ds->T == 3.0f && ds->lambda == 0.5f && ds->beta == 1.0f && ds->margin == 0.2f && ds->age_bin == 10.0f &&
              ds->mining == MINE_HARDEST && ds->positive == POSITIVE_SAME, "distill defaults");
    CHECK(j.parallel.groups == 1 && j.parallel.bucket_bytes == 25u << 20 && j.parallel.overlap == 1 &&
              j.parallel.watchdog_seconds == 600.0, "parallel defaults");
    job_free(&j);

    /* students without a teacher: the teacher is added first */
    path = write_tmp("implied.cfg", "tasks = ( { target = \"gender\"; } );\nmodels = ( { arch = \"vgg_f\"; } );\n"
                                    "methods = [ \"kd\", \"triplet\" ];\n");
    if (path && job_load(path, NULL, 0, &j, err, sizeof err) == 0) {
        CHECK(j.n_methods == 3 && j.methods[0] == METHOD_TEACHER && j.methods[1] == METHOD_KD &&
                  j.methods[2] == METHOD_TRIPLET, "teacher implied");
        job_free(&j);
    } else
        CHECK(0, "implied teacher: %s", err);
}

static const char override_job[] =
    "tasks = ( { target = \"expression\"; }, { target = \"age\"; } );\n"
    "models = ( { arch = \"vgg_f\"; }, { name = \"deep\"; arch = \"resnet50\"; } );\n"
    "train = { epochs = 8; lr = 0.1; };\n"
    "overrides = (\n"
    "  { model = \"*\"; epochs = 3; },\n"
    "  { task = \"age\"; epochs = 5; lr = 0.5; augment = { flip = false; }; },\n"
    "  { task = \"age\"; method = \"kd\"; epochs = 7; },\n"
    "  { task = \"age\"; model = \"deep\"; epochs = 9; batch = 32; }\n"
    ");\n";

static void test_overrides(void)
{
    const char *path = write_tmp("overrides.cfg", override_job);
    char err[4096];
    Job j;
    if (!path || job_load(path, NULL, 0, &j, err, sizeof err)) {
        CHECK(0, "override job: %s", err);
        return;
    }
    TrainSettings s = job_settings(&j, 0, 0, METHOD_TEACHER);
    CHECK(s.epochs == 3 && s.sgd.lr == 0.1f && s.aug.flip == 1, "expression/vgg_f/teacher: %d %g", s.epochs,
          (double)s.sgd.lr);
    s = job_settings(&j, 1, 0, METHOD_TEACHER);
    CHECK(s.epochs == 5 && s.sgd.lr == 0.5f && s.aug.flip == 0 && s.batch == 64, "age/vgg_f/teacher: %d", s.epochs);
    s = job_settings(&j, 1, 0, METHOD_KD);
    CHECK(s.epochs == 7 && s.sgd.lr == 0.5f, "age/vgg_f/kd: %d", s.epochs);
    s = job_settings(&j, 1, 1, METHOD_KD);
    CHECK(s.epochs == 9 && s.batch == 32 && s.sgd.lr == 0.5f, "age/deep/kd: later overrides win: %d", s.epochs);
    s = job_settings(&j, 0, 1, METHOD_KD);
    CHECK(s.epochs == 3 && s.batch == 64, "expression/deep/kd: %d", s.epochs);
    CHECK(j.n_overrides == 4 && j.overrides[1].set == (job_override_bit("epochs") | job_override_bit("lr") |
                                                             job_override_bit("augment.flip")), "override bits %x",
          j.n_overrides == 4 ? j.overrides[1].set : 0u);
    char sha_plain[65];
    memcpy(sha_plain, j.sha256, sizeof sha_plain);
    job_free(&j);

    /* --set changes the base settings (overrides still win), and the identity */
    const char *sets[] = {"train.epochs=2", "train.lr = 0.05", "parallel.groups=3", "tasks.0.data.count=500",
                          "tasks.age.loss=l2", "job.output=runs/elsewhere", "methods=[\"teacher\", \"kd\"]",
                          "models.deep.width=0.5", "overrides.0.epochs=4", "checkpoint.every_steps=100"};
    int n_sets = (int)(sizeof sets / sizeof sets[0]);
    if (job_load(path, sets, n_sets, &j, err, sizeof err)) {
        CHECK(0, "--set: %s", err);
        return;
    }
    CHECK(j.train.epochs == 2 && j.train.sgd.lr == 0.05f, "--set train");
    CHECK(j.parallel.groups == 3 && j.tasks[0].data.synth_count == 500 && j.tasks[1].l2 == 1, "--set values");
    CHECK(strcmp(j.output, "runs/elsewhere") == 0, "--set bare string: %s", j.output);
    CHECK(j.n_methods == 2 && j.methods[1] == METHOD_KD, "--set methods");
    CHECK(j.models[1].net.width == 0.5f && j.checkpoint_steps == 100, "--set by entry name, new group");
    s = job_settings(&j, 0, 0, METHOD_TEACHER);
    CHECK(s.epochs == 4 && s.sgd.lr == 0.05f, "--set into an override: %d", s.epochs);
    CHECK(strcmp(j.sha256, sha_plain) != 0, "--set changes the identity");
    CHECK(j.sets && strstr(j.sets, "train.epochs=2\ntrain.lr = 0.05"), "sets kept: %s", j.sets ? j.sets : "");
    char sha_set[65];
    memcpy(sha_set, j.sha256, sizeof sha_set);
    job_free(&j);
    if (job_load(path, sets, n_sets, &j, err, sizeof err) == 0) {
        CHECK(strcmp(j.sha256, sha_set) == 0, "same --set, same identity");
        job_free(&j);
    }
    if (job_load(path, sets, 1, &j, err, sizeof err) == 0) {
        CHECK(strcmp(j.sha256, sha_set) != 0 && strcmp(j.sha256, sha_plain) != 0, "other --set, other identity");
        job_free(&j);
    }
}

/* --------------------------------------------------------- broken files */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Loads one broken file: the first lines give the expected fragments and the
 * --set arguments. Returns 1 if it was checked. */
static int check_bad_file(const char *dir, const char *name)
{
    char path[1600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = read_all(path, NULL);
    if (!text) {
        CHECK(0, "cannot read %s", path);
        return 0;
    }
    char *expect[8], *sets[8];
    int n_expect = 0, n_sets = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# expect: ", 10) == 0 && n_expect < 8)
            expect[n_expect++] = line + 10;
        else if (strncmp(line, "# set: ", 7) == 0 && n_sets < 8)
            sets[n_sets++] = line + 7;
        else
            break;
    }
    CHECK(n_expect > 0, "%s has no '# expect:' line", name);
    char err[8192];
    Job j;
    int rc = job_load(path, (const char *const *)sets, n_sets, &j, err, sizeof err);
    CHECK(rc != 0, "%s was accepted", name);
    for (int i = 0; i < n_expect && rc; i++)
        CHECK(strstr(err, expect[i]) != NULL, "%s: expected '%s' in:\n%s", name, expect[i], err);
    CHECK(j.tasks == NULL && j.text == NULL, "%s: nothing left allocated", name);
    job_free(&j);
    free(text);
    return 1;
}

static void test_bad_files(void)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/tests/jobs_bad", g_src);
    DIR *d = opendir(dir);
    if (!d) {
        CHECK(0, "cannot open %s", dir);
        return;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".cfg") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    int checked = 0;
    for (int i = 0; i < n; i++) {
        checked += check_bad_file(dir, names[i]);
        free(names[i]);
    }
    CHECK(checked >= 20, "only %d broken job files", checked);
    printf("test_job: %d broken job files rejected with their messages\n", checked);

    char err[512];
    Job j;
    CHECK(job_load("/nonexistent/occkd/job.cfg", NULL, 0, &j, err, sizeof err) != 0 && strstr(err, "cannot open"),
          "missing file: %s", err);
    CHECK(job_load(dir, NULL, 0, &j, err, sizeof err) != 0 && strstr(err, "is a folder"), "a folder: %s", err);
    job_free(&j);
}

/* ------------------------------------------------------------ robustness */

/* Mangled versions of a valid file (cut short, bytes replaced) load or fail
 * with a message; never crash (the sanitizer build watches). */
static void test_mangled(void)
{
    size_t len = 0;
    const char *path = write_tmp("base.cfg", override_job);
    char *text = path ? read_all(path, &len) : NULL;
    if (!text) {
        CHECK(0, "cannot write the base file");
        return;
    }
    static const char junk[] = "{}()[];=\",.x0-";
    int failed = 0, total = 0;
    char *m = malloc(len + 1);
    for (size_t cut = 0; cut < len; cut += 13) {
        memcpy(m, text, len + 1);
        m[cut] = '\0';
        const char *p = write_tmp("cut.cfg", m);
        char err[2048];
        Job j;
        int rc = p ? job_load(p, NULL, 0, &j, err, sizeof err) : -1;
        failed += rc != 0;
        total++;
        if (rc)
            CHECK(err[0] != '\0', "cut at %zu: failure without a message", cut);
        job_free(&j);
        memcpy(m, text, len + 1);
        m[cut] = junk[cut % (sizeof junk - 1)];
        p = write_tmp("junk.cfg", m);
        rc = p ? job_load(p, NULL, 0, &j, err, sizeof err) : -1;
        if (rc)
            CHECK(err[0] != '\0', "junk at %zu: failure without a message", cut);
        job_free(&j);
    }
    CHECK(failed > total / 2, "most cut files should fail (%d of %d)", failed, total);
    /* --set arguments of every shape */
    const char *odd[] = {"=", "a=", "=1", ".=1", "a..b=1", "tasks.x.y=1", "tasks.-1=2", "train.epochs.x=1",
                         "models.0=3", "methods.0=1", "job.seeds.0=1", "tasks=()", "train.0=1",
                         "9abc=1", "train=[]", "train.epochs=\"3\"", "tasks.0.data=[1]", "overrides.0.x.y=1"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        char err[2048];
        Job j;
        const char *one[1] = {odd[i]};
        int rc = job_load(path, one, 1, &j, err, sizeof err);
        CHECK(rc != 0 && strstr(err, "--set"), "--set '%s': %s", odd[i], rc ? err : "accepted");
        job_free(&j);
    }
    free(m);
    free(text);
}

/* ------------------------------------------------------------ key tables */

static size_t kind_size(KeyKind k)
{
    switch (k) {
    case K_INT:
    case K_BOOL:
    case K_ENUM: return sizeof(int);
    case K_I64: return sizeof(int64_t);
    case K_U64: return sizeof(uint64_t);
    case K_FLOAT: return sizeof(float);
    case K_DOUBLE: return sizeof(double);
    default: return 0;
    }
}

static int within(Range r, double v)
{
    return (r.lo_open ? v > r.lo : v >= r.lo) && (r.hi_open ? v < r.hi : v <= r.hi);
}

/* One row: the bytes it lands in fit its kind, its names, default and docs. */
static void check_row(const KeyTable *t, const KeyRow *r, int documented)
{
    if (r->kind == K_STRING)
        CHECK(r->size > 1, "%s.%s: string capacity %zu", t->name, r->name, r->size);
    else if (kind_size(r->kind))
        CHECK(r->size == kind_size(r->kind), "%s.%s: %zu bytes for its kind", t->name, r->name, r->size);
    if (r->kind == K_ENUM)
        CHECK(r->n_names >= 1 && r->n_names <= KEY_NAMES_MAX && (!r->names != !r->name_of), "%s.%s: names",
              t->name, r->name);
    if (kind_size(r->kind) && r->kind != K_BOOL && r->kind != K_ENUM && !(r->flags & KEY_NO_DEFAULT) && !r->def_doc)
        CHECK(within(r->r, r->def), "%s.%s: default %g out of its range", t->name, r->name, r->def);
    if (r->kind == K_ENUM && !(r->flags & KEY_NO_DEFAULT))
        CHECK(r->def >= 0 && r->def < r->n_names, "%s.%s: default %g", t->name, r->name, r->def);
    if (documented)
        CHECK(r->doc && r->doc[0] && !strchr(r->doc, '\n') && !strchr(r->doc, '|'), "%s.%s: its line for the docs",
              t->name, r->name);
    if (r->kind == K_GROUP) {
        char sub[64];
        snprintf(sub, sizeof sub, "%s.", r->name);
        int n = 0;
        for (int i = 0; i < t->n; i++)
            n += strncmp(t->rows[i].name, sub, strlen(sub)) == 0;
        CHECK(n > 0, "%s.%s: a group without rows", t->name, r->name);
    }
    if (r->flags & KEY_OVERRIDE)
        CHECK(t == &train_table, "%s.%s: only train keys can be overridden", t->name, r->name);
}

static void test_tables(void)
{
    for (int k = -1; k < n_doc_tables; k++) {
        const KeyTable *t = k < 0 ? &root_table : doc_tables[k];
        CHECK(t->n >= 1 && t->n <= KEY_ROWS_MAX, "%s: %d rows", t->name, t->n);
        for (int i = 0; i < t->n; i++) {
            check_row(t, &t->rows[i], k >= 0);
            CHECK(table_find(t, t->rows[i].name) == i, "%s.%s: named twice", t->name, t->rows[i].name);
        }
    }
    CHECK(job_override_bit("epochs") && job_override_bit("augment.flip") && !job_override_bit("augment") &&
              !job_override_bit("task") && !job_override_bit("no_such_key"), "override bits");
}

/* The library's own defaults (for programs without a job file) say what the
 * job file's do; the schedule is the one difference: sgd_default and
 * train_config_default keep a constant rate, a job file's default is cosine. */
static void test_defaults_agree(void)
{
    TrainSettings s = job_train_defaults();
    TrainConfig c = train_config_default();
    SgdConfig g = sgd_default();
    CHECK(c.epochs == s.epochs && c.global_batch == s.batch && c.accum == s.accum && c.eval_batch == s.eval_batch,
          "train_config_default: epochs %d batch %d accum %d eval_batch %d", c.epochs, c.global_batch, c.accum,
          c.eval_batch);
    const SgdConfig *sgd[2] = {&c.sgd, &g};
    for (int i = 0; i < 2; i++)
        CHECK(sgd[i]->lr == s.sgd.lr && sgd[i]->momentum == s.sgd.momentum && sgd[i]->nesterov == s.sgd.nesterov &&
                  sgd[i]->weight_decay == s.sgd.weight_decay && sgd[i]->decoupled == s.sgd.decoupled &&
                  sgd[i]->gamma == s.sgd.gamma && sgd[i]->min_lr == s.sgd.min_lr,
              "%s: optimiser defaults", i ? "sgd_default" : "train_config_default");
    CHECK(s.sgd.schedule == SCHED_COSINE && c.sgd.schedule == SCHED_CONSTANT && g.schedule == SCHED_CONSTANT,
          "schedules");
    DistillSettings d = job_distill_defaults();
    CHECK(c.T == d.T && c.lambda == d.lambda && c.beta == d.beta && c.margin == d.margin && c.mining == d.mining &&
              c.positive == d.positive && c.age_bin == d.age_bin, "train_config_default: distillation defaults");
    Job j;
    memset(&j, 0, sizeof j);
    table_defaults(&log_table, &j);
    CHECK(c.log_every == j.log_every, "log_every");
    DataOptions lib, tab;
    data_options_default(&lib);
    tab = lib;
    table_defaults(&data_table, &tab);
    CHECK(memcmp(&lib, &tab, sizeof lib) == 0, "data_options_default and the data rows differ");
    Occlusion ol = occlusion_default(), ot = ol;
    table_defaults(&occlusion_table, &ot);
    CHECK(ol.fraction == ot.fraction && ol.fill == ot.fill && ol.shape == ot.shape, "occlusion defaults");
}

/* The key reference's region of group `name` (static copy, "" when none). */
static const char *reference_of(const char *name)
{
    static char region[16384];
    char *buf = NULL, begin[64], end[64];
    size_t len = 0;
    region[0] = '\0';
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return region;
    job_keys_markdown(f);
    fclose(f);
    snprintf(begin, sizeof begin, "<!-- keys %s begin -->", name);
    snprintf(end, sizeof end, "<!-- keys %s end -->", name);
    const char *a = strstr(buf, begin), *b = a ? strstr(a, end) : NULL;
    if (a && b)
        snprintf(region, sizeof region, "%.*s", (int)(b - a), a);
    free(buf);
    return region;
}

static const char extra_base[] = "tasks = ( { target = \"gender\"; } );\nmodels = ( { arch = \"vgg_f\"; } );\n"
                                 "methods = [ \"teacher\", \"kd\" ];\n";

/* A job of extra_base and `rest` is refused with `expect` among its messages. */
static void check_refused(const char *rest, const char *expect)
{
    char text[1024], err[4096] = "";
    Job j;
    snprintf(text, sizeof text, "%s%s", extra_base, rest);
    const char *path = write_tmp("extra.cfg", text);
    CHECK(path && job_load(path, NULL, 0, &j, err, sizeof err) != 0 && strstr(err, expect), "expected '%s' in: %s",
          expect, err);
    job_free(&j);
}

/* Integers beyond 32 bits: libconfig 1.5 keeps the low 32 bits of a literal
 * without the L suffix; the reader reads the literal again, so 64-bit keys
 * get the value written (in the file and through --set, in a list and in
 * an array) and 32-bit keys refuse it, shown as written. */
static void test_wide_integers(void)
{
    char text[1024], err[4096] = "";
    Job j;
    snprintf(text, sizeof text, "%sjob = { seeds = [1, 4294967297]; };\n"
             "checkpoint = { every_steps = 6000000000; };\n", extra_base);
    const char *path = write_tmp("wide.cfg", text);
    int rc = path ? job_load(path, NULL, 0, &j, err, sizeof err) : -1;
    CHECK(rc == 0, "64-bit values in the file: %s", err);
    if (rc == 0)
        CHECK(j.n_seeds == 2 && j.seeds[1] == 4294967297ull && j.checkpoint_steps == 6000000000ll,
              "seeds %llu %llu, every_steps %lld (expected 1 4294967297, 6000000000)", (unsigned long long)j.seeds[0],
              (unsigned long long)j.seeds[1], (long long)j.checkpoint_steps);
    job_free(&j);
    const char *sets[] = {"job.seeds.1=8589934593", "checkpoint.every_steps=7000000000"};
    rc = path ? job_load(path, sets, 2, &j, err, sizeof err) : -1;
    CHECK(rc == 0, "64-bit values from --set: %s", err);
    if (rc == 0)
        CHECK(j.seeds[1] == 8589934593ull && j.checkpoint_steps == 7000000000ll, "--set: seed %llu every_steps %lld",
              (unsigned long long)j.seeds[1], (long long)j.checkpoint_steps);
    job_free(&j);
    const char *array[] = {"job.seeds=[2, 4294967298, 0x100000003]"};
    rc = path ? job_load(path, array, 1, &j, err, sizeof err) : -1;
    CHECK(rc == 0 && j.n_seeds == 3 && j.seeds[0] == 2 && j.seeds[1] == 4294967298ull && j.seeds[2] == 4294967299ull,
          "--set of an array with 64-bit values: %s", rc ? err : "other values");
    job_free(&j);
    /* refused where 32 bits are the limit, with the value as written */
    check_refused("train = { epochs = 4294967297; };\n", "extra.cfg:4: train.epochs = 4294967297 is too large");
    check_refused("train = { batch = 0x100000040; };\n", "train.batch = 4294967360 is too large");
    check_refused("train = { lr = 0.1; accum = 2; epochs = 1; }; job = { name = 4294967297; };\n",
                  "job.name: expected a string, got an integer 4294967297");
    check_refused("job = { seed = 9223372036854775808L; };\n", "job.seed = 9223372036854775808L does not fit");
    /* more wide literals than are remembered: refused, not read wrapped */
    char many[700] = "train = { epochs = 1; };\nseeds_of_old = [";
    for (int i = 0; i <= WIDE_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s%lld", i ? ", " : "", 4294967296ll + i);
    snprintf(many + strlen(many), sizeof many - strlen(many), "];\n");
    char want[64];
    snprintf(want, sizeof want, "%d integers need more than 32 bits", WIDE_MAX + 1);
    check_refused(many, want);
}

#ifdef JOB_TEST_EXTRA_KEY
/* The line of buf that holds `what` (static copy, "" when none). */
static const char *line_with(const char *buf, const char *what)
{
    static char line[1024];
    const char *p = strstr(buf, what);
    line[0] = '\0';
    if (p) {
        while (p > buf && p[-1] != '\n')
            p--;
        snprintf(line, sizeof line, "%.*s", (int)strcspn(p, "\n"), p);
    }
    return line;
}

static void test_extra_key(void)
{
    char text[1024], err[4096];
    Job j;
    /* validation: the row's range, at its line; the nearest key */
    check_refused("train = {\n  test_extra = 9;\n};\n",
                  "extra.cfg:5: train.test_extra = 9 is out of range (expected in [0, 7])");
    check_refused("train = { test_extr = 1; };\n", "did you mean 'test_extra'?");
    /* default, --set and an override */
    snprintf(text, sizeof text, "%soverrides = ( { method = \"kd\"; test_extra = 6; } );\n", extra_base);
    const char *path = write_tmp("extra.cfg", text);
    if (!path || job_load(path, NULL, 0, &j, err, sizeof err)) {
        CHECK(0, "extra key job: %s", err);
        return;
    }
    CHECK(j.train.spare == 3 && job_settings(&j, 0, 0, METHOD_TEACHER).spare == 3, "default %d", j.train.spare);
    CHECK(job_settings(&j, 0, 0, METHOD_KD).spare == 6, "override");
    CHECK(job_override_bit("test_extra") && j.overrides[0].set == job_override_bit("test_extra"), "override bit");
    job_free(&j);
    const char *sets[] = {"train.test_extra=5"};
    if (job_load(path, sets, 1, &j, err, sizeof err)) {
        CHECK(0, "--set train.test_extra: %s", err);
        return;
    }
    CHECK(job_settings(&j, 0, 0, METHOD_TEACHER).spare == 5 && job_settings(&j, 0, 0, METHOD_KD).spare == 6,
          "--set");
    /* --check */
    char *buf = summary_of(&j);
    if (buf) {
        CHECK(strstr(line_with(buf, "gender/vgg_f/teacher"), " flip test_extra 5"), "--check: %s", buf);
        CHECK(strstr(line_with(buf, "gender/vgg_f/kd "), " flip test_extra 6"), "--check: %s", buf);
        free(buf);
    }
    job_free(&j);
    /* the key reference */
    CHECK(strstr(reference_of("train"), "| `test_extra` | int | [0, 7] | 3 | a key of the test build only |\n"),
          "reference: %s", reference_of("train"));
}
#else
static void test_extra_key(void)
{
    check_refused("train = { test_extra = 3; };\n", "unknown key 'test_extra' in train");
    CHECK(!job_override_bit("test_extra") && reference_of("train")[0] && !strstr(reference_of("train"), "test_extra"),
          "the key is nowhere without its row");
}
#endif

int main(int argc, char **argv)
{
    static void (*const tests[])(void) = {test_sha256,    test_examples,  test_quickstart, test_defaults,
                                          test_overrides, test_bad_files, test_mangled,    test_tables,
                                          test_defaults_agree, test_wide_integers, test_extra_key};
    static const char *const tmp_names[] = {"my-job.cfg", "implied.cfg", "overrides.cfg", "base.cfg", "cut.cfg",
                                            "junk.cfg",   "extra.cfg",   "wide.cfg"};
    snprintf(g_src, sizeof g_src, "%s", argc > 1 ? argv[1] : "..");
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/test_job.XXXXXX");
    if (!mkdtemp(g_tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        tests[i]();
    for (size_t i = 0; i < sizeof tmp_names / sizeof tmp_names[0]; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", g_tmpdir, tmp_names[i]);
        unlink(p);
    }
    rmdir(g_tmpdir);
    return test_finish("test_job");
}
