/*
 * ternlm.h — the C ABI of ternlm, an embeddable LLM inference library.
 *
 * This is the only interface with an ABI promise. Rules that hold for every call:
 *  - Functions that can fail return tern_status; results go to out-parameters.
 *    On failure, tern_last_error() gives a message for the calling thread.
 *  - Handles are opaque. *_free(NULL) is a no-op.
 *  - Parameter structs begin with `uint32_t size`; get them from
 *    *_default_params(), which fills `size`, so newer libraries accept older
 *    callers' smaller structs.
 *  - No C++ type or exception crosses this boundary. C99.
 *  - A model may be shared by several contexts and threads; a context or a
 *    sampler must be used by one thread at a time.
 */
#ifndef TERNLM_H
#define TERNLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(TERNLM_BUILDING)
#    define TERN_API __declspec(dllexport)
#  else
#    define TERN_API
#  endif
#else
#  define TERN_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when a change breaks binary compatibility (the SONAME follows it). */
#define TERN_ABI_VERSION 1

typedef int32_t tern_token;

typedef enum {
    TERN_OK = 0,
    TERN_ERR_INVALID_ARGUMENT, /* NULL handle, bad token id, out-of-range value      */
    TERN_ERR_IO,               /* file missing, unreadable, mmap failed              */
    TERN_ERR_FORMAT,           /* corrupt, truncated or hostile GGUF                 */
    TERN_ERR_UNSUPPORTED,      /* valid file, but an architecture/type we lack       */
    TERN_ERR_OUT_OF_MEMORY,
    TERN_ERR_BACKEND,          /* the compute backend failed (e.g. Vulkan error)     */
    TERN_ERR_CONTEXT_FULL,     /* the tokens do not fit in the context's n_ctx       */
    TERN_ERR_CANCELLED         /* a progress callback returned false                 */
} tern_status;

typedef enum {
    TERN_BACKEND_AUTO = 0, /* Vulkan when a GPU is present, else CPU */
    TERN_BACKEND_CPU,
    TERN_BACKEND_VULKAN
} tern_backend;

typedef enum {
    TERN_KV_F16 = 0 /* the default and, for now, only KV-cache type */
} tern_kv_type;

typedef struct tern_model tern_model;
typedef struct tern_context tern_context;
typedef struct tern_sampler tern_sampler;
typedef struct tern_detokenizer tern_detokenizer;

/* Progress of long work (model load): progress in [0, 1].
 * Return false to cancel; the call then fails with TERN_ERR_CANCELLED. */
typedef bool (*tern_progress_fn)(float progress, void *user_data);

/* ------------------------------------------------------------------------ */
/* Library                                                                   */
/* ------------------------------------------------------------------------ */

/* "MAJOR.MINOR.PATCH" of the library. Static storage. */
TERN_API const char *tern_version(void);

/* TERN_ABI_VERSION the library was built with. */
TERN_API uint32_t tern_abi_version(void);

/* Message of the calling thread's last failed call; "" if none.
 * Valid until the next failing call on the same thread. */
TERN_API const char *tern_last_error(void);

/* Name of a status code ("TERN_ERR_FORMAT", ...). Static storage. */
TERN_API const char *tern_status_name(tern_status status);

/* ------------------------------------------------------------------------ */
/* Model                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct tern_model_params {
    uint32_t size;              /* sizeof(tern_model_params), set by the default  */
    tern_backend backend;       /* default TERN_BACKEND_AUTO                      */
    int32_t n_threads;          /* CPU threads; 0 = number of cores               */
    int32_t n_gpu_layers;       /* layers on the GPU (the last ones, with the     */
                                /* output; the first run on the CPU); -1 = all;  */
                                /* 0 = the CPU backend                           */
    int32_t device_index;       /* Vulkan device; -1 = pick the best              */
    tern_progress_fn progress;  /* may be NULL                                    */
    void *progress_user_data;
} tern_model_params;

TERN_API tern_model_params tern_model_default_params(void);

/* Memory-maps and validates a GGUF file and builds its tokenizer.
 * p may be NULL (defaults). On success *out owns the model; free it with
 * tern_model_free after every context made from it is freed.
 * Errors: TERN_ERR_IO (cannot open/map), TERN_ERR_FORMAT (message names the
 * field and file offset), TERN_ERR_UNSUPPORTED (architecture or weight type),
 * TERN_ERR_CANCELLED (progress returned false). */
