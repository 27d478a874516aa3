// GGUF reader. Layout (little-endian):
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x (string key, u32 type, value)
//   n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset)
//   padding to general.alignment | tensor data
// Strings are u64 length + bytes. Arrays are u32 elem type + u64 count + elems.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.hpp"
#include "gguf/gguf.hpp"

namespace ternlm::gguf {

namespace {

constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 8;
constexpr uint64_t kMaxStringLen = 1u << 30;

// Bounds-checked reads over the mapped bytes.
class Cursor {
public:
    Cursor(const uint8_t *base, size_t size) : base_(base), size_(size) {}
    uint64_t pos() const { return pos_; }
    uint64_t remaining() const { return size_ - pos_; }

    void need(uint64_t n, const char *what) const {
        if (n > remaining())
            fail(TERN_ERR_FORMAT,
                 "GGUF: truncated file: %s at offset %llu needs %llu bytes, %llu remain", what,
                 (unsigned long long)pos_, (unsigned long long)n, (unsigned long long)remaining());
    }
    template <typename T> T read(const char *what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, base_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    const uint8_t *take(uint64_t n, const char *what) {
        need(n, what);
        const uint8_t *p = base_ + pos_;
        pos_ += n;
        return p;
    }
    std::string read_string(const char *what) {
        uint64_t at = pos_;
        uint64_t len = read<uint64_t>(what);
        if (len > kMaxStringLen || len > remaining())
            fail(TERN_ERR_FORMAT, "GGUF: %s at offset %llu has length %llu, past the end of the file",
                 what, (unsigned long long)at, (unsigned long long)len);
        const uint8_t *p = take(len, what);
        return std::string(reinterpret_cast<const char *>(p), size_t(len));
    }

private:
    const uint8_t *base_;
    size_t size_;
    uint64_t pos_ = 0;
};

bool valid_value_type(uint32_t t) { return t <= uint32_t(ValueType::F64); }

Value read_value(Cursor &cur, ValueType type, const std::string &key, int depth);

Value read_array(Cursor &cur, const std::string &key, int depth) {
    if (depth >= kMaxArrayDepth)
        fail(TERN_ERR_FORMAT, "GGUF: metadata '%s' nests arrays deeper than %d (offset %llu)",
             key.c_str(), kMaxArrayDepth, (unsigned long long)cur.pos());
    Value v;
    v.type = ValueType::ARRAY;
    uint64_t at = cur.pos();
    uint32_t et = cur.read<uint32_t>("array element type");
    if (!valid_value_type(et))
        fail(TERN_ERR_FORMAT, "GGUF: metadata '%s' has unknown array element type %u at offset %llu",
             key.c_str(), et, (unsigned long long)at);
    v.elem_type = ValueType(et);
    uint64_t count = cur.read<uint64_t>("array count");
    v.count = count;
    size_t esz = value_type_size(v.elem_type);
    // Each element takes at least esz bytes (8 for a string's length, 12 for
    // an array's header), so a count the file cannot hold is rejected up front.
    uint64_t min_elem = esz ? esz : (v.elem_type == ValueType::STRING ? 8 : 12);
    if (count > cur.remaining() / min_elem)
        fail(TERN_ERR_FORMAT,
             "GGUF: metadata '%s' array count %llu at offset %llu exceeds the %llu bytes left in the file",
             key.c_str(), (unsigned long long)count, (unsigned long long)at,
             (unsigned long long)cur.remaining());
    if (esz) {
        const uint8_t *p = cur.take(count * esz, "array data");
        v.raw.assign(p, p + count * esz);
    } else if (v.elem_type == ValueType::STRING) {
        v.strs.reserve(size_t(count));
        for (uint64_t k = 0; k < count; ++k) v.strs.push_back(cur.read_string("array string"));
    } else {
        v.arrs.reserve(size_t(count));
        for (uint64_t k = 0; k < count; ++k) v.arrs.push_back(read_array(cur, key, depth + 1));
    }
    return v;
}

Value read_value(Cursor &cur, ValueType type, const std::string &key, int depth) {
    Value v;
    v.type = type;
    switch (type) {
    case ValueType::U8: v.u = cur.read<uint8_t>("u8"); break;
    case ValueType::I8: v.i = cur.read<int8_t>("i8"); break;
    case ValueType::U16: v.u = cur.read<uint16_t>("u16"); break;
    case ValueType::I16: v.i = cur.read<int16_t>("i16"); break;
    case ValueType::U32: v.u = cur.read<uint32_t>("u32"); break;
    case ValueType::I32: v.i = cur.read<int32_t>("i32"); break;
    case ValueType::U64: v.u = cur.read<uint64_t>("u64"); break;
    case ValueType::I64: v.i = cur.read<int64_t>("i64"); break;
    case ValueType::F32: v.f = cur.read<float>("f32"); break;
    case ValueType::F64: v.f = cur.read<double>("f64"); break;
    case ValueType::BOOL: {
        uint64_t at = cur.pos();
        uint8_t b = cur.read<uint8_t>("bool");
        if (b > 1)
            fail(TERN_ERR_FORMAT, "GGUF: metadata '%s' bool at offset %llu has value %u", key.c_str(),
                 (unsigned long long)at, b);
        v.u = b;
        break;
    }
    case ValueType::STRING: v.str = cur.read_string("string value"); break;
    case ValueType::ARRAY: return read_array(cur, key, depth);
    }
    return v;
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

} // namespace

std::unique_ptr<File> File::open(const std::string &path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(TERN_ERR_IO, "cannot open '%s': %s", path.c_str(), std::strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        ::close(fd);
        fail(TERN_ERR_IO, "'%s' is not a regular file%s%s", path.c_str(), e ? ": " : "",
             e ? std::strerror(e) : "");
    }
    std::unique_ptr<File> f(new File());
    f->size_ = size_t(st.st_size);
    if (f->size_ == 0) {
        ::close(fd);
        fail(TERN_ERR_FORMAT, "GGUF: '%s' is empty", path.c_str());
    }
    void *p = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) fail(TERN_ERR_IO, "cannot mmap '%s': %s", path.c_str(), std::strerror(errno));
    f->mapping_ = p;
    f->base_ = static_cast<const uint8_t *>(p);
    f->parse();
    return f;
}

std::unique_ptr<File> File::from_memory(const uint8_t *data, size_t size) {
    std::unique_ptr<File> f(new File());
    f->base_ = data;
    f->size_ = size;
    f->parse();
    return f;
}

File::~File() {
    if (mapping_) munmap(mapping_, size_);
}

void File::parse() {
    Cursor cur(base_, size_);
    const uint8_t *magic = cur.take(4, "magic");
    if (std::memcmp(magic, "GGUF", 4) != 0)
        fail(TERN_ERR_FORMAT, "GGUF: bad magic at offset 0 (not a GGUF file)");
    version_ = cur.read<uint32_t>("version");
    if (version_ == 1)
        fail(TERN_ERR_UNSUPPORTED, "GGUF: version 1 files are not supported (re-convert to v3)");
    if (version_ != 2 && version_ != 3)
        fail(TERN_ERR_FORMAT, "GGUF: unknown version %u at offset 4", version_);
    uint64_t n_tensors = cur.read<uint64_t>("n_tensors");
    uint64_t n_kv = cur.read<uint64_t>("n_kv");
    // Smallest records: a kv is 8 (key len) + 4 (type) + 1; a tensor info 8+4+8+4+8.
    if (n_kv > cur.remaining() / 13)
        fail(TERN_ERR_FORMAT, "GGUF: n_kv %llu at offset 16 exceeds what the file can hold",
             (unsigned long long)n_kv);
    if (n_tensors > cur.remaining() / 32)
        fail(TERN_ERR_FORMAT, "GGUF: n_tensors %llu at offset 8 exceeds what the file can hold",
             (unsigned long long)n_tensors);

    kv_.reserve(size_t(n_kv));
    for (uint64_t k = 0; k < n_kv; ++k) {
        uint64_t at = cur.pos();
        std::string key = cur.read_string("metadata key");
        uint32_t t = cur.read<uint32_t>("metadata type");
        if (!valid_value_type(t))
            fail(TERN_ERR_FORMAT, "GGUF: metadata '%s' (offset %llu) has unknown value type %u",
                 key.c_str(), (unsigned long long)at, t);
        if (kv_index_.count(key))
            fail(TERN_ERR_FORMAT, "GGUF: duplicate metadata key '%s' at offset %llu", key.c_str(),
                 (unsigned long long)at);
        Value v = read_value(cur, ValueType(t), key, 0);
        kv_index_[key] = kv_.size();
        kv_.emplace_back(std::move(key), std::move(v));
    }

    if (const Value *a = find("general.alignment")) {
        if (a->type != ValueType::U32 || a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > (1u << 20))
            fail(TERN_ERR_FORMAT, "GGUF: general.alignment must be a power-of-two u32, got %s",
                 a->to_string().c_str());
        alignment_ = uint32_t(a->u);
    }

    tensors_.reserve(size_t(n_tensors));
    for (uint64_t k = 0; k < n_tensors; ++k) {
        TensorInfo ti;
        ti.info_offset = cur.pos();
        ti.name = cur.read_string("tensor name");
        const char *nm = ti.name.c_str();
        unsigned long long at = ti.info_offset;
        ti.n_dims = cur.read<uint32_t>("tensor n_dims");
        if (ti.n_dims == 0 || ti.n_dims > kMaxDims)
            fail(TERN_ERR_FORMAT, "GGUF: tensor '%s' (offset %llu) has n_dims %u (must be 1..%u)", nm, at,
                 ti.n_dims, kMaxDims);
        uint64_t n_el = 1;
        for (uint32_t d = 0; d < ti.n_dims; ++d) {
            uint64_t ne = cur.read<uint64_t>("tensor dimension");
            if (ne == 0 || ne > uint64_t(INT64_MAX) || n_el > uint64_t(INT64_MAX) / ne)
                fail(TERN_ERR_FORMAT, "GGUF: tensor '%s' (offset %llu) has an invalid dimension %u = %llu",
                     nm, at, d, (unsigned long long)ne);
            n_el *= ne;
            ti.ne[d] = int64_t(ne);
        }
        uint32_t type = cur.read<uint32_t>("tensor type");
        const TypeTraits &tr = type_traits(type);
        if (!tr.name)
            fail(TERN_ERR_FORMAT, "GGUF: tensor '%s' (offset %llu) has unknown type id %u", nm, at, type);
        ti.type = GgmlType(type);
        if (tr.type_size == 0)
            fail(TERN_ERR_UNSUPPORTED, "GGUF: tensor '%s' has type %s, which ternlm does not support", nm,
                 tr.name);
        if (ti.ne[0] % tr.block_size != 0)
            fail(TERN_ERR_FORMAT,
                 "GGUF: tensor '%s' (offset %llu) row length %lld is not a multiple of the %s block "
                 "size %lld",
                 nm, at, (long long)ti.ne[0], tr.name, (long long)tr.block_size);
        uint64_t row = 0;
        if (!row_size_checked(ti.type, ti.ne[0], &row) || (row && uint64_t(ti.n_rows()) > UINT64_MAX / row))
            fail(TERN_ERR_FORMAT, "GGUF: tensor '%s' (offset %llu) byte size overflows", nm, at);
        ti.nbytes = row * uint64_t(ti.n_rows()) + tensor_tail_bytes(ti.type); // no overflow: row*rows < 2^64 - 32 in any file that fits
        ti.offset = cur.read<uint64_t>("tensor offset");
        if (ti.offset % alignment_ != 0)
            fail(TERN_ERR_FORMAT, "GGUF: tensor '%s' (offset %llu) data offset %llu is not aligned to %u",
                 nm, at, (unsigned long long)ti.offset, alignment_);
        if (tensor_index_.count(ti.name))
            fail(TERN_ERR_FORMAT, "GGUF: duplicate tensor name '%s' at offset %llu", nm, at);
        tensor_index_[ti.name] = tensors_.size();
        tensors_.push_back(std::move(ti));
    }

    data_offset_ = align_up(cur.pos(), alignment_);
    if (data_offset_ > size_ && !tensors_.empty())
        fail(TERN_ERR_FORMAT, "GGUF: data section at offset %llu starts past the end of the file (%zu bytes)",
             (unsigned long long)data_offset_, size_);
    const uint64_t data_size = size_ > data_offset_ ? size_ - data_offset_ : 0;

    // Every tensor lies inside the data section and no two overlap.
    std::vector<const TensorInfo *> by_offset;
    for (TensorInfo &ti : tensors_) {
        if (ti.offset > data_size || ti.nbytes > data_size - ti.offset)
            fail(TERN_ERR_FORMAT,
                 "GGUF: tensor '%s' (info at offset %llu) data [%llu, +%llu) runs past the end of the "
                 "file (data section holds %llu bytes)",
                 ti.name.c_str(), (unsigned long long)ti.info_offset, (unsigned long long)ti.offset,
                 (unsigned long long)ti.nbytes, (unsigned long long)data_size);
        ti.data = base_ + data_offset_ + ti.offset;
        by_offset.push_back(&ti);
    }
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo *a, const TensorInfo *b) { return a->offset < b->offset; });
    for (size_t k = 1; k < by_offset.size(); ++k) {
        const TensorInfo *a = by_offset[k - 1], *b = by_offset[k];
        if (a->offset + a->nbytes > b->offset)
            fail(TERN_ERR_FORMAT, "GGUF: tensors '%s' and '%s' overlap (data offsets %llu and %llu)",
                 a->name.c_str(), b->name.c_str(), (unsigned long long)a->offset,
                 (unsigned long long)b->offset);
    }
}

