// The compute kernels, compiled from kernels/*.comp by glslangValidator at
// build time and embedded in the library (see kernels/embed_spirv.cmake).
#pragma once

#include <cstddef>
#include <string>

namespace ternlm::vk {

struct SpirvBlob {
    const char *name;
    const unsigned char *data;
    size_t size;
};

// nullptr when no kernel has that name.
const SpirvBlob *find_spirv(const std::string &name);

} // namespace ternlm::vk
