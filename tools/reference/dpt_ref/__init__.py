"""PyTorch reference of DiffPoseTalk inference (upstream semantics, written from the spec
../shared/spec/diffposetalk-inference.md). CPU, float32, no autograd. See tools/reference/README.md."""

import torch

from .common import RefError, LegacyArgs, sinusoid_table, alignment_mask, pad_audio, interp_time
from .audio import load_audio, resample_to_16k, window_layout, prepare
from .models import load_model, load_style_encoder, load_stats, KeyReport
from .sampler import (schedule, Noise, resolve_cfg, cfg_inputs, sample, infer_coeffs, coef_dict, update,
                      strided_timesteps, ddim_update)
from .encoder import STAGES

torch.set_grad_enabled(False)

__all__ = ['RefError', 'LegacyArgs', 'sinusoid_table', 'alignment_mask', 'pad_audio', 'interp_time',
           'load_audio', 'resample_to_16k', 'window_layout', 'prepare', 'load_model', 'load_style_encoder',
           'load_stats', 'KeyReport', 'schedule', 'Noise', 'resolve_cfg', 'cfg_inputs', 'sample', 'infer_coeffs',
           'coef_dict', 'update', 'strided_timesteps', 'ddim_update', 'STAGES']
