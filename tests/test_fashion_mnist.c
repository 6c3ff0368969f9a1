/* test_fashion_mnist.c - the real Fashion-MNIST from Debian's
 * dataset-fashion-mnist: 60,000 training and 10,000 test images, 10
 * classes, 6,000 per class in training. Skipped (exit 77) when absent. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data.h"
#include "gradcheck.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

int main(void)
{
    struct stat st;
    if (stat(FASHION_DIR, &st) != 0) {
        printf("test_fashion_mnist: %s not installed (apt-get install dataset-fashion-mnist); skipped\n", FASHION_DIR);
        return 77;
    }
    DataOptions o;
    data_options_default(&o);
    o.source = SOURCE_IDX;
    snprintf(o.path, sizeof o.path, "%s", FASHION_DIR);
    o.side = 28;
    o.channels = 1;
    Dataset d;
    char err[1024] = "";
    if (dataset_load(&o, NULL, NULL, &d, err, sizeof err)) {
        fprintf(stderr, "test_fashion_mnist: %s\n", err);
        return 1;
    }
    CHECK(d.n == 70000, "%d images (expected 70,000)", d.n);
    CHECK(dataset_split_count(&d, SPLIT_TRAIN) == 60000, "%d training images", dataset_split_count(&d, SPLIT_TRAIN));
    CHECK(dataset_split_count(&d, SPLIT_TEST) == 10000, "%d test images", dataset_split_count(&d, SPLIT_TEST));
    CHECK(d.n_classes[ATTR_CLASS] == 10, "%d classes", d.n_classes[ATTR_CLASS]);
    int per[10] = {0}, test_per[10] = {0};
    for (int i = 0; i < d.n; i++) {
        int c = d.attr_class[ATTR_CLASS][i];
        if (c >= 0 && c < 10)
            (d.split[i] == SPLIT_TRAIN ? per : test_per)[c]++;
    }
    for (int c = 0; c < 10; c++) {
        CHECK(per[c] == 6000, "class %d: %d training images (expected 6,000)", c, per[c]);
        CHECK(test_per[c] == 1000, "class %d: %d test images (expected 1,000)", c, test_per[c]);
    }
    float mean, sd;
    CHECK(dataset_channel_stats(&d, SPLIT_TRAIN, &mean, &sd, err, sizeof err) == 0, "%s", err);
    printf("test_fashion_mnist: training mean %.4f std %.4f\n", mean, sd);
    /* the published statistics of Fashion-MNIST's training images: 0.2860 / 0.3530 */
    CHECK(mean > 0.28f && mean < 0.29f && sd > 0.345f && sd < 0.36f, "mean %g std %g", mean, sd);
    dataset_free(&d);
    return test_finish("test_fashion_mnist");
}
