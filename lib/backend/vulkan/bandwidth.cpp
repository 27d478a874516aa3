#include "backend/vulkan/bandwidth.hpp"

#include <algorithm>
#include <chrono>

namespace ternlm::vk {

double measure_read_bandwidth(Device &dev, size_t bytes, int reps) {
    const uint32_t groups = 1024;
    Buffer src = dev.create_buffer(bytes, Memory::DeviceLocal, "the bandwidth probe");
    Buffer dst = dev.create_buffer(size_t(groups) * 256 * 4, Memory::DeviceLocal, "the bandwidth probe's output");
    const Kernel &k = dev.kernel("read_bandwidth", 2, 4);

    VkDescriptorPool pool = dev.create_descriptor_pool(1, 2);
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorPool = pool;
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &k.set_layout;
    VkDescriptorSet set;
    check(vkAllocateDescriptorSets(dev.handle(), &ai, &set), "vkAllocateDescriptorSets");
    const VkBuffer bufs[2] = {src.handle(), dst.handle()};
    dev.bind_buffers(set, bufs, 2);

    VkCommandBuffer cmd = dev.allocate_command_buffer(dev.command_pool());
    VkFence fence = dev.create_fence();

    const uint32_t n_vec4 = uint32_t(bytes / 16);
    double best = 0;
    for (int r = 0; r < reps + 1; ++r) { // the first pass warms up
        VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        check(vkBeginCommandBuffer(cmd, &bi), "vkBeginCommandBuffer");
        vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k.pipeline);
        vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k.layout, 0, 1, &set, 0, nullptr);
        vkCmdPushConstants(cmd, k.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 4, &n_vec4);
        vkCmdDispatch(cmd, groups, 1, 1);
        check(vkEndCommandBuffer(cmd), "vkEndCommandBuffer");
        check(vkResetFences(dev.handle(), 1, &fence), "vkResetFences");
        const auto t0 = std::chrono::steady_clock::now();
        dev.submit_and_wait(cmd, fence);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) best = std::max(best, double(bytes) / s / 1e9);
    }
    vkDestroyFence(dev.handle(), fence, nullptr);
    vkFreeCommandBuffers(dev.handle(), dev.command_pool(), 1, &cmd);
    vkDestroyDescriptorPool(dev.handle(), pool, nullptr);
    return best;
}

} // namespace ternlm::vk
