// Probes of the device, hidden from the test run ([.probe]; run by name on
// the GPU machine): what they measure is in docs/performance.md.
#ifdef TERNLM_HAVE_VULKAN
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "backend/vulkan/device.hpp"

using namespace ternlm;

namespace {

// read_bandwidth.comp with two descriptor sets (src_i, dst_i), a command
// buffer and a fence: what both probes record into.
struct ReadProbe {
    vk::Device &dev;
    const vk::Kernel &k;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    VkDescriptorSet sets[2] = {};
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;

    ReadProbe(vk::Device &d, const VkBuffer src[2], const VkBuffer dst[2])
        : dev(d), k(d.kernel("read_bandwidth", 2, 4)) {
        pool = dev.create_descriptor_pool(2, 4);
        for (int i = 0; i < 2; ++i) {
            VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
            ai.descriptorPool = pool;
            ai.descriptorSetCount = 1;
            ai.pSetLayouts = &k.set_layout;
            REQUIRE(vkAllocateDescriptorSets(dev.handle(), &ai, &sets[i]) == VK_SUCCESS);
            const VkBuffer b[2] = {src[i], dst[i]};
            dev.bind_buffers(sets[i], b, 2);
        }
        cmd = dev.allocate_command_buffer(dev.command_pool());
        fence = dev.create_fence();
    }
    ~ReadProbe() {
        vkDestroyFence(dev.handle(), fence, nullptr);
        vkFreeCommandBuffers(dev.handle(), dev.command_pool(), 1, &cmd);
        vkDestroyDescriptorPool(dev.handle(), pool, nullptr);
    }
    ReadProbe(const ReadProbe &) = delete;
    ReadProbe &operator=(const ReadProbe &) = delete;
};

// Ends cmd, submits it, waits, and reads the first n timestamps of qp.
void run_and_read_timestamps(vk::Device &dev, VkCommandBuffer cmd, VkFence fence, VkQueryPool qp, uint32_t n,
                             uint64_t *ts) {
    vkEndCommandBuffer(cmd);
    vkResetFences(dev.handle(), 1, &fence);
    dev.submit_and_wait(cmd, fence);
    REQUIRE(vkGetQueryPoolResults(dev.handle(), qp, 0, n, n * sizeof *ts, ts, 8,
                                  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) == VK_SUCCESS);
}

} // namespace

// What one dispatch costs the device front end (hidden: [.probe]).
TEST_CASE("Vulkan dispatch cost probe", "[.probe]") {
    auto dev = vk::Device::open(-1);
    const uint32_t max_groups = 2048;
    vk::Buffer src = dev->create_buffer(16 * 256 * size_t(max_groups), vk::Memory::DeviceLocal, "src");
    vk::Buffer dst = dev->create_buffer(4 * 256 * size_t(max_groups), vk::Memory::DeviceLocal, "dst");
    vk::Buffer dst2 = dev->create_buffer(4 * 256 * size_t(max_groups), vk::Memory::DeviceLocal, "dst2");
    const VkBuffer srcs[2] = {src.handle(), src.handle()}, dsts[2] = {dst.handle(), dst2.handle()};
    ReadProbe probe(*dev, srcs, dsts);
    const vk::Kernel &k = probe.k;
    VkDescriptorSet *sets = probe.sets;
    VkCommandBuffer cmd = probe.cmd;
    VkFence fence = probe.fence;
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
            if (mode == 5 && i) // an execution dependency only (no cache made visible): what the drain costs
                vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0,
                                     0, nullptr, 0, nullptr, 0, nullptr);
            if (mode == 6 && i) { // the host stage too, as every barrier of a step held before session 18
                VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
                mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
                mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT;
                vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                                     VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0,
                                     nullptr, 0, nullptr);
            }
            if (mode >= 2 && mode <= 4) {
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
    const char *names[7] = {"no barriers",     "barriers",         "barriers+rebind",  "barriers+2 sets",
                            "2 sets, no barr", "execution only",   "barriers+host"};
    std::printf("dispatch cost on %s, us a dispatch (2000 dispatches less 1)\n", dev->info().name.c_str());
    for (uint32_t groups : {1u, 16u, 132u, 1056u, 2048u})
        for (int mode = 0; mode < 7; ++mode) {
            run(2000, groups, mode);
            double best = 1e9;
            for (int r = 0; r < 3; ++r) best = std::min(best, (run(2000, groups, mode) - run(1, groups, mode)) / 1999);
            std::printf("  %4u groups of 256, %-16s %.2f us\n", groups, names[mode], best * 1e6);
        }
}

