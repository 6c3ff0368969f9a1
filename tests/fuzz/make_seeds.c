/* make_seeds.c - writes the seed corpus of every fuzz target: a few small
 * valid inputs each, in the layout the target expects (see each
 * fuzz_<target>.c). Run by hand when a target's layout changes:
 *     build/tests/fuzz_make_seeds tests/fuzz/corpus
 * The text inputs come out the same each time; the HDF5 files differ in
 * the times HDF5 records.
 */
#include <stb/stb_image_write.h>
#include <sys/stat.h>
#include <zlib.h>

#include "checkpoints/checkpoints.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_net.h"

static const char *out_root;

static void seed_path(char *buf, size_t len, const char *target, const char *name)
{
    snprintf(buf, len, "%s/%s", out_root, target);
    mkdir(buf, 0777);
    snprintf(buf, len, "%s/%s/%s", out_root, target, name);
}

/* parts joined by NUL bytes */
static void seed_parts(const char *target, const char *name, const char *const *parts, int n)
{
    char p[1024];
    seed_path(p, sizeof p, target, name);
    FILE *f = fopen(p, "wb");
    for (int i = 0; f && i < n; i++) {
        if (i)
            fputc('\0', f);
        fputs(parts[i], f);
    }
    if (!f || fclose(f)) {
        perror(p);
        exit(1);
    }
}

static void seed_bytes(const char *target, const char *name, const void *data, size_t n)
{
    char p[1024];
    seed_path(p, sizeof p, target, name);
    fuzz_write(p, data, n);
}

/* ------------------------------------------------------------------ jobs */

static void job_seeds(void)
{
    const char *small[] = {"tasks = ( { target = \"expression\"; data = { count = 200; side = 64; }; } );\n"
                           "models = ( { arch = \"vgg_f\"; width = 0.0625; fc = 16; } );\n"};
    seed_parts("job_set", "small", small, 1);
    const char *sets[] = {"job = { name = \"s\"; seed = 3L; };\n"
                          "tasks = ( { name = \"e\"; target = \"expression\";\n"
                          "            data = { count = 300; side = 32; }; } );\n"
                          "models = ( { arch = \"vgg_face\"; width = 0.0625; fc = 16; } );\n"
                          "methods = [ \"teacher\", \"kd\" ];\n"
                          "train = { epochs = 2; batch = 16; lr = 0.01; };\n",
                          "train.epochs=3", "tasks.e.data.count=400", "distill.lambda=0.5", "methods.1=triplet"};
    seed_parts("job_set", "sets", sets, 5);
    const char *grid[] = {
        "# a grid with overrides and a fusion\n"
        "job = { name = \"grid\"; output = \"runs/grid\"; seeds = [1, 2]; };\n"
        "tasks = (\n"
        "  { name = \"expression\"; target = \"expression\";\n"
        "    data = { source = \"synth\"; count = 400; side = 32; channels = 1; };\n"
        "    occlusion = { kind = \"vr\"; }; },\n"
        "  { name = \"age\"; target = \"age\";\n"
        "    data = { source = \"synth\"; count = 400; side = 32; channels = 1; };\n"
        "    occlusion = { kind = \"mask\"; }; }\n"
        ");\n"
        "models = ( { name = \"vgg_face\"; arch = \"vgg_face\"; width = 0.0625; fc = 16; dropout = 0.3; } );\n"
        "methods = [ \"teacher\", \"student\", \"kd\", \"triplet\", \"kd+triplet\" ];\n"
        "train = { epochs = 1; batch = 32; lr = 0.01; eval_batch = 64; augment = { pad = 2; flip = true; }; };\n"
        "overrides = ( { task = \"age\"; method = \"teacher\"; lr = 0.001; } );\n"
        "fusions = ( { name = \"kd-triplet\"; students = [ \"kd\", \"triplet\" ]; kind = \"average\"; } );\n"
        "parallel = { groups = 2; threads = 1; };\n"
        "checkpoint = { every_steps = 3; };\n",
        "checkpoint.every_steps=5000000000L"};
    seed_parts("job_set", "grid", grid, 2);
    const char *sources[] = {
        "tasks = ( { name = \"f\"; target = \"expression\";\n"
        "            data = { source = \"ferplus\"; path = \"/d/fer\"; side = 64; "
        "}; },\n"
        "          { name = \"a\"; target = \"expression\"; data = { source = \"affectnet\"; path = \"/d/aff\"; "
        "side = 64; channels = 3; }; },\n"
        "          { name = \"u\"; target = \"gender\"; data = { source = \"utkface\"; path = \"/d/utk\"; "
        "val_fraction = 0.1; test_fraction = 0.1; }; },\n"
        "          { name = \"i\"; target = \"class\"; data = { source = \"idx\"; path = \"/d/idx\"; side = 64; "
        "limit = 100; }; } );\n"
        "models = ( { arch = \"vgg_f\"; width = 0.0625; fc = 16; }, { arch = \"resnet50\"; width = 0.0625; } );\n",
        "tasks.i.data.limit=50"};
    seed_parts("job_set", "sources", sources, 2);
}

