/* Per-caller state (public dpt_state_*), internal view for the stream. */
#ifndef DPT_STATE_H
#define DPT_STATE_H

#include "kernels.h"
#include "model.h"

/* The state's team (NULL = one thread) and model. */
dpt_k_team *dpt_state_team(dpt_state *state);
const dpt_model *dpt_state_model(const dpt_state *state);

#endif
