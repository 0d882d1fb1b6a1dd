/* Growable public structs (dpt.h "Growable structs"): a caller's params struct, whose first
 * member is size_t struct_size, is read over the library's defaults; info structs are written up
 * to the caller's size. */
#ifndef DPT_SIZED_H
#define DPT_SIZED_H

#include <stddef.h>

#include "dpt.h"

/* The size of a struct up to and including `field` (the last field of the first growable
 * release, 0.3: callers' struct_size may not be smaller). */
#define DPT_SIZE_THROUGH(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* Defaults for the first `size` bytes of a struct whose defaults are `full` (full_size bytes);
 * the bytes of the caller's struct past full_size are zeroed; struct_size set to size. */
void dpt_sized_init(void *dst, size_t size, const void *full, size_t full_size);

/* *full (full_size bytes, holding the defaults) ← the caller's struct `in` (NULL: defaults
 * kept). DPT_ERR_INVALID_ARG when in->struct_size < min_size (not made by `what`_default()),
 * DPT_ERR_UNSUPPORTED when a byte past full_size is non-zero (a field newer than this library).
 * On success full->struct_size = full_size. what: the struct's name for the message. */
dpt_status dpt_sized_take(const void *in, void *full, size_t full_size, size_t min_size,
                          const char *what, dpt_error *err);

/* Copy full (full_size bytes) into the caller's out (size bytes; past full_size zeroed). */
void dpt_sized_give(void *out, size_t size, const void *full, size_t full_size);

#endif
