#include "backend/vulkan/one_shot.hpp"

namespace ternlm::vk {

OneShot::OneShot(Device &dev, const Kernel &k, const VkBuffer *bufs, uint32_t n) : dev_(dev), k_(k) {
    pool_ = dev.create_descriptor_pool(1, n);
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorPool = pool_;
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &k.set_layout;
    check(vkAllocateDescriptorSets(dev.handle(), &ai, &set_), "vkAllocateDescriptorSets");
    dev.bind_buffers(set_, bufs, n);
    cmd_ = dev.allocate_command_buffer(dev.command_pool());
    fence_ = dev.create_fence();
}

OneShot::~OneShot() {
    vkDestroyFence(dev_.handle(), fence_, nullptr);
    vkFreeCommandBuffers(dev_.handle(), dev_.command_pool(), 1, &cmd_);
    vkDestroyDescriptorPool(dev_.handle(), pool_, nullptr);
}

void OneShot::record(const void *push, uint32_t push_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    check(vkBeginCommandBuffer(cmd_, &bi), "vkBeginCommandBuffer");
    vkCmdBindPipeline(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, k_.pipeline);
    vkCmdBindDescriptorSets(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, k_.layout, 0, 1, &set_, 0, nullptr);
    vkCmdPushConstants(cmd_, k_.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
    vkCmdDispatch(cmd_, gx, gy, gz);
    // what the kernel wrote, visible to the host (a read-back buffer's map)
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr,
                         0, nullptr);
    check(vkEndCommandBuffer(cmd_), "vkEndCommandBuffer");
}

void OneShot::submit() {
    check(vkResetFences(dev_.handle(), 1, &fence_), "vkResetFences");
    dev_.submit_and_wait(cmd_, fence_);
}

} // namespace ternlm::vk
