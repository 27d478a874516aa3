/* Drives the C ABI from a C99 program (compiled as C, -pedantic -Werror):
 * load, tokenize, prefill, decode, sample; NULL handles and bad arguments
 * return errors with messages. Prints "N passed, N failed". */
#include <stdio.h>
#include <string.h>

#include "ternlm/ternlm.h"

static int passed = 0, failed = 0;
#define CHECK(cond)                                                         \
    do {                                                                    \
        if (cond) {                                                         \
            ++passed;                                                       \
        } else {                                                            \
            ++failed;                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
        }                                                                   \
    } while (0)

/* llama.cpp's greedy continuation of "Once upon a time" (golden/stories260K/p0.json). */
static const tern_token kGreedy[8] = {432, 383, 286, 261, 376, 298, 315, 421};

static bool cancel_at_half(float p, void *ud) {
    (void)ud;
    return p < 0.5f;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "../shared/models/stories260K.gguf";
    tern_model *m = NULL;
    tern_context *c = NULL;
    tern_sampler *s = NULL;
    tern_model_params mp;
    tern_context_params cp;
    tern_token toks[64];
    size_t n = 0;
    int i;

    CHECK(tern_abi_version() == TERN_ABI_VERSION);
    CHECK(strlen(tern_version()) > 0);

    /* Errors before anything is loaded. */
    CHECK(tern_model_load(NULL, NULL, &m) == TERN_ERR_INVALID_ARGUMENT);
    CHECK(strlen(tern_last_error()) > 0);
    CHECK(tern_model_load(path, NULL, NULL) == TERN_ERR_INVALID_ARGUMENT);
    CHECK(tern_model_load("/no/such.gguf", NULL, &m) == TERN_ERR_IO && m == NULL);
    CHECK(strstr(tern_last_error(), "/no/such.gguf") != NULL);
    mp = tern_model_default_params();
    mp.size = 2; /* smaller than the first field */
    CHECK(tern_model_load(path, &mp, &m) == TERN_ERR_INVALID_ARGUMENT);
    mp = tern_model_default_params();
    mp.progress = cancel_at_half;
    CHECK(tern_model_load(path, &mp, &m) == TERN_ERR_CANCELLED);
    CHECK(tern_model_n_vocab(NULL) == 0);
    CHECK(tern_prefill(NULL, toks, 1) == TERN_ERR_INVALID_ARGUMENT);
    CHECK(tern_get_logits(NULL) == NULL);
    tern_model_free(NULL);
    tern_context_free(NULL);
    tern_sampler_free(NULL);

    /* An enum field holding no enumerator: a clear status (any int is a
     * valid C enum value, so the library must not assume one). */
    mp = tern_model_default_params();
    mp.backend = (tern_backend)7;
    CHECK(tern_model_load(path, &mp, &m) == TERN_ERR_INVALID_ARGUMENT && m == NULL);
    CHECK(strstr(tern_last_error(), "backend 7") != NULL);

    /* Load and query. */
    mp = tern_model_default_params();
    mp.backend = TERN_BACKEND_CPU;
    mp.n_threads = 2;
    CHECK(tern_model_load(path, &mp, &m) == TERN_OK);
    if (!m) {
        fprintf(stderr, "cannot load %s: %s\n", path, tern_last_error());
        printf("%d passed, %d failed\n", passed, failed + 1);
        return 1;
    }
    CHECK(tern_model_n_vocab(m) == 512);
    CHECK(tern_model_n_layer(m) == 5);
    CHECK(tern_token_bos(m) == 1);
    CHECK(tern_token_is_eog(m, tern_token_eos(m)));
    CHECK(tern_model_backend(m) == TERN_BACKEND_CPU);
    CHECK(strncmp(tern_model_description(m), "cpu, ", 5) == 0);
    CHECK(strcmp(tern_model_description(NULL), "") == 0);
    CHECK(tern_model_meta_count(m) > 5);
    CHECK(strcmp(tern_model_meta_key(m, 4), "general.architecture") == 0 ||
          tern_model_meta_key(m, 0) != NULL);
    CHECK(tern_model_meta_key(m, -1) == NULL);

    /* Tokenize, with the buffer protocol. */
    CHECK(tern_tokenize(m, "Once upon a time", 16, true, true, toks, 2, &n) == TERN_ERR_INVALID_ARGUMENT);
    CHECK(n == 5);
    CHECK(tern_tokenize(m, "Once upon a time", 16, true, true, toks, 64, &n) == TERN_OK);
    CHECK(n == 5 && toks[0] == 1 && toks[1] == 403 && toks[4] == 378);

    /* Context: prefill, greedy decode. */
    cp = tern_context_default_params();
    cp.n_ctx = 64;
    CHECK(tern_context_create(NULL, &cp, &c) == TERN_ERR_INVALID_ARGUMENT);
    cp.kv_type = (tern_kv_type)5;
    CHECK(tern_context_create(m, &cp, &c) == TERN_ERR_UNSUPPORTED && c == NULL);
    cp.kv_type = TERN_KV_F16;
    CHECK(tern_context_create(m, &cp, &c) == TERN_OK);
    CHECK(tern_context_n_ctx(c) == 64);
    CHECK(tern_get_logits(c) == NULL);
    CHECK(tern_prefill(c, toks, 0) == TERN_ERR_INVALID_ARGUMENT);
    CHECK(tern_prefill(c, toks, n) == TERN_OK);
    CHECK(tern_context_n_past(c) == 5);
    {
        tern_sampler_params sp = tern_sampler_default_params();
        sp.temperature = 0.0f;
        CHECK(tern_sampler_create(&sp, &s) == TERN_OK);
    }
    for (i = 0; i < 8; ++i) {
        tern_token t = -1;
        CHECK(tern_sampler_sample(s, c, &t) == TERN_OK);
        CHECK(t == kGreedy[i]);
        CHECK(tern_decode_step(c, t) == TERN_OK);
    }
    CHECK(tern_decode_step(c, 512) == TERN_ERR_INVALID_ARGUMENT);
    CHECK(tern_decode_step(c, -3) == TERN_ERR_INVALID_ARGUMENT);
    CHECK(tern_get_logits_ith(c, 3) == NULL);
    CHECK(tern_kv_truncate(c, 100) == TERN_ERR_INVALID_ARGUMENT);
    CHECK(tern_kv_truncate(c, 5) == TERN_OK && tern_context_n_past(c) == 5);

    /* Context full. */
    {
        tern_token many[64];
        for (i = 0; i < 64; ++i) many[i] = 5;
        CHECK(tern_prefill(c, many, 60) == TERN_ERR_CONTEXT_FULL);
        CHECK(tern_context_n_past(c) == 5);
        tern_kv_clear(c);
        CHECK(tern_context_n_past(c) == 0);
    }

    /* Pieces and detokenization. */
    {
        char buf[64];
        size_t len = 0;
        tern_detokenizer *d = NULL;
        CHECK(tern_token_to_piece(m, 403, false, buf, sizeof buf, &len) == TERN_OK);
        CHECK(len == 5 && memcmp(buf, " Once", 5) == 0);
        CHECK(tern_detokenize(m, toks, 5, buf, sizeof buf, &len) == TERN_OK);
        CHECK(len == 16 && memcmp(buf, "Once upon a time", 16) == 0);
        CHECK(tern_token_to_piece(m, 9999, false, buf, sizeof buf, &len) == TERN_ERR_INVALID_ARGUMENT);
        CHECK(tern_detokenizer_create(m, &d) == TERN_OK);
        /* 0xC3 0xA9 ("é") as two byte tokens: nothing until the second arrives. */
        CHECK(tern_detokenizer_push(d, 3 + 0xC3, buf, sizeof buf, &len) == TERN_OK && len == 0);
        CHECK(tern_detokenizer_push(d, 3 + 0xA9, buf, sizeof buf, &len) == TERN_OK);
        CHECK(len == 2 && memcmp(buf, "\xC3\xA9", 2) == 0);
        CHECK(tern_detokenizer_push(d, 3 + 0xE6, buf, sizeof buf, &len) == TERN_OK && len == 0);
        CHECK(tern_detokenizer_flush(d, buf, sizeof buf, &len) == TERN_OK);
        CHECK(len == 3 && memcmp(buf, "\xEF\xBF\xBD", 3) == 0);
        tern_detokenizer_free(d);
    }

    CHECK(strcmp(tern_status_name(TERN_ERR_CONTEXT_FULL), "TERN_ERR_CONTEXT_FULL") == 0);
    tern_sampler_free(s);
    tern_context_free(c);
    tern_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
