/* Messages, option parsing and value parsing of the command-line programs. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *cli_prog = "dpt";
int cli_quiet = 0;

int cli_fail(cli_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        /* one line: fold any newline a message might carry */
        for (char *c = e->msg; *c; c++)
            if (*c == '\n' || *c == '\r') *c = ' ';
    }
    return 1;
}

int cli_error(const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", cli_prog, buf);
    return 1;
}

void cli_warn(const char *fmt, ...) {
    if (cli_quiet) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: warning: %s\n", cli_prog, buf);
}

static void log_to_cli(int level, const char *message, void *user) {
    (void)user;
    if (level >= 1) cli_warn("%s", message);
}

void cli_install_log(void) { dpt_log_set_callback(log_to_cli, NULL); }

/* ------------------------------------------------------------------------------------------ */

void cli_parser_init(cli_parser *p, int argc, char **argv, const cli_option *opts) {
    memset(p, 0, sizeof *p);
    p->argc = argc;
    p->argv = argv;
    p->i = 1;
    p->opts = opts;
}

/* Does `given` (len n, already '_' → '-' for long names) equal one of the '|'-separated names? */
static int matches(const char *names, const char *given, size_t n) {
    const char *s = names;
    while (*s) {
        const char *bar = strchr(s, '|');
        size_t len = bar ? (size_t)(bar - s) : strlen(s);
        if (len == n && strncmp(s, given, n) == 0) return 1;
        if (!bar) break;
        s = bar + 1;
    }
    return 0;
}

int cli_next(cli_parser *p, const char **value) {
    *value = NULL;
    if (p->i >= p->argc) return CLI_END;
    const char *arg = p->argv[p->i++];
    if (arg[0] != '-' || arg[1] == '\0') {   /* "-" alone is a value (stdin-like), not an option */
        *value = arg;
        return CLI_POSITIONAL;
    }
    /* normalise: "--name=value" splits; long names accept '_' for '-' */
    char name[64];
    const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, arg, n);
    name[n] = '\0';
    if (name[1] == '-')
        for (char *c = name + 2; *c; c++)
            if (*c == '_') *c = '-';
    snprintf(p->name, sizeof p->name, "%s", name);
    for (const cli_option *o = p->opts; o->id; o++) {
        if (!o->names || !matches(o->names, name, strlen(name))) continue;
        if (!o->metavar) {
            if (eq) {
                cli_error("option '%s' takes no value (see --help)", name);
                return CLI_BAD;
            }
            return o->id;
        }
        if (eq) {
            *value = eq + 1;
            return o->id;
        }
        if (p->i >= p->argc) {
            cli_error("option '%s' needs a value %s (see --help)", name, o->metavar);
            return CLI_BAD;
        }
        *value = p->argv[p->i++];
        return o->id;
    }
    cli_error("unknown option '%s' (see --help)", name);
    return CLI_BAD;
}

void cli_print_help(FILE *f, const char *usage, const char *intro, const cli_option *opts) {
    fprintf(f, "usage: %s\n", usage);
    if (intro && *intro) fprintf(f, "%s\n", intro);
    if (opts->id && opts->names) fprintf(f, "\noptions:\n");
    for (const cli_option *o = opts; o->id; o++) {
        if (!o->names) {
            fprintf(f, "\n%s\n", o->help);
            continue;
        }
        char left[128];
        size_t k = 0;
        const char *s = o->names;
        while (*s && k < sizeof left - 1) {
            if (*s == '|') {
                k += (size_t)snprintf(left + k, sizeof left - k, ", ");
                s++;
            } else {
                left[k++] = *s++;
            }
        }
        left[k < sizeof left ? k : sizeof left - 1] = '\0';
        if (o->metavar) {
            size_t len = strlen(left);
            snprintf(left + len, sizeof left - len, " %s", o->metavar);
        }
        /* the help wrapped at 100 columns, in a column of its own */
        const int col = 31, width = 100;
        if (strlen(left) <= 28) fprintf(f, "  %-28s ", left);
        else fprintf(f, "  %s\n%*s", left, col, "");
        const char *h = o->help;
        while (*h) {
            size_t n = strlen(h);
            if (n > (size_t)(width - col)) {
                n = (size_t)(width - col);
                while (n > 0 && h[n] != ' ') n--;
                if (n == 0) n = strcspn(h, " ");
            }
            fprintf(f, "%.*s\n", (int)n, h);
            h += n;
            while (*h == ' ') h++;
            if (*h) fprintf(f, "%*s", col, "");
        }
    }
}