TERN_API tern_status tern_model_load(const char *path, const tern_model_params *p, tern_model **out);

TERN_API void tern_model_free(tern_model *m);

/* Hyper-parameters. Return 0 for a NULL model. */
TERN_API int32_t tern_model_n_vocab(const tern_model *m);
TERN_API int32_t tern_model_n_embd(const tern_model *m);
TERN_API int32_t tern_model_n_layer(const tern_model *m);
TERN_API int32_t tern_model_n_ctx_train(const tern_model *m);

/* Backend the model's weights run on (after AUTO is resolved). */
TERN_API tern_backend tern_model_backend(const tern_model *m);

/* Where and how the weights run, one line for load-time output: "cpu, 2
 * threads" (plus what was repacked at load for the CPU kernels, e.g. "; 57
 * matrices (39.8 MB) repacked for the CPU kernels (57 into 64-row
 * lookup-table tiles, 0 into 4-row interleaved blocks, 0 into 8-row
 * tiles)") or "vulkan:
 * <device name> (<device type>)". Lives as long as the model; "" for a
 * NULL model. */
TERN_API const char *tern_model_description(const tern_model *m);

/* Metadata of the GGUF file as text (arrays are summarised).
 * Count, then key and value by index in [0, count). The returned strings
 * live as long as the model. NULL for a bad index. */
TERN_API int32_t tern_model_meta_count(const tern_model *m);
TERN_API const char *tern_model_meta_key(const tern_model *m, int32_t i);
TERN_API const char *tern_model_meta_value(const tern_model *m, int32_t i);

/* ------------------------------------------------------------------------ */
/* Tokenizer                                                                 */
/* ------------------------------------------------------------------------ */

/* Special tokens; -1 when the model has none. */
TERN_API tern_token tern_token_bos(const tern_model *m);
TERN_API tern_token tern_token_eos(const tern_model *m);
/* True for tokens that end generation (EOS, EOT, ...). */
TERN_API bool tern_token_is_eog(const tern_model *m, tern_token t);

/* Text (len bytes, UTF-8; need not be NUL-terminated) to token ids.
 * add_bos       : prepend BOS when the model asks for it (tokenizer.ggml.add_bos_token,
 *                 default true for SentencePiece and Llama 3 BPE models).
 * parse_special : text like "<s>" becomes the control token, not its characters.
 * Writes at most cap ids to out and the full count to *n_out. When cap is too
 * small, fails with TERN_ERR_INVALID_ARGUMENT and *n_out says how many are
 * needed (call again with a larger buffer; out may be NULL when cap is 0). */
TERN_API tern_status tern_tokenize(const tern_model *m, const char *text, size_t len, bool add_bos,
                                   bool parse_special, tern_token *out, size_t cap, size_t *n_out);

/* The bytes of one token (may be part of a UTF-8 character: SentencePiece byte
 * tokens and byte-level BPE tokens can split one).
 * special: render control tokens as their text ("</s>") instead of nothing.
 * Same buffer protocol as tern_tokenize. buf is not NUL-terminated. */
TERN_API tern_status tern_token_to_piece(const tern_model *m, tern_token t, bool special, char *buf,
                                         size_t cap, size_t *n_out);

/* Tokens to text, as a whole: the leading space SentencePiece adds is removed
 * and control tokens are skipped. Same buffer protocol as tern_tokenize. */
TERN_API tern_status tern_detokenize(const tern_model *m, const tern_token *tokens, size_t n, char *buf,
                                     size_t cap, size_t *n_out);

/* Streaming detokenizer: push tokens one by one and get back only complete
 * UTF-8 characters; a character whose bytes span several tokens is held until
 * it is whole. Invalid byte sequences come out as U+FFFD. */
TERN_API tern_status tern_detokenizer_create(const tern_model *m, tern_detokenizer **out);
TERN_API void tern_detokenizer_free(tern_detokenizer *d);
/* Appends token t; writes the newly complete text (buffer protocol as above;
 * on a too-small buffer nothing is consumed). */
TERN_API tern_status tern_detokenizer_push(tern_detokenizer *d, tern_token t, char *buf, size_t cap,
                                           size_t *n_out);
