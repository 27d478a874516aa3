// Whether a device's f32 -> f16 conversion rounds as exact.glsl's
// f16_round (to nearest, ties to even, subnormals kept, overflow to
// infinity). GLSL leaves the conversion's rounding to the implementation,
// so attention's f16 fold rounds in software unless the device shows, on
// values chosen to tell the modes apart, that its conversion gives the same
// bits (attention.comp's HW_F16_ROUND builds).
#pragma once

#include <vector>

#include "backend/vulkan/device.hpp"

namespace ternlm::vk {

// The probe's inputs: for every f16 exponent, values at and beside the
// ties between neighbouring f16 values (even and odd), subnormal ties,
// the edges of the range, and random values of every magnitude.
std::vector<float> f16_rounding_probe_values();

// Runs f16_round_probe.comp on those values: true where every value rounds
// to the same bits both ways.
bool probe_hw_f16_rounding(Device &dev);

} // namespace ternlm::vk