/* ------------------------------------------------------------------------------------------ */

int cli_parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        cli_error("%s: '%s' is not an integer in %ld..%ld", opt, v, lo, hi);
        return 1;
    }
    *out = x;
    return 0;
}

int cli_parse_u64(const char *opt, const char *v, uint64_t *out) {
    char *end;
    errno = 0;
    const char *s = v;
    while (*s == ' ') s++;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || *s == '+') {
        cli_error("%s: '%s' is not a non-negative integer", opt, v);
        return 1;
    }
    *out = (uint64_t)x;
    return 0;
}

int cli_parse_float(const char *opt, const char *v, float *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || fabs(x) > 3.0e38) {
        cli_error("%s: '%s' is not a finite number", opt, v);
        return 1;
    }
    *out = (float)x;
    return 0;
}

int cli_parse_precision(const char *v, dpt_precision *out) {
    if (!strcmp(v, "f32")) *out = DPT_PRECISION_F32;
    else if (!strcmp(v, "bf16")) *out = DPT_PRECISION_BF16;
    else if (!strcmp(v, "int8")) *out = DPT_PRECISION_INT8;
    else if (!strcmp(v, "f16")) *out = DPT_PRECISION_F16;
    else return cli_error("--precision: '%s' is not f32, bf16, int8 or f16", v), 1;
    return 0;
}

int cli_parse_cfg_cond(const char *v, unsigned *out) {
    unsigned c = 0;
    const char *t = v;
    while (*t) {
        const char *comma = strchr(t, ',');
        size_t n = comma ? (size_t)(comma - t) : strlen(t);
        while (n && *t == ' ') t++, n--;
        while (n && t[n - 1] == ' ') n--;
        if (n == 5 && !strncmp(t, "audio", 5)) c |= DPT_COND_AUDIO;
        else if (n == 5 && !strncmp(t, "style", 5)) c |= DPT_COND_STYLE;
        else if (n) return cli_error("--cfg-cond: unknown condition '%.*s' (the conditions are audio and style)",
                                     (int)n, t);
        if (!comma) break;
        t = comma + 1;
    }
    *out = c;
    return 0;
}

/* The library's message of a params check begins with the field's name: say the option instead. */
static int report_field_error(const char *message, const char *const (*map)[2]) {
    const char *colon = strstr(message, ": ");
    if (colon)
        for (int i = 0; map[i][0]; i++)
            if ((size_t)(colon - message) == strlen(map[i][0]) &&
                !strncmp(message, map[i][0], (size_t)(colon - message)))
                return cli_error("%s%s", map[i][1], colon);
    return cli_error("%s", message);
}

int cli_check_gen_params(const dpt_gen_params *p) {
    static const char *const map[][2] = {
        {"n_repetitions", "-n"},   {"scale_audio", "-sa"},   {"scale_style", "-ss"},
        {"cfg_mode", "--cfg-mode"}, {"cfg_conds", "--cfg-cond"}, {"dt_ratio", "-dtr"},
        {"dt_min", "--dt-min"},    {"dt_max", "--dt-max"},   {"flexibility", "--flexibility"},
        {"n_threads", "--threads"}, {"steps", "--steps"},    {"eta", "--eta"},
        {NULL, NULL}};
    dpt_error err;
    if (dpt_gen_params_check(p, &err) == DPT_OK) return 0;
    report_field_error(err.message, map);
    return 1;
}

int cli_check_stream_params(const dpt_stream_params *p) {
    static const char *const map[][2] = {
        {"chunk_frames", "--chunk-frames"}, {"context_frames", "--context-frames"},
        {"norm", "--norm"}, {"norm_mean", "--norm"}, {"norm_std", "--norm"}, {NULL, NULL}};
    dpt_error err;
    if (dpt_stream_params_check(p, &err) == DPT_OK) return 0;
    report_field_error(err.message, map);
    return 1;
}
