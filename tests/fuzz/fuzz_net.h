/* fuzz_net.h - the small network whose checkpoints and weight files make
 * the checkpoint target's seed corpus, and that the target loads them into
 * (vgg_f at 64 px, grey, width 1/64, fc 2, 2 classes: about a thousand
 * parameters in 10 tensors). */
#ifndef OCCKD_FUZZ_NET_H
#define OCCKD_FUZZ_NET_H

#include <stdio.h>
#include <stdlib.h>

#include "layers/layers.h"

static inline Net *fuzz_net(void)
{
    NetSpec s = netspec_default(ARCH_VGG_F);
    s.input = 64;
    s.channels = 1;
    s.width = 1.0f / 64;
    s.fc = 2;
    s.classes = 2;
    s.dropout = 0;
    char err[512];
    Net *net = net_create(&s, 1, 0, err, sizeof err);
    if (!net) {
        fprintf(stderr, "net_create: %s\n", err);
        abort();
    }
    return net;
}

#endif
