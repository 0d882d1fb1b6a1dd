/* Style encoder (spec §5): a motion clip → style vector (d_style values).
 * The public entry is dpt_model_extract_style (dpt.h). */
#ifndef DPT_STYLE_H
#define DPT_STYLE_H

#include "core.h"
#include "model.h"

/* Row p of the sinusoidal table pe(d, ·) of spec §2.8 (float32 arithmetic), d even. */
void dpt_sinusoid_row(float *row, int d, int p);

/* Maximum sequence length of upstream's PositionalEncoding (max_len default 600). */
#define DPT_PE_MAX_LEN 600

#endif
