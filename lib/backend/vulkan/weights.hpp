// A model's weights resident on a Vulkan device: every matrix the forward
// pass multiplies by, uploaded once at load in its file's blocks (kernels
// dequantize on the fly; unaligned block types are split into planes, see
// layout.hpp), and every norm vector as f32. The token-embedding
// table stays in the mapping: one row per token is read on the host.
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>

#include "backend/backend.hpp"
#include "backend/vulkan/device.hpp"

namespace ternlm {
struct Transformer;

namespace vk {

class GpuWeights {
public:
    // progress(fraction of bytes uploaded); may be empty.
    static std::shared_ptr<GpuWeights> upload(std::shared_ptr<Device> dev, const Transformer &tf,
                                              const std::function<void(float)> &progress);

    Device &device() const { return *dev_; }
    const std::shared_ptr<Device> &device_ptr() const { return dev_; }
    // The device buffer of a weight bound by the transformer.
    const Buffer &get(const WeightRef &w) const;
    size_t bytes() const { return bytes_; }

private:
    std::shared_ptr<Device> dev_;
    std::unordered_map<const uint8_t *, Buffer> buffers_;
    size_t bytes_ = 0;
};

} // namespace vk
} // namespace ternlm
