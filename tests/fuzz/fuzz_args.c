/* Fuzz target: the programs' option parser (examples/cli/args.c: spellings, '_' for '-',
 * "--name=value", values, positionals) and the value parsers (integers, u64, floats, sizes,
 * formats). The input is split at newlines into argv (at most 64 arguments). The table has the
 * kinds of options dpt-generate's has: short and long names, aliases, flags and valued options. */
#define _GNU_SOURCE
#include "fuzz.h"
#include "../../examples/cli/cli.h"

enum { O_SECTION = -100, O_MODEL = 1, O_N, O_SA, O_SEED, O_SIZE, O_FORMAT, O_FLAG, O_STEPS, O_HELP };

static const cli_option OPTIONS[] = {
    {O_SECTION, NULL, NULL, "Section:"},
    {O_MODEL, "-m|--model", "MODEL.dpt", "model"},
    {O_N, "-n|--n-repetitions", "N", "repetitions"},
    {O_SA, "-sa|--scale-audio", "S", "scale"},
    {O_SEED, "--seed", "SEED", "seed"},
    {O_SIZE, "--size", "WxH", "size"},
    {O_FORMAT, "-f|--format", "FMT", "format"},
    {O_FLAG, "--no-head|--no-head-pose", NULL, "flag"},
    {O_STEPS, "--steps", "K", "steps"},
    {O_HELP, "-h|--help", NULL, "help"},
    {0, NULL, NULL, NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cli_prog = "fuzz_args";
    cli_quiet = 1;
    if (size > 4096) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *argv[66];
    int argc = 0;
    argv[argc++] = "fuzz_args";
    for (char *p = text; argc < 65;) {
        argv[argc++] = p;
        char *nl = memchr(p, '\n', (size_t)(text + size - p));
        if (!nl) break;
        *nl = '\0';
        p = nl + 1;
    }
    argv[argc] = NULL;
    cli_parser ps;
    cli_parser_init(&ps, argc, argv, OPTIONS);
    const char *v;
    int id, guard = 0;
    while ((id = cli_next(&ps, &v)) != CLI_END) {
        if (++guard > argc) abort();   /* cli_next must consume an argument per call */
        long iv;
        uint64_t u;
        float f;
        int w, h;
        switch (id) {
        case CLI_BAD: goto done;
        case CLI_POSITIONAL: if (!v) abort(); break;
        case O_MODEL: if (!v) abort(); break;
        case O_N: (void)cli_parse_int(ps.name, v, 1, 4096, &iv); break;
        case O_STEPS: (void)cli_parse_int(ps.name, v, 0, 1000000, &iv); break;
        case O_SA: (void)cli_parse_float(ps.name, v, &f); break;
        case O_SEED: (void)cli_parse_u64(ps.name, v, &u); break;
        case O_SIZE:
            if (cli_parse_size(ps.name, v, &w, &h) == 0 && (w < 1 || h < 1)) abort();
            break;
        case O_FORMAT: (void)cli_format_parse(v); (void)cli_format_from_path(v); break;
        case O_FLAG: case O_HELP: break;
        default: abort();   /* an id that is not in the table */
        }
    }
done:
    free(text);
    return 0;
}
