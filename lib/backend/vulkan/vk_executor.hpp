// The Vulkan backend's executor: each evaluation step (all layers of n
// tokens) is recorded into one command buffer and submitted once; the host
// waits on one fence and reads back only the logits rows.
#pragma once

#include <memory>

#include "backend/executor.hpp"
#include "backend/vulkan/weights.hpp"

namespace ternlm::vk {

// n_ctx positions of KV cache for n_layer layers of kv_dim floats, on the device.
std::unique_ptr<backend::Executor> make_vulkan_executor(std::shared_ptr<const GpuWeights> weights, int n_layer,
                                                        int n_ctx, int kv_dim);

} // namespace ternlm::vk
