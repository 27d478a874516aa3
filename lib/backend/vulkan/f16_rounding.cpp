#include "backend/vulkan/f16_rounding.hpp"

#include <cmath>
#include <cstring>
#include <random>

#include "backend/vulkan/one_shot.hpp"

namespace ternlm::vk {

namespace {

float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

} // namespace

std::vector<float> f16_rounding_probe_values() {
    std::vector<float> v;
    // f16 has 10 fraction bits: f32 values whose low 13 bits are 0x1000 lie
    // exactly halfway; one f32 ulp either side must round down and up.
    for (uint32_t exp = 103; exp <= 143; ++exp)        // f32 exponents of f16's subnormals to past its largest
        for (uint32_t frac : {0u, 1u, 2u, 3u, 0x3FFu}) { // even and odd f16 fractions, and the carry into the exponent
            const uint32_t base = (exp << 23) | (frac << 13);
            for (uint32_t low : {0x0FFFu, 0x1000u, 0x1001u, 0x0u, 0x1FFFu})
                for (uint32_t sign : {0u, 0x80000000u}) v.push_back(from_bits(sign | base | low));
        }
    for (float f : {65504.0f, 65519.99f, 65520.0f, 65536.0f, 1e30f, 6.1035156e-05f, 6.1e-05f, 5.9604645e-08f,
                    2.9802322e-08f, 2.9802326e-08f, 8.940697e-08f, 1e-10f, 0.0f, -0.0f, INFINITY, -INFINITY})
        v.push_back(f);
    std::mt19937 rng(1234);
    std::uniform_int_distribution<uint32_t> bits(0, 0xFFFFFFFFu);
    while (v.size() < 16384) {
        const float f = from_bits(bits(rng));
        if (std::isfinite(f) && std::fabs(f) < 1e6f) v.push_back(f);
    }
    return v;
}

bool Device::use_hw_f16_rounding() {
    // The probe and the builds convert to float16_t under RoundingModeRTE.
    if (!hw_f16_enabled_.load() || !info_.fp16 || !info_.rte_f16) return false;
    if (hw_f16_exact_.load() < 0) hw_f16_exact_.store(probe_hw_f16_rounding(*this) ? 1 : 0);
    return hw_f16_exact_.load() == 1;
}

bool probe_hw_f16_rounding(Device &dev) {
    std::vector<float> in = f16_rounding_probe_values();
    const uint32_t n = uint32_t(in.size());
    in.push_back(1.0f); // the fma's factor and addend, read by the kernel
    in.push_back(-0.0f); // x * 1 + -0 is x, -0 included
    Buffer src = dev.create_buffer(in.size() * sizeof(float), Memory::HostVisible, "the f16 rounding probe");
    Buffer dst = dev.create_buffer(size_t(n) * 8, Memory::HostReadback, "the f16 rounding probe's output");
    dev.upload(src, 0, in.data(), in.size() * sizeof(float));
    const VkBuffer bufs[2] = {src.handle(), dst.handle()};
    OneShot probe(dev, dev.kernel("f16_round_probe", 2, 4), bufs, 2);
    probe.run(&n, sizeof n, (n + 63) / 64);
    dst.invalidate();
    const uint32_t *r = static_cast<const uint32_t *>(dst.mapped());
    for (uint32_t i = 0; i < n; ++i)
        if (r[2 * i] != r[2 * i + 1]) return false;
    return true;
}

} // namespace ternlm::vk
