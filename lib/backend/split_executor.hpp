// A step split between two backends by layers (n_gpu_layers): the first
// layers on the CPU, the rest and the output on a GPU. The split step hands
// each op to the CPU step until the first op that touches GPU-resident
// weights or a GPU layer's attention; from there on, to the GPU step. Each
// buffer lives on both sides; one the CPU wrote is copied up (write_rows)
// when a GPU op first reads it. The GPU part still records once and replays:
// the CPU's rows reach it through staging buffers rewritten every step.
#pragma once

#include <functional>
#include <memory>

#include "backend/executor.hpp"

namespace ternlm::backend {

// on_gpu(w): whether the GPU holds w; first_gpu_layer: the first layer whose
// attention runs there.
std::unique_ptr<Executor> make_split_executor(std::unique_ptr<Executor> cpu, std::unique_ptr<Executor> gpu,
                                              std::function<bool(const WeightRef &)> on_gpu, int first_gpu_layer);

} // namespace ternlm::backend
