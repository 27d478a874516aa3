// GGUF v3 writer: header and tensor infos, then each tensor's bytes, aligned.
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/error.hpp"
#include "gguf/gguf.hpp"

namespace ternlm::gguf {

namespace {

struct Buf {
    std::vector<uint8_t> b;
    void put_bytes(const void *p, size_t n) {
        const size_t at = b.size();
        b.resize(at + n);
        if (n) std::memcpy(b.data() + at, p, n);
    }
    template <typename T> void put(T v) { put_bytes(&v, sizeof(T)); }
    void put_str(const std::string &s) {
        put<uint64_t>(s.size());
        put_bytes(s.data(), s.size());
    }
};

void put_scalar(Buf &o, const Value &v) {
    switch (v.type) {
    case ValueType::U8: o.put<uint8_t>(uint8_t(v.u)); break;
    case ValueType::I8: o.put<int8_t>(int8_t(v.i)); break;
    case ValueType::U16: o.put<uint16_t>(uint16_t(v.u)); break;
    case ValueType::I16: o.put<int16_t>(int16_t(v.i)); break;
    case ValueType::U32: o.put<uint32_t>(uint32_t(v.u)); break;
    case ValueType::I32: o.put<int32_t>(int32_t(v.i)); break;
    case ValueType::U64: o.put<uint64_t>(v.u); break;
    case ValueType::I64: o.put<int64_t>(v.i); break;
    case ValueType::F32: o.put<float>(float(v.f)); break;
    case ValueType::F64: o.put<double>(v.f); break;
    case ValueType::BOOL: o.put<uint8_t>(v.u ? 1 : 0); break;
    case ValueType::STRING: o.put_str(v.str); break;
    case ValueType::ARRAY: break;
    }
}

void put_value(Buf &o, const Value &v) {
    if (v.type != ValueType::ARRAY) {
        put_scalar(o, v);
        return;
    }
    o.put<uint32_t>(uint32_t(v.elem_type));
    o.put<uint64_t>(v.count);
    if (v.elem_type == ValueType::STRING) {
        for (const std::string &s : v.strs) o.put_str(s);
    } else if (v.elem_type == ValueType::ARRAY) {
        for (const Value &a : v.arrs) put_value(o, a);
    } else {
        o.put_bytes(v.raw.data(), v.raw.size());
    }
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

template <typename T> Value scalar_array(ValueType et, const std::vector<T> &v) {
    Value x;
    x.type = ValueType::ARRAY;
    x.elem_type = et;
    x.count = v.size();
    x.raw.resize(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(x.raw.data(), v.data(), x.raw.size());
    return x;
}

} // namespace

void Writer::set(const std::string &key, const Value &v) {
    for (auto &kv : kv_)
        if (kv.first == key) {
            kv.second = v;
            return;
        }
    kv_.emplace_back(key, v);
}
void Writer::set_u32(const std::string &k, uint32_t v) { set(k, make_u32(v)); }
void Writer::set_i32(const std::string &k, int32_t v) { set(k, make_i32(v)); }
void Writer::set_f32(const std::string &k, float v) { set(k, make_f32(v)); }
void Writer::set_bool(const std::string &k, bool v) { set(k, make_bool(v)); }
void Writer::set_str(const std::string &k, const std::string &v) { set(k, make_str(v)); }
void Writer::set_str_array(const std::string &k, const std::vector<std::string> &v) {
    Value x;
    x.type = ValueType::ARRAY;
    x.elem_type = ValueType::STRING;
    x.count = v.size();
    x.strs = v;
    set(k, x);
}
void Writer::set_f32_array(const std::string &k, const std::vector<float> &v) {
    set(k, scalar_array(ValueType::F32, v));
}
void Writer::set_i32_array(const std::string &k, const std::vector<int32_t> &v) {
    set(k, scalar_array(ValueType::I32, v));
}

void Writer::add_tensor(const std::string &name, GgmlType type, std::vector<int64_t> ne, Fill fill) {
    if (ne.empty() || ne.size() > 4) fail(TERN_ERR_INVALID_ARGUMENT, "tensor '%s': 1..4 dims", name.c_str());
    uint64_t row = 0;
    if (!row_size_checked(type, ne[0], &row))
        fail(TERN_ERR_INVALID_ARGUMENT, "tensor '%s': row of %lld is not whole %s blocks", name.c_str(),
             (long long)ne[0], type_name(type));
    uint64_t rows = 1;
    for (size_t d = 1; d < ne.size(); ++d) rows *= uint64_t(ne[d]);
    tensors_.push_back({name, type, std::move(ne), row * rows + tensor_tail_bytes(type), std::move(fill)});
}

void Writer::add_tensor_bytes(const std::string &name, GgmlType type, std::vector<int64_t> ne,
                              std::vector<uint8_t> bytes) {
    auto shared = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
    add_tensor(name, type, std::move(ne), [shared, name](uint8_t *dst, size_t n) {
        if (n != shared->size())
            fail(TERN_ERR_INVALID_ARGUMENT, "tensor '%s': %zu bytes given, %zu needed", name.c_str(),
                 shared->size(), n);
        std::memcpy(dst, shared->data(), n);
    });
}

std::vector<uint8_t> Writer::header() const {
    Buf o;
    o.put_bytes("GGUF", 4);
    o.put<uint32_t>(3);
    o.put<uint64_t>(tensors_.size());
    bool has_align = false;
    for (auto &kv : kv_) has_align |= kv.first == "general.alignment";
    o.put<uint64_t>(kv_.size() + (has_align || alignment_ == 32 ? 0 : 1));
    for (auto &kv : kv_) {
        o.put_str(kv.first);
        o.put<uint32_t>(uint32_t(kv.second.type));
        put_value(o, kv.second);
    }
    if (!has_align && alignment_ != 32) {
        o.put_str("general.alignment");
        o.put<uint32_t>(uint32_t(ValueType::U32));
        o.put<uint32_t>(alignment_);
    }
    uint64_t offset = 0;
    for (const PendingTensor &t : tensors_) {
        o.put_str(t.name);
        o.put<uint32_t>(uint32_t(t.ne.size()));
        for (int64_t n : t.ne) o.put<uint64_t>(uint64_t(n));
        o.put<uint32_t>(uint32_t(t.type));
        o.put<uint64_t>(offset);
        offset = align_up(offset + t.nbytes, alignment_);
    }
    o.b.resize(align_up(o.b.size(), alignment_), 0);
    return o.b;
}

void Writer::write(const std::string &path) const {
    FILE *f = std::fopen(path.c_str(), "wb");
    if (!f) fail(TERN_ERR_IO, "cannot create '%s': %s", path.c_str(), std::strerror(errno));
    std::vector<uint8_t> h = header();
    bool ok = std::fwrite(h.data(), 1, h.size(), f) == h.size();
    std::vector<uint8_t> buf;
    for (const PendingTensor &t : tensors_) {
        if (!ok) break;
        buf.assign(size_t(align_up(t.nbytes, alignment_)), 0);
        t.fill(buf.data(), size_t(t.nbytes));
        ok = std::fwrite(buf.data(), 1, buf.size(), f) == buf.size();
    }
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) fail(TERN_ERR_IO, "error writing '%s'", path.c_str());
}

std::vector<uint8_t> Writer::to_bytes() const {
    std::vector<uint8_t> out = header();
    for (const PendingTensor &t : tensors_) {
        size_t at = out.size();
        out.resize(at + size_t(align_up(t.nbytes, alignment_)), 0);
        t.fill(out.data() + at, size_t(t.nbytes));
    }
    return out;
}

} // namespace ternlm::gguf
