/* simple.c — generation through the C ABI in plain C99.
 *   simple MODEL.gguf "prompt" [n_tokens] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ternlm/ternlm.h"

static int die(const char *what, tern_status s) {
    fprintf(stderr, "%s: %s: %s\n", what, tern_status_name(s), tern_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT [N]\n", argv[0]);
        return 2;
    }
    const int n_predict = argc > 3 ? atoi(argv[3]) : 32;
    tern_model *model = NULL;
    tern_context *ctx = NULL;
    tern_sampler *smp = NULL;
    tern_detokenizer *detok = NULL;
    tern_status s;

    if ((s = tern_model_load(argv[1], NULL, &model)) != TERN_OK) return die("load", s);
    if ((s = tern_context_create(model, NULL, &ctx)) != TERN_OK) return die("context", s);
    tern_sampler_params sp = tern_sampler_default_params();
    sp.temperature = 0.0f; /* greedy */
    if ((s = tern_sampler_create(&sp, &smp)) != TERN_OK) return die("sampler", s);
    if ((s = tern_detokenizer_create(model, &detok)) != TERN_OK) return die("detokenizer", s);

    tern_token prompt[512];
    size_t n_prompt = 0;
    s = tern_tokenize(model, argv[2], strlen(argv[2]), true, true, prompt, 512, &n_prompt);
    if (s != TERN_OK) return die("tokenize", s);
    if ((s = tern_prefill(ctx, prompt, n_prompt)) != TERN_OK) return die("prefill", s);

    printf("%s", argv[2]);
    char piece[256];
    size_t n_piece;
    for (int i = 0; i < n_predict; ++i) {
        tern_token t;
        if ((s = tern_sampler_sample(smp, ctx, &t)) != TERN_OK) return die("sample", s);
        if (tern_token_is_eog(model, t)) break;
        if (tern_detokenizer_push(detok, t, piece, sizeof piece, &n_piece) == TERN_OK)
            fwrite(piece, 1, n_piece, stdout);
        if ((s = tern_decode_step(ctx, t)) != TERN_OK) return die("decode", s);
    }
    if (tern_detokenizer_flush(detok, piece, sizeof piece, &n_piece) == TERN_OK) fwrite(piece, 1, n_piece, stdout);
    printf("\n");

    tern_detokenizer_free(detok);
    tern_sampler_free(smp);
    tern_context_free(ctx);
    tern_model_free(model);
    return 0;
}
