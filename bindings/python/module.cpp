// module.cpp — ternlm._ternlm, the native half of the Python package.
//
// A thin layer over the C ABI (ternlm.h), nothing more: the Pythonic API
// (keyword arguments, iterators, context managers) lives in ternlm/*.py.
// Three rules hold throughout:
//   * every failing tern_* call raises the ternlm.errors class of its status;
//   * the GIL is released around anything that computes (load, prefill, decode,
//     sampling), so other Python threads run meanwhile;
//   * a context keeps its model alive (shared_ptr), so closing or dropping the
//     Python model while a context exists never frees weights under it. Each
//     handle has a mutex: two Python threads sharing one context take turns
//     instead of racing inside the engine.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ternlm/ternlm.h"

namespace py = pybind11;

namespace {

// A failed tern_* call; translated into a ternlm.errors exception below.
struct CallFailed {
    tern_status status;
    std::string message;
};

void check(tern_status s) {
    if (s != TERN_OK) throw CallFailed{s, tern_last_error()};
}

[[noreturn]] void closed(const char *what) { throw CallFailed{TERN_ERR_INVALID_ARGUMENT, std::string(what) + " is closed"}; }

// Runs f(buf, cap, &n) growing buf until the result fits (the ABI's buffer protocol).
template <typename T, typename F> std::vector<T> fill(F f, size_t guess) {
    std::vector<T> out(guess ? guess : 1);
    size_t n = 0;
    tern_status s = f(out.data(), out.size(), &n);
    if (s == TERN_ERR_INVALID_ARGUMENT && n > out.size()) {
        out.resize(n);
        s = f(out.data(), out.size(), &n);
    }
    check(s);
    out.resize(n);
    return out;
}

std::string as_string(const std::vector<char> &v) { return std::string(v.begin(), v.end()); }

// Text from the library may end inside a UTF-8 character only where the API
// says so (token pieces); decode leniently there rather than raise.
py::str utf8(const std::string &s) {
    return py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), "replace"));
}

struct ModelHandle {
    tern_model *m = nullptr;
    ~ModelHandle() { tern_model_free(m); }
};

class Model {
public:
    Model(const std::string &path, int backend, int n_threads, int n_gpu_layers, int device_index,
          py::object progress) {
        tern_model_params p = tern_model_default_params();
        p.backend = tern_backend(backend);
        p.n_threads = n_threads;
        p.n_gpu_layers = n_gpu_layers;
        p.device_index = device_index;
        if (!progress.is_none()) {
            p.progress = &Model::on_progress;
            p.progress_user_data = &progress;
        }
        auto h = std::make_shared<ModelHandle>();
        pending_ = nullptr;
        tern_status s;
        {
            py::gil_scoped_release nogil;
            s = tern_model_load(path.c_str(), &p, &h->m);
        }
        if (std::exception_ptr e = std::exchange(pending_, nullptr)) std::rethrow_exception(e);
        check(s);
        h_ = std::move(h);
    }

    std::shared_ptr<ModelHandle> handle() const {
        if (!h_) closed("model");
        return h_;
    }
    tern_model *get() const { return handle()->m; }
    void close() { h_.reset(); }
    bool is_closed() const { return !h_; }

    int n_vocab() const { return tern_model_n_vocab(get()); }
    int n_embd() const { return tern_model_n_embd(get()); }
    int n_layer() const { return tern_model_n_layer(get()); }
    int n_ctx_train() const { return tern_model_n_ctx_train(get()); }
    int backend() const { return int(tern_model_backend(get())); }
    std::string description() const { return tern_model_description(get()); }
    tern_token bos() const { return tern_token_bos(get()); }
    tern_token eos() const { return tern_token_eos(get()); }
    bool is_eog(tern_token t) const { return tern_token_is_eog(get(), t); }

    py::dict metadata() const {
        py::dict d;
        tern_model *m = get();
        for (int32_t i = 0, n = tern_model_meta_count(m); i < n; ++i)
            d[py::str(tern_model_meta_key(m, i))] = utf8(tern_model_meta_value(m, i));
        return d;
    }

    std::vector<tern_token> tokenize(const std::string &text, bool add_bos, bool parse_special) const {
        tern_model *m = get();
        py::gil_scoped_release nogil;
        return fill<tern_token>(
            [&](tern_token *b, size_t cap, size_t *n) {
                return tern_tokenize(m, text.data(), text.size(), add_bos, parse_special, b, cap, n);
            },
            text.size() + 2);
    }

    py::bytes piece(tern_token t, bool special) const {
        tern_model *m = get();
        auto v = fill<char>([&](char *b, size_t cap, size_t *n) { return tern_token_to_piece(m, t, special, b, cap, n); }, 32);
        return py::bytes(v.data(), v.size());
    }

