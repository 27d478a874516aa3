#include "backend/vulkan/bandwidth.hpp"

#include <algorithm>
#include <chrono>

#include "backend/vulkan/one_shot.hpp"

namespace ternlm::vk {

double measure_read_bandwidth(Device &dev, size_t bytes, int reps) {
    const uint32_t groups = 1024;
    Buffer src = dev.create_buffer(bytes, Memory::DeviceLocal, "the bandwidth probe");
    Buffer dst = dev.create_buffer(size_t(groups) * 256 * 4, Memory::DeviceLocal, "the bandwidth probe's output");
    const VkBuffer bufs[2] = {src.handle(), dst.handle()};
    OneShot probe(dev, dev.kernel("read_bandwidth", 2, 4), bufs, 2);
    const uint32_t n_vec4 = uint32_t(bytes / 16);
    probe.record(&n_vec4, sizeof n_vec4, groups);
    double best = 0;
    for (int r = 0; r < reps + 1; ++r) { // the first pass warms up
        const auto t0 = std::chrono::steady_clock::now();
        probe.submit();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) best = std::max(best, double(bytes) / s / 1e9);
    }
    return best;
}

} // namespace ternlm::vk