/* ------------------------------------------------------------------ FER+ */

static void ferplus_seeds(void)
{
    static const char *const usage[] = {"Training", "PublicTest", "PrivateTest"};
    static const char *const votes[] = {"6,2,0,0,0,0,0,0,1,0", "0,9,0,0,0,0,0,1,0,0", "0,0,0,0,0,0,10,0,0,0"};
    size_t cap = 40000;
    char *a = malloc(cap), *b = malloc(cap);
    size_t na = (size_t)snprintf(a, cap, "emotion,pixels,Usage\n");
    size_t nb = (size_t)snprintf(b, cap, "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                                         "contempt,unknown,NF\n");
    for (int r = 0; r < 3; r++) {
        na += (size_t)snprintf(a + na, cap - na, "%d,", r);
        for (int p = 0; p < 2304; p++)
            na += (size_t)snprintf(a + na, cap - na, p ? " %d" : "%d", (r * 40 + p) % 256);
        na += (size_t)snprintf(a + na, cap - na, ",%s\n", usage[r]);
        nb += (size_t)snprintf(b + nb, cap - nb, "%s,fer%07d.png,%s\n", usage[r], r, votes[r]);
    }
    const char *parts[] = {a, b};
    seed_parts("ferplus", "three_rows", parts, 2);
    const char *crlf[] = {"\xEF\xBB\xBF" "emotion,pixels,Usage\r\n0,1 2 3,Training\r\n",
                          "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
                          "\r\nTraining,fer0000000.png,10,0,0,0,0,0,0,0,0,0\r\n"};
    seed_parts("ferplus", "short_row_crlf", crlf, 2);
    free(a);
    free(b);
}

/* ------------------------------------------------------------- AffectNet */

static void affectnet_seeds(void)
{
#define AFF_HEADER "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence," \
                   "arousal\n"
    const char *rows[] = {AFF_HEADER "a.png,20,0,20,30,\"1.5;2.5;3.5\",2,-0.5,0.2\na.png,0,0,40,30,1;2,9,0,0\n"
                                     "a.png,0,0,10,10,,0,0.1,0.1\nb.png,5,5,10,10,,6,0,0\n",
                          AFF_HEADER "a.png,0,0,40,30,,7,0,0\na.png,30,20,20,20,,10,0,0\n"};
    seed_parts("affectnet", "rows", rows, 2);
    const char *bom[] = {"\xEF\xBB\xBF" AFF_HEADER "a.png,0,0,40,30,,1,0,0\r\n", AFF_HEADER "a.png,1,1,4,4,,3,0,0\n"};
    seed_parts("affectnet", "bom_crlf", bom, 2);
#undef AFF_HEADER
}

/* ------------------------------------------------------------------- IDX */

static size_t put_idx(uint8_t *out, int images, uint32_t n, int classes)
{
    size_t at = 0;
    uint32_t head[4] = {images ? 0x803u : 0x801u, n, 4, 4};
    for (int k = 0; k < (images ? 4 : 2); k++)
        for (int s = 24; s >= 0; s -= 8)
            out[at++] = (uint8_t)(head[k] >> s);
    for (uint32_t i = 0; i < (images ? n * 16 : n); i++)
        out[at++] = images ? (uint8_t)(10 * (i / 16)) : (uint8_t)(i % (uint32_t)classes);
    return at;
}

static void idx_seed(const char *name, unsigned modes)
{
    uint8_t buf[4096], file[1024];
    size_t at = 0;
    buf[at++] = (uint8_t)modes;
    const int images[4] = {1, 0, 1, 0};
    const uint32_t count[4] = {6, 6, 3, 3};
    for (int k = 0; k < 4; k++) {
        size_t n = put_idx(file, images[k], count[k], 3);
        if (k < 3) {
            buf[at++] = (uint8_t)(n >> 8);
            buf[at++] = (uint8_t)n;
        }
        memcpy(buf + at, file, n);
        at += n;
    }
    seed_bytes("idx", name, buf, at);
}

/* --------------------------------------------------------------- images */

static void image_seeds(void)
{
    uint8_t px[12 * 10 * 3];
    for (int i = 0; i < (int)sizeof px; i++)
        px[i] = (uint8_t)(i * 13);
    char p[1024];
    seed_path(p, sizeof p, "image", "rgb.png");
    stbi_write_png(p, 12, 10, 3, px, 12 * 3);
    seed_path(p, sizeof p, "image", "grey.png");
    stbi_write_png(p, 12, 10, 1, px, 12);
    seed_path(p, sizeof p, "image", "rgb.jpg");
    stbi_write_jpg(p, 12, 10, 3, px, 90);
    seed_path(p, sizeof p, "image", "rgb.bmp");
    stbi_write_bmp(p, 12, 10, 3, px);
    seed_path(p, sizeof p, "image", "rgb.tga");
    stbi_write_tga(p, 12, 10, 3, px);
    const char pgm[] = "P5\n4 3\n255\n\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c";
    seed_bytes("image", "grey.pgm", pgm, sizeof pgm - 1);
}

/* ----------------------------------------------------------- checkpoints */

static void checkpoint_seeds(void)
{
    Net *net = fuzz_net();
    net_init(net, 7);
    float *vel = calloc(net->n_params, sizeof(float)), *best = calloc(net->n_params, sizeof(float));
    float *best_state = calloc(net->n_state ? net->n_state : 1, sizeof(float));
    for (size_t i = 0; i < net->n_params; i++)
        vel[i] = (float)i * 1e-4f, best[i] = net->params[i];
    static CheckpointMeta m;
    snprintf(m.stamp.cell, sizeof m.stamp.cell, "expression/vgg_f/kd seed 5");
    snprintf(m.stamp.settings_sha256, sizeof m.stamp.settings_sha256, "%064d", 0);
    snprintf(m.stamp.settings, sizeof m.stamp.settings, "train.epochs = 2\ntrain.lr = 0.01\n");
    m.world = 2;
    m.seed = 5;
    m.run = (RunState){.step = 12, .epoch = 2, .sampler_epoch = 2, .best_metric = 0.5, .best_epoch = 1};
    EpochRecord rec = {0};
    for (int e = 0; e < 2; e++) {
        rec.epoch = e;
        history_append(&m.history, &rec);
    }
    char p[1024], err[1024];
    seed_path(p, sizeof p, "checkpoint", "full.h5");
    if (checkpoint_save(p, net, vel, best, best_state, &m, err, sizeof err))
        fprintf(stderr, "%s\n", err), exit(1);
    seed_path(p, sizeof p, "checkpoint", "weights_only.h5");
    if (checkpoint_save(p, net, NULL, NULL, NULL, &m, err, sizeof err))
        fprintf(stderr, "%s\n", err), exit(1);
    seed_path(p, sizeof p, "checkpoint", "weights_file.h5");
    if (weights_save(p, net, &m.stamp, err, sizeof err))
        fprintf(stderr, "%s\n", err), exit(1);
    history_free(&m.history);
    free(vel);
    free(best);
    free(best_state);
    net_free(net);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus folder>\n", argv[0]);
        return 2;
    }
    out_root = argv[1];
    mkdir(out_root, 0777);
    job_seeds();
    ferplus_seeds();
    affectnet_seeds();
    idx_seed("raw", 0x00);       /* all four raw */
    idx_seed("gzip", 0x55);      /* all four gzip-compressed */
    idx_seed("mixed", 0x14);     /* train images raw, train labels gzip, test images gzip, test labels raw */
    static const char *const names[] = {"25_0_2_20170116174525125.jpg.chip.jpg", "39_1_20170116174525125.jpg.chip.jpg",
                                        "116_1_4_20170117000000000.jpg", "1_0_0_2.JPG"};
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "name%d", i);
        seed_bytes("utkface_name", name, names[i], strlen(names[i]));
    }
    image_seeds();
    checkpoint_seeds();
    return 0;
}