    py::str detokenize(const std::vector<tern_token> &ids) const {
        tern_model *m = get();
        auto v = fill<char>(
            [&](char *b, size_t cap, size_t *n) { return tern_detokenize(m, ids.data(), ids.size(), b, cap, n); },
            ids.size() * 8 + 16);
        return utf8(as_string(v));
    }

private:
    // Called on the loading thread with the GIL released.
    static bool on_progress(float fraction, void *user) {
        py::gil_scoped_acquire gil;
        try {
            py::object r = (*static_cast<py::object *>(user))(fraction);
            return r.is_none() || r.cast<bool>();
        } catch (...) {
            // The exception is re-raised once tern_model_load has returned.
            pending_ = std::current_exception();
            return false;
        }
    }
    // The progress callback's exception, per loading thread.
    static thread_local std::exception_ptr pending_;

    std::shared_ptr<ModelHandle> h_;
};
thread_local std::exception_ptr Model::pending_;

class Context {
public:
    Context(const Model &model, uint32_t n_ctx, int n_threads, uint32_t n_batch, bool logits_all)
        : model_(model.handle()), n_vocab_(tern_model_n_vocab(model_->m)) {
        tern_context_params p = tern_context_default_params();
        p.n_ctx = n_ctx;
        p.n_threads = n_threads;
        p.n_batch = n_batch;
        p.logits_all = logits_all;
        check(tern_context_create(model_->m, &p, &c_));
    }
    ~Context() { close(); }

    void close() {
        std::lock_guard<std::mutex> lock(mu_);
        tern_context_free(c_);
        c_ = nullptr;
        model_.reset();
    }
    bool is_closed() const { return c_ == nullptr; }

    uint32_t n_ctx() const { return tern_context_n_ctx(get()); }
    uint32_t n_past() const { return tern_context_n_past(get()); }

    py::array_t<float> prefill(const std::vector<tern_token> &ids) {
        py::array_t<float> out(n_vocab_);
        float *dst = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            std::lock_guard<std::mutex> lock(mu_);
            check(tern_prefill(get(), ids.data(), ids.size()));
            copy_row(-1, dst);
        }
        return out;
    }
    // want_logits=false returns None and leaves them where the backend has
    // them (a GPU keeps a decode step's on the device; sampling needs none).
    py::object decode_step(tern_token t, bool want_logits) {
        py::array_t<float> out(want_logits ? n_vocab_ : 0);
        float *dst = out.mutable_data();
        {
            py::gil_scoped_release nogil;
            std::lock_guard<std::mutex> lock(mu_);
            check(tern_decode_step(get(), t));
            if (want_logits) copy_row(-1, dst);
        }
        return want_logits ? py::object(out) : py::none();
    }
    py::array_t<float> logits() const { return logits_ith(-1); }
    py::array_t<float> logits_ith(int32_t i) const {
        py::array_t<float> out(n_vocab_);
        float *dst = out.mutable_data();
        py::gil_scoped_release nogil;
        std::lock_guard<std::mutex> lock(mu_);
        copy_row(i, dst);
        return out;
    }
    void clear() {
        std::lock_guard<std::mutex> lock(mu_);
        tern_kv_clear(get());
    }
    void truncate(uint32_t n) {
        std::lock_guard<std::mutex> lock(mu_);
        check(tern_kv_truncate(get(), n));
    }

    tern_context *get() const {
        if (!c_) closed("context");
        return c_;
    }
    std::mutex &mutex() { return mu_; }

private:
    // Row i of the logits into dst, under the lock: a GPU backend may copy
    // them from the device here, and another thread's step must not swap
    // them meanwhile.
    void copy_row(int32_t i, float *dst) const {
        const float *p = tern_get_logits_ith(get(), i);
        if (!p && tern_context_n_past(get()) == 0)
            throw CallFailed{TERN_ERR_INVALID_ARGUMENT, "no logits yet: call prefill or decode_step first"};
        if (!p) check(TERN_ERR_INVALID_ARGUMENT);
        std::memcpy(dst, p, sizeof(float) * size_t(n_vocab_));
    }

public:

private:
    std::shared_ptr<ModelHandle> model_;
    tern_context *c_ = nullptr;
    int n_vocab_;
    mutable std::mutex mu_;
};

