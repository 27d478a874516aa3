// Chained decode steps (kernels/chain.glsl, Recorder): dependent dispatches
// that wait on counters instead of pipeline barriers compute what steps
// with barriers compute, bit for bit; and, hidden ([.probe]), what a
// dispatch costs the device with and without barriers (the measurement
// behind chaining; docs/performance.md).
#ifdef TERNLM_HAVE_VULKAN
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/vulkan/vk_executor.hpp"
#include "engine/context.hpp"
#include "engine/model.hpp"
#include "sampling/sampler.hpp"
#include "support/files.hpp"
#include "support/vulkan.hpp"

using namespace ternlm;

namespace {

// A prompt and greedy decode steps; every step's logits, one row after another.
std::vector<float> decode_logits(Model &model, int n_steps) {
    ContextParams cp;
    cp.n_ctx = 64;
    Context ctx(model, cp);
    const int32_t prompt[] = {1, 403, 407, 261, 378};
    ctx.prefill(prompt, 5);
    const int n_vocab = model.hparams().n_vocab;
    std::vector<float> out;
    SamplerParams greedy;
    greedy.temperature = 0;
    Sampler sampler(greedy);
    for (int i = 0; i < n_steps; ++i) {
        ctx.decode_step(ctx.sample(sampler));
        out.insert(out.end(), ctx.logits(), ctx.logits() + n_vocab);
    }
    return out;
}

} // namespace

TEST_CASE("Vulkan decode steps chained through counters equal steps with barriers", "[vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    // Q4_K and TQ2_0 decode steps run only kernels that chain; stories260K
    // (F32) mixes them with ones that cannot wait (matmul, rms_norm), which
    // get barriers.
    for (const char *name : {"tiny256-llama-q4_k", "tiny256-bitnet-tq2_0", "stories260K"}) {
        DYNAMIC_SECTION(name) {
            ModelParams mp;
            mp.backend = TERN_BACKEND_VULKAN;
            auto model = Model::load(testsupport::shared_path(std::string("models/") + name + ".gguf"), mp);
            REQUIRE(model->backend() == TERN_BACKEND_VULKAN);
            vk::Device &dev = const_cast<vk::GpuWeights &>(*model->gpu_weights()).device();
            const bool was_on = dev.chain_dispatches();
            dev.set_chain_dispatches(false);
            const uint64_t before_off = dev.chained_stages();
            const auto with_barriers = decode_logits(*model, 6);
            CHECK(dev.chained_stages() == before_off);
            dev.set_chain_dispatches(true);
            const uint64_t before_on = dev.chained_stages();
            const auto chained = decode_logits(*model, 6);
            dev.set_chain_dispatches(was_on);
            // The first decode step records its stages, later ones replay:
            // at least one chained stage a layer where every kernel chains.
            const bool all_chain = std::string(name) != "stories260K";
            CHECK(dev.chained_stages() - before_on >= (all_chain ? uint64_t(model->hparams().n_layer) : 1));
            REQUIRE(chained == with_barriers);
        }
    }
}

// What one dispatch costs the device front end (hidden: [.probe]).
TEST_CASE("Vulkan dispatch cost probe", "[.probe]") {
    auto dev = vk::Device::open(-1);
    const uint32_t max_groups = 2048;
    vk::Buffer src = dev->create_buffer(16 * 256 * size_t(max_groups), vk::Memory::DeviceLocal, "src");
    vk::Buffer dst = dev->create_buffer(4 * 256 * size_t(max_groups), vk::Memory::DeviceLocal, "dst");
    vk::Buffer dst2 = dev->create_buffer(4 * 256 * size_t(max_groups), vk::Memory::DeviceLocal, "dst2");
    const vk::Kernel &k = dev->kernel("read_bandwidth", 2, 4);
    VkDescriptorPool pool = dev->create_descriptor_pool(2, 4);
    VkDescriptorSet sets[2];
    for (int i = 0; i < 2; ++i) {
        VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
        ai.descriptorPool = pool;
        ai.descriptorSetCount = 1;
        ai.pSetLayouts = &k.set_layout;
        REQUIRE(vkAllocateDescriptorSets(dev->handle(), &ai, &sets[i]) == VK_SUCCESS);
        const VkBuffer b[2] = {src.handle(), i ? dst2.handle() : dst.handle()};
        dev->bind_buffers(sets[i], b, 2);
    }
    VkCommandBuffer cmd = dev->allocate_command_buffer(dev->command_pool());
    VkFence fence = dev->create_fence();
    auto run = [&](uint32_t n, uint32_t groups, int mode) {
        vkResetCommandBuffer(cmd, 0);
        VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        vkBeginCommandBuffer(cmd, &bi);
        vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k.pipeline);
        vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k.layout, 0, 1, &sets[0], 0, nullptr);
        for (uint32_t i = 0; i < n; ++i) {
            if (mode >= 1 && mode <= 3 && i) {
                VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
                mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
                mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
                vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0,
                                     1, &mb, 0, nullptr, 0, nullptr);
            }
            if (mode >= 2) {
                vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k.pipeline);
                vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k.layout, 0, 1, &sets[mode >= 3 ? i & 1 : 0],
                                        0, nullptr);
            }
            const uint32_t nv = groups * 256;
            vkCmdPushConstants(cmd, k.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 4, &nv);
            vkCmdDispatch(cmd, groups, 1, 1);
        }
        vkEndCommandBuffer(cmd);
        vkResetFences(dev->handle(), 1, &fence);
        const auto t0 = std::chrono::steady_clock::now();
        dev->submit_and_wait(cmd, fence);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    const char *names[5] = {"no barriers", "barriers", "barriers+rebind", "barriers+2 sets", "2 sets, no barr"};
    std::printf("dispatch cost on %s, us a dispatch (2000 dispatches less 1)\n", dev->info().name.c_str());
    for (uint32_t groups : {1u, 16u, 132u, 1056u, 2048u})
        for (int mode = 0; mode < 5; ++mode) {
            run(2000, groups, mode);
            double best = 1e9;
            for (int r = 0; r < 3; ++r) best = std::min(best, (run(2000, groups, mode) - run(1, groups, mode)) / 1999);
            std::printf("  %4u groups of 256, %-16s %.2f us\n", groups, names[mode], best * 1e6);
        }
    vkDestroyFence(dev->handle(), fence, nullptr);
    vkFreeCommandBuffers(dev->handle(), dev->command_pool(), 1, &cmd);
    vkDestroyDescriptorPool(dev->handle(), pool, nullptr);
}
#endif