// How fast a weight-sized read runs from the L2 against from memory: a
// buffer of `mb` read once after a 256 MB read that evicts it (cold), and
// right after reading itself (warm); us by timestamps around the dispatch.
TEST_CASE("Vulkan L2 probe", "[.probe]") {
    auto dev = vk::Device::open(-1);
    const size_t big_bytes = size_t(256) << 20;
    vk::Buffer big = dev->create_buffer(big_bytes, vk::Memory::DeviceLocal, "evict");
    vk::Buffer a = dev->create_buffer(size_t(64) << 20, vk::Memory::DeviceLocal, "weights");
    vk::Buffer dst = dev->create_buffer(4 * 256 * 2048, vk::Memory::DeviceLocal, "dst");
    const VkBuffer srcs[2] = {a.handle(), big.handle()}, dsts[2] = {dst.handle(), dst.handle()};
    ReadProbe probe(*dev, srcs, dsts);
    const vk::Kernel &k = probe.k;
    VkDescriptorSet *sets = probe.sets;
    VkQueryPool qp;
    VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qi.queryCount = 64;
    REQUIRE(vkCreateQueryPool(dev->handle(), &qi, nullptr, &qp) == VK_SUCCESS);
    VkCommandBuffer cmd = probe.cmd;
    VkFence fence = probe.fence;
    auto barrier = [&] {
        VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
        mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
        vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb,
                             0, nullptr, 0, nullptr);
    };
    auto read = [&](int set, size_t bytes, uint32_t groups) {
        vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k.layout, 0, 1, &sets[set], 0, nullptr);
        const uint32_t nv = uint32_t(bytes / 16);
        vkCmdPushConstants(cmd, k.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 4, &nv);
        vkCmdDispatch(cmd, groups, 1, 1);
    };
    std::printf("L2 probe on %s: us to read a buffer, cold / warm (1056 and 2048 workgroups of 256)\n",
                dev->info().name.c_str());
    for (double mb : {1.0, 2.4, 9.4, 19.0, 34.0, 48.0})
        for (uint32_t groups : {1056u, 2048u}) {
            const size_t bytes = size_t(mb * (1 << 20)) / 16 * 16;
            vkResetCommandBuffer(cmd, 0);
            VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
            vkBeginCommandBuffer(cmd, &bi);
            vkCmdResetQueryPool(cmd, qp, 0, 64);
            vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k.pipeline);
            for (int r = 0; r < 8; ++r) { // 4 x (cold, warm)
                if (r % 2 == 0) read(1, big_bytes, 2048);
                else read(0, bytes, groups);
                barrier();
                vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, qp, uint32_t(2 * r));
                read(0, bytes, groups);
                barrier();
                vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, qp, uint32_t(2 * r + 1));
            }
            uint64_t ts[16];
            run_and_read_timestamps(*dev, cmd, fence, qp, 16, ts);
            double cold = 1e9, warm = 1e9;
            for (int r = 0; r < 8; ++r) {
                const double us = double(ts[2 * r + 1] - ts[2 * r]) * dev->timestamp_period_ns() * 1e-3;
                (r % 2 ? warm : cold) = std::min(r % 2 ? warm : cold, us);
            }
            std::printf("  %5.1f MB, %4u groups: cold %6.2f us (%4.0f GB/s), warm %6.2f us (%4.0f GB/s)\n", mb, groups,
                        cold, double(bytes) / cold * 1e-3, warm, double(bytes) / warm * 1e-3);
        }
    vkDestroyQueryPool(dev->handle(), qp, nullptr);
}

namespace {

// The chain stage_gemv_probe.comp computes, on the host: q_{s+1}[r] = low
// byte of sum_c W_s[r][c] * q_s[c] (int8 weights and values).
std::vector<uint8_t> chain_on_host(const std::vector<uint8_t> &w, std::vector<uint8_t> q, size_t n, int stages) {
    for (int s = 0; s < stages; ++s) {
        std::vector<uint8_t> next(n);
        for (size_t r = 0; r < n; ++r) {
            const int8_t *row = reinterpret_cast<const int8_t *>(w.data() + (size_t(s) * n + r) * n);
            int32_t y = 0;
            for (size_t c = 0; c < n; ++c) y += int32_t(row[c]) * int32_t(int8_t(q[c]));
            next[r] = uint8_t(uint32_t(y) & 0xFFu);
        }
        q.swap(next);
    }
    return q;
}

} // namespace

