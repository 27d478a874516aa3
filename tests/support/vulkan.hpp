// Vulkan tests need a device. Without one they fail: CI installs lavapipe
// (mesa-vulkan-drivers), so a missing device there is a broken set-up, not a
// reason to skip. Elsewhere, TERNLM_ALLOW_NO_VULKAN=1 turns the failure into
// a skip that says so.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#ifdef TERNLM_HAVE_VULKAN
#include "backend/vulkan/device.hpp"

namespace testsupport {

// Why opening a device fails, for the failure message.
inline std::string vulkan_open_error() {
    try {
        ternlm::vk::Device::open(-1);
    } catch (const std::exception &e) {
        return e.what();
    }
    return "list_devices() found none, yet a device opens";
}

inline bool vulkan_device_or_fail() {
    if (!ternlm::vk::list_devices().empty()) return true;
    INFO("opening one: " << vulkan_open_error());
    const char *allow = std::getenv("TERNLM_ALLOW_NO_VULKAN");
    if (allow && allow[0] == '1') {
        WARN("no Vulkan device found: SKIPPING this Vulkan test (TERNLM_ALLOW_NO_VULKAN=1)");
        return false;
    }
    FAIL("no Vulkan device found: install mesa-vulkan-drivers (lavapipe), or set TERNLM_ALLOW_NO_VULKAN=1 to skip");
    return false;
}

} // namespace testsupport
#endif
