// Boundary helpers of the C ABI: exceptions become status codes with the
// message in a thread-local, and size-prefixed parameter structs from older
// callers are merged over the defaults.
#pragma once

#include <cstring>
#include <new>
#include <string>

#include "common/error.hpp"

namespace ternlm::abi {

void set_last_error(const std::string &msg);
void clear_last_error();

// Runs fn, mapping every exception to a status.
template <typename Fn> tern_status guarded(Fn &&fn) {
    try {
        fn();
        return TERN_OK;
    } catch (const Failure &e) {
        set_last_error(e.what());
        return e.status();
    } catch (const std::bad_alloc &) {
        set_last_error("out of memory");
        return TERN_ERR_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        set_last_error(e.what());
        return TERN_ERR_BACKEND;
    } catch (...) {
        set_last_error("unknown internal error");
        return TERN_ERR_BACKEND;
    }
}

// Copies a caller's struct of p->size bytes over the defaults; a size smaller
// than the first field or larger than we know is rejected.
template <typename T> T merge_params(const T *p, T defaults, const char *what) {
    if (!p) return defaults;
    if (p->size < sizeof(uint32_t) || p->size > sizeof(T))
        fail(TERN_ERR_INVALID_ARGUMENT, "%s.size is %u; use %s_default_params()", what, p->size, what);
    T out = defaults;
    std::memcpy(&out, p, p->size);
    out.size = sizeof(T);
    return out;
}

// An enum field of a caller's struct, as the int it holds: a C caller may
// store any int there, and loading one outside the enumerators' range as
// the C++ enum is undefined behaviour (UBSan reports it), so the bytes are
// read as an int and checked before any conversion.
template <typename E> int32_t enum_field(const E &field) {
    static_assert(sizeof(E) == sizeof(int32_t), "the ABI's enums are ints");
    int32_t v;
    std::memcpy(&v, &field, sizeof v);
    return v;
}

// Buffer protocol of the ABI: copy up to cap bytes; n_out gets the full size;
// fail when cap is too small.
template <typename T> void copy_out(const T *src, size_t n, T *dst, size_t cap, size_t *n_out, const char *what) {
    if (n_out) *n_out = n;
    if (n > cap) fail(TERN_ERR_INVALID_ARGUMENT, "%s: buffer holds %zu, %zu needed", what, cap, n);
    if (n) std::memcpy(dst, src, n * sizeof(T));
}

} // namespace ternlm::abi