/* Writes what is held back (an incomplete character becomes U+FFFD) and resets. */
TERN_API tern_status tern_detokenizer_flush(tern_detokenizer *d, char *buf, size_t cap, size_t *n_out);

/* ------------------------------------------------------------------------ */
/* Context: KV cache and evaluation                                          */
/* ------------------------------------------------------------------------ */

typedef struct tern_context_params {
    uint32_t size;         /* sizeof(tern_context_params), set by the default            */
    uint32_t n_ctx;        /* KV-cache length in tokens; 0 = min(2048, n_ctx_train)      */
    int32_t n_threads;     /* 0 = the model's n_threads                                   */
    uint32_t n_batch;      /* prefill evaluates at most this many tokens per pass; 0=512 */
    tern_kv_type kv_type;  /* TERN_KV_F16                                                 */
    bool logits_all;       /* keep the logits of every prefill position, not just the last */
} tern_context_params;

TERN_API tern_context_params tern_context_default_params(void);

/* p may be NULL (defaults). The model must outlive the context. */
TERN_API tern_status tern_context_create(tern_model *m, const tern_context_params *p, tern_context **out);
TERN_API void tern_context_free(tern_context *c);

TERN_API uint32_t tern_context_n_ctx(const tern_context *c);
/* Tokens currently in the KV cache. */
TERN_API uint32_t tern_context_n_past(const tern_context *c);

/* Evaluates n tokens at positions n_past .. n_past+n-1 as batched matrix
 * products. n == 0 is an error. Token ids outside [0, n_vocab) fail with
 * TERN_ERR_INVALID_ARGUMENT; if n_past + n > n_ctx, fails with
 * TERN_ERR_CONTEXT_FULL and evaluates nothing. */
TERN_API tern_status tern_prefill(tern_context *c, const tern_token *tokens, size_t n);

/* Evaluates one token at position n_past (same errors as tern_prefill). */
TERN_API tern_status tern_decode_step(tern_context *c, tern_token token);

/* n_vocab logits of the last evaluated position; NULL (and tern_last_error
 * set) before any evaluation. Valid until the next evaluation or KV edit on
 * this context. On a GPU a decode step's logits stay on the device until
 * this asks for them (tern_sampler_sample does not need them). */
TERN_API const float *tern_get_logits(tern_context *c);

/* Logits of row i of the last tern_prefill (needs logits_all; i < 0 counts
 * from the end, -1 = last). NULL (and tern_last_error set) when unavailable. */
TERN_API const float *tern_get_logits_ith(tern_context *c, int32_t i);

/* KV-cache edits. */
TERN_API void tern_kv_clear(tern_context *c);
/* Keeps the first n tokens (n <= n_past), drops the rest: chat reuse. */
TERN_API tern_status tern_kv_truncate(tern_context *c, uint32_t n);

/* ------------------------------------------------------------------------ */
/* Sampling                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct tern_sampler_params {
    uint32_t size;          /* sizeof(tern_sampler_params), set by the default      */
    float temperature;      /* <= 0: greedy (argmax); default 0.8                  */
    int32_t top_k;          /* <= 0: off; default 40                               */
    float top_p;            /* >= 1: off; default 0.95                             */
    float min_p;            /* <= 0: off; default 0.05                             */
    float repeat_penalty;   /* 1: off; default 1.0                                 */
    int32_t repeat_last_n;  /* window of past tokens the penalty looks at; 64      */
    uint64_t seed;          /* same seed, same logits -> same tokens; default 0    */
} tern_sampler_params;

TERN_API tern_sampler_params tern_sampler_default_params(void);
TERN_API tern_status tern_sampler_create(const tern_sampler_params *p, tern_sampler **out);
TERN_API void tern_sampler_free(tern_sampler *s);

/* Samples a token from the context's last logits and records it in the
 * sampler's history (for the repetition penalty). Logits are not modified. */
TERN_API tern_status tern_sampler_sample(tern_sampler *s, tern_context *c, tern_token *out);

/* Records a token (e.g. the prompt's) in the history without sampling. */
TERN_API void tern_sampler_accept(tern_sampler *s, tern_token t);

/* Clears the history and re-seeds. */
TERN_API void tern_sampler_reset(tern_sampler *s);

#ifdef __cplusplus
}
#endif

#endif /* TERNLM_H */
