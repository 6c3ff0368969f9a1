/* fuzz_utkface_name.c - the UTKFace file-name parser
 * (age_gender_race_datetime.jpg.chip.jpg) and the image-extension test on
 * the input as a name; a name that parses must give values in range.
 */
#include "data/internal.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *name = malloc(size + 1);
    if (!name)
        abort();
    if (size)
        memcpy(name, data, size);
    name[size] = '\0';
    int age = -1, gender = -1, race = -2;
    if (utkface_parse_name(name, &age, &gender, &race) == 0 &&
        (age < 0 || age > 116 || gender < 0 || gender > 1 || race < -1 || race > 4)) {
        fprintf(stderr, "'%s' parsed to age %d gender %d race %d\n", name, age, gender, race);
        abort();
    }
    (void)has_image_ext(name);
    free(name);
    return 0;
}
