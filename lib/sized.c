/* Growable public structs: see sized.h and dpt.h "Growable structs". */
#include "sized.h"

#include <string.h>

#include "core.h"

void dpt_sized_init(void *dst, size_t size, const void *full, size_t full_size) {
    if (!dst || size < sizeof(size_t)) return;
    dpt_sized_give(dst, size, full, full_size);
    memcpy(dst, &size, sizeof size);
}

dpt_status dpt_sized_take(const void *in, void *full, size_t full_size, size_t min_size,
                          const char *what, dpt_error *err) {
    if (!in) return DPT_OK;
    size_t size;
    memcpy(&size, in, sizeof size);
    if (size < min_size || size > 65536)
        return dpt_fail(err, DPT_ERR_INVALID_ARG,
                        "%s: struct_size is %zu, expected at least %zu: initialise the struct "
                        "with %s_default()",
                        what, size, min_size, what);
    const unsigned char *bytes = in;
    for (size_t i = full_size; i < size; i++)
        if (bytes[i])
            return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                            "%s: a field past this library's struct (libdpt %s, %zu bytes) is set: "
                            "the program was built for a newer libdpt",
                            what, DPT_VERSION_STRING, full_size);
    memcpy(full, in, size < full_size ? size : full_size);
    memcpy(full, &full_size, sizeof full_size);
    return DPT_OK;
}

void dpt_sized_give(void *out, size_t size, const void *full, size_t full_size) {
    if (!out) return;
    memcpy(out, full, size < full_size ? size : full_size);
    if (size > full_size) memset((unsigned char *)out + full_size, 0, size - full_size);
}