const Value *File::find(const std::string &key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo *File::find_tensor(const std::string &name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string File::get_string(const std::string &key, const std::string &def) const {
    const Value *v = find(key);
    if (!v) return def;
    if (v->type != ValueType::STRING)
        fail(TERN_ERR_FORMAT, "GGUF: metadata '%s' should be a string, is %s", key.c_str(),
             value_type_name(v->type));
    return v->str;
}

int64_t File::get_int(const std::string &key, int64_t def) const {
    const Value *v = find(key);
    if (!v) return def;
    if (!v->is_integer())
        fail(TERN_ERR_FORMAT, "GGUF: metadata '%s' should be an integer, is %s", key.c_str(),
             value_type_name(v->type));
    return v->as_int();
}

double File::get_float(const std::string &key, double def) const {
    const Value *v = find(key);
    if (!v) return def;
    if (!v->is_float() && !v->is_integer())
        fail(TERN_ERR_FORMAT, "GGUF: metadata '%s' should be a number, is %s", key.c_str(),
             value_type_name(v->type));
    return v->as_double();
}

bool File::get_bool(const std::string &key, bool def) const {
    const Value *v = find(key);
    if (!v) return def;
    if (v->type != ValueType::BOOL)
        fail(TERN_ERR_FORMAT, "GGUF: metadata '%s' should be a bool, is %s", key.c_str(),
             value_type_name(v->type));
    return v->u != 0;
}

} // namespace ternlm::gguf
