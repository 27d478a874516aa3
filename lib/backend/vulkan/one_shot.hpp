// One kernel dispatched on its own, outside any step: the bench's bandwidth
// probe, and tests of kernels that the executor runs only on other devices
// (dequant_f16.comp, which only devices with matrix units use, is checked
// on lavapipe this way).
#pragma once

#include "backend/vulkan/device.hpp"

namespace ternlm::vk {

class OneShot {
public:
    // The kernel with bufs[0..n) bound in order (they must outlive this).
    OneShot(Device &dev, const Kernel &k, const VkBuffer *bufs, uint32_t n);
    ~OneShot();
    OneShot(const OneShot &) = delete;
    OneShot &operator=(const OneShot &) = delete;

    // Records the dispatch (replacing any recorded before).
    void record(const void *push, uint32_t push_bytes, uint32_t gx, uint32_t gy = 1, uint32_t gz = 1);
    // Submits what was recorded and waits for it.
    void submit();
    void run(const void *push, uint32_t push_bytes, uint32_t gx, uint32_t gy = 1, uint32_t gz = 1) {
        record(push, push_bytes, gx, gy, gz);
        submit();
    }

private:
    Device &dev_;
    const Kernel &k_;
    VkDescriptorPool pool_ = VK_NULL_HANDLE;
    VkDescriptorSet set_ = VK_NULL_HANDLE;
    VkCommandBuffer cmd_ = VK_NULL_HANDLE;
    VkFence fence_ = VK_NULL_HANDLE;
};

} // namespace ternlm::vk
