// The device's memory read bandwidth, measured with a streaming kernel: the
// figure the bench's roofline divides by.
#pragma once

#include "backend/vulkan/device.hpp"

namespace ternlm::vk {

// Best of `reps` timed passes over a buffer of `bytes` (default 1 GiB), in GB/s.
double measure_read_bandwidth(Device &dev, size_t bytes = size_t(1) << 30, int reps = 5);

} // namespace ternlm::vk
