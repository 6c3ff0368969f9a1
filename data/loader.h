/* loader.h - occlusion, augmentation, sampler, batch loader (part of data.h). */
#ifndef OCCKD_DATA_LOADER_H
#define OCCKD_DATA_LOADER_H
#endif