class Sampler {
public:
    Sampler(float temperature, int top_k, float top_p, float min_p, float repeat_penalty, int repeat_last_n,
            uint64_t seed) {
        tern_sampler_params p = tern_sampler_default_params();
        p.temperature = temperature;
        p.top_k = top_k;
        p.top_p = top_p;
        p.min_p = min_p;
        p.repeat_penalty = repeat_penalty;
        p.repeat_last_n = repeat_last_n;
        p.seed = seed;
        check(tern_sampler_create(&p, &s_));
    }
    ~Sampler() { tern_sampler_free(s_); }

    tern_token sample(Context &ctx) {
        tern_token t = -1;
        py::gil_scoped_release nogil;
        std::lock_guard<std::mutex> lock(ctx.mutex());
        check(tern_sampler_sample(s_, ctx.get(), &t));
        return t;
    }
    void accept(tern_token t) { tern_sampler_accept(s_, t); }
    void reset() { tern_sampler_reset(s_); }

private:
    tern_sampler *s_ = nullptr;
};

class Detokenizer {
public:
    explicit Detokenizer(const Model &model) : model_(model.handle()) { check(tern_detokenizer_create(model_->m, &d_)); }
    ~Detokenizer() { tern_detokenizer_free(d_); }

    py::str push(tern_token t) {
        auto v = fill<char>([&](char *b, size_t cap, size_t *n) { return tern_detokenizer_push(d_, t, b, cap, n); }, 64);
        return utf8(as_string(v));
    }
    py::str flush() {
        auto v = fill<char>([&](char *b, size_t cap, size_t *n) { return tern_detokenizer_flush(d_, b, cap, n); }, 16);
        return utf8(as_string(v));
    }

private:
    std::shared_ptr<ModelHandle> model_;
    tern_detokenizer *d_ = nullptr;
};

void translate(std::exception_ptr p) {
    try {
        if (p) std::rethrow_exception(p);
    } catch (const CallFailed &e) {
        py::object err = py::module_::import("ternlm.errors").attr("from_status")(int(e.status), e.message);
        PyErr_SetObject(reinterpret_cast<PyObject *>(Py_TYPE(err.ptr())), err.ptr());
    }
}

} // namespace

PYBIND11_MODULE(_ternlm, mod) {
    mod.doc() = "Native layer of ternlm (use the ternlm package, not this module).";
    py::register_exception_translator(&translate);

    mod.def("version", [] { return std::string(tern_version()); });
    mod.def("abi_version", [] { return tern_abi_version(); });
    mod.def("status_name", [](int s) { return std::string(tern_status_name(tern_status(s))); });

    py::class_<Model>(mod, "Model")
        .def(py::init<const std::string &, int, int, int, int, py::object>(), py::arg("path"), py::arg("backend"),
             py::arg("n_threads"), py::arg("n_gpu_layers"), py::arg("device_index"), py::arg("progress"))
        .def("close", &Model::close)
        .def_property_readonly("closed", &Model::is_closed)
        .def_property_readonly("n_vocab", &Model::n_vocab)
        .def_property_readonly("n_embd", &Model::n_embd)
        .def_property_readonly("n_layer", &Model::n_layer)
        .def_property_readonly("n_ctx_train", &Model::n_ctx_train)
        .def_property_readonly("backend", &Model::backend)
        .def_property_readonly("description", &Model::description,
                               "Where and how the weights run, e.g. 'cpu, 2 threads' or 'vulkan: <device>'")
        .def_property_readonly("bos", &Model::bos)
        .def_property_readonly("eos", &Model::eos)
        .def("is_eog", &Model::is_eog)
        .def("metadata", &Model::metadata)
        .def("tokenize", &Model::tokenize)
        .def("piece", &Model::piece)
        .def("detokenize", &Model::detokenize);

    py::class_<Context>(mod, "Context")
        .def(py::init<const Model &, uint32_t, int, uint32_t, bool>())
        .def("close", &Context::close)
        .def_property_readonly("closed", &Context::is_closed)
        .def_property_readonly("n_ctx", &Context::n_ctx)
        .def_property_readonly("n_past", &Context::n_past)
        .def("prefill", &Context::prefill)
        .def("decode_step", &Context::decode_step, py::arg("token"), py::arg("want_logits") = true)
        .def("logits", &Context::logits)
        .def("logits_ith", &Context::logits_ith)
        .def("clear", &Context::clear)
        .def("truncate", &Context::truncate);

    py::class_<Sampler>(mod, "Sampler")
        .def(py::init<float, int, float, float, float, int, uint64_t>())
        .def("sample", &Sampler::sample)
        .def("accept", &Sampler::accept)
        .def("reset", &Sampler::reset);

    py::class_<Detokenizer>(mod, "Detokenizer")
        .def(py::init<const Model &>())
        .def("push", &Detokenizer::push)
        .def("flush", &Detokenizer::flush);
}