// What a dependent GEMV stage costs inside one dispatch of persistent
// workgroups (waiting on counters), with and without its weights loaded
// before the wait, against a dispatch per stage behind a pipeline barrier
// (hidden: [.probe]; docs/performance.md, session 20). Every variant's
// last vector is checked against the host's chain.
TEST_CASE("Vulkan GEMV stage chain probe", "[.probe]") {
    auto dev = vk::Device::open(-1);
    REQUIRE(dev->info().int_dot);
    const int stages = 32;
    const vk::Kernel &k = dev->kernel("stage_gemv_probe", 3, 16);
    VkDescriptorPool pool = dev->create_descriptor_pool(1, 3);
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorPool = pool;
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &k.set_layout;
    VkDescriptorSet set = VK_NULL_HANDLE;
    REQUIRE(vkAllocateDescriptorSets(dev->handle(), &ai, &set) == VK_SUCCESS);
    VkCommandBuffer cmd = dev->allocate_command_buffer(dev->command_pool());
    VkFence fence = dev->create_fence();
    VkQueryPool qp;
    VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qi.queryCount = 2;
    REQUIRE(vkCreateQueryPool(dev->handle(), &qi, nullptr, &qp) == VK_SUCCESS);
    std::mt19937 rng(5);
    std::printf("GEMV stage chain probe on %s: us a stage (%d stages of int8 n x n; groups of 64 threads;\n"
                "[flags]: 1 weights loaded before the wait, 2 polls by loads, 4 arrivals in 8 counters)\n",
                dev->info().name.c_str(), stages);
    for (uint32_t n : {1024u, 2048u, 4096u}) {
        std::vector<uint8_t> w(size_t(stages) * n * n), q0(n);
        for (auto &b : w) b = uint8_t(rng());
        for (auto &b : q0) b = uint8_t(rng());
        const std::vector<uint8_t> want = chain_on_host(w, q0, n, stages);
        vk::Buffer wb = dev->create_buffer(w.size(), vk::Memory::DeviceLocal, "weights");
        dev->upload(wb, 0, w.data(), w.size());
        vk::Buffer qb = dev->create_buffer(size_t(stages + 1) * n, vk::Memory::DeviceLocal, "vectors");
        dev->upload(qb, 0, q0.data(), n);
        vk::Buffer cb = dev->create_buffer(32 * size_t(stages + 1), vk::Memory::DeviceLocal, "counters");
        vk::Buffer out = dev->create_buffer(n + 4, vk::Memory::HostReadback, "read-back");
        const VkBuffer bufs[3] = {wb.handle(), qb.handle(), cb.handle()};
        dev->bind_buffers(set, bufs, 3);
        auto barrier = [&] {
            VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
            mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
            mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                               VK_ACCESS_TRANSFER_WRITE_BIT;
            const VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
            vkCmdPipelineBarrier(cmd, st, st, 0, 1, &mb, 0, nullptr, 0, nullptr);
        };
        // groups == 0: a dispatch per stage (n / 4 workgroups each)
        auto run = [&](uint32_t groups, uint32_t flags) {
            vkResetCommandBuffer(cmd, 0);
            VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
            vkBeginCommandBuffer(cmd, &bi);
            vkCmdResetQueryPool(cmd, qp, 0, 2);
            vkCmdFillBuffer(cmd, cb.handle(), 0, VK_WHOLE_SIZE, 0);
            vkCmdFillBuffer(cmd, qb.handle(), n, VK_WHOLE_SIZE, 0);
            barrier();
            vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k.pipeline);
            vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k.layout, 0, 1, &set, 0, nullptr);
            vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, qp, 0);
            if (groups == 0) {
                for (uint32_t s = 0; s < uint32_t(stages); ++s) {
                    if (s) barrier();
                    const uint32_t pc[4] = {n, s, s + 1, 0};
                    vkCmdPushConstants(cmd, k.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 16, pc);
                    vkCmdDispatch(cmd, n / 4, 1, 1);
                }
            } else {
                const uint32_t pc[4] = {n, 0, uint32_t(stages), flags};
                vkCmdPushConstants(cmd, k.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, 16, pc);
                vkCmdDispatch(cmd, groups, 1, 1);
            }
            barrier();
            vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, qp, 1);
            const VkBufferCopy last{size_t(stages) * n, 0, n}, abort{32 * size_t(stages), n, 4};
            vkCmdCopyBuffer(cmd, qb.handle(), out.handle(), 1, &last);
            vkCmdCopyBuffer(cmd, cb.handle(), out.handle(), 1, &abort);
            barrier();
            uint64_t ts[2];
            run_and_read_timestamps(*dev, cmd, fence, qp, 2, ts);
            out.invalidate();
            const auto *got = static_cast<const uint8_t *>(out.mapped());
            uint32_t aborted = 0;
            std::memcpy(&aborted, got + n, 4);
            INFO(n << " wide, " << groups << " groups, flags " << flags);
            CHECK(aborted == 0);
            CHECK(std::equal(want.begin(), want.end(), got));
            return double(ts[1] - ts[0]) * dev->timestamp_period_ns() * 1e-3 / stages;
        };
        auto best = [&](uint32_t groups, uint32_t flags) {
            double b = 1e9;
            for (int r = 0; r < 5; ++r) b = std::min(b, run(groups, flags));
            return b;
        };
        const double mb = double(n) * n / (1 << 20);
        std::printf("  %4u wide (%4.1f MB a stage): a dispatch per stage %6.2f us\n", n, mb, best(0, 0));
        for (uint32_t groups : {132u, 256u, 264u, 512u, 528u, 1024u, 1056u}) {
            if (groups > n / 4) continue;
            std::printf("  %4u wide, %4u persistent groups:", n, groups);
            // flags as stage_gemv_probe.comp's
            for (uint32_t flags : {0u, 1u, 2u, 3u, 6u, 7u}) std::printf(" [%u] %6.2f", flags, best(groups, flags));
            std::printf(" us\n");
        }
    }
    vkDestroyQueryPool(dev->handle(), qp, nullptr);
    vkDestroyFence(dev->handle(), fence, nullptr);
    vkFreeCommandBuffers(dev->handle(), dev->command_pool(), 1, &cmd);
    vkDestroyDescriptorPool(dev->handle(), pool, nullptr);
}
#endif
