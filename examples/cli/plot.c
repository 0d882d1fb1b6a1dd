/* The SVG picture of a generated clip: waveform, jaw opening, expression energy and head
 * rotation over time, one panel each, sharing a time axis in seconds. Plain SVG 1.1, no scripts
 * or external resources, so any browser opens it. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define W 1000.0          /* image width */
#define ML 84.0           /* left margin (y labels) */
#define MR 24.0
#define PW (W - ML - MR)  /* plot width */
#define TOP 56.0          /* title band */
#define PH 130.0          /* panel height */
#define GAP 40.0          /* above each panel: its title */
#define BOTTOM 56.0       /* time axis labels */
#define MAX_REPS 8        /* repetitions drawn */

static const char *const REP_COLOURS[MAX_REPS] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                  "#9467bd", "#8c564b", "#e377c2", "#17becf"};
static const char *const AXIS_COLOURS[3] = {"#d62728", "#2ca02c", "#1f77b4"};
static const char *const AXIS_NAMES[3] = {"x (pitch)", "y (yaw)", "z (roll)"};

typedef struct panel {
    double top;         /* y of the plot area's top edge */
    double lo, hi;      /* value range shown */
} panel;

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            /* control characters are not allowed in XML 1.0 */
            if ((unsigned char)*s < 0x20 && *s != '\t') fputc('?', f);
            else fputc(*s, f);
        }
    }
}

static double y_of(const panel *p, double v) {
    double t = (v - p->lo) / (p->hi - p->lo);
    if (t < -0.05) t = -0.05;   /* keep stray values near the panel */
    if (t > 1.05) t = 1.05;
    return p->top + PH * (1.0 - t);
}

/* Range of the values seen, padded by 6%; a flat trace gets a unit-wide range. */
static void finish_range(panel *p, double lo, double hi, int symmetric) {
    if (!(lo <= hi)) lo = -1, hi = 1;
    if (symmetric) {
        double m = fmax(fabs(lo), fabs(hi));
        lo = -m, hi = m;
    }
    double span = hi - lo;
    if (span < 1e-9 * fmax(1.0, fabs(hi))) {
        double c = 0.5 * (lo + hi), h = fmax(1e-3, 0.5 * fabs(c));
        lo = c - h, hi = c + h;
        span = hi - lo;
    }
    p->lo = lo - 0.06 * span;
    p->hi = hi + 0.06 * span;
}

/* A nice tick step (1, 2, 5 × 10^k) for about `want` ticks over span. */
static double nice_step(double span, int want) {
    double raw = span / want, mag = pow(10.0, floor(log10(raw)));
    double r = raw / mag;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

static void panel_frame(FILE *f, const panel *p, const char *title, double duration, double tstep) {
    fprintf(f, "<text class=\"panel-title\" x=\"%.1f\" y=\"%.1f\">", ML, p->top - 10);
    xml_text(f, title);
    fputs("</text>\n", f);
    fprintf(f, "<rect class=\"plot-area\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n", ML,
            p->top, PW, PH);
    /* vertical grid at the time ticks */
    for (int k = 0; k * tstep <= duration + 1e-9 * tstep; k++) {
        double x = ML + PW * (k * tstep) / duration;
        fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, p->top, x,
                p->top + PH);
    }
    /* y ticks: nice values inside the range */
    double step = nice_step(p->hi - p->lo, 4);
    for (double k = ceil(p->lo / step); k * step <= p->hi; k += 1) {
        double v = k * step;
        double y = y_of(p, v);
        double shown = k == 0 ? 0.0 : v;
        fprintf(f, "<line class=\"%s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                shown == 0.0 ? "zero" : "grid", ML, y, ML + PW, y);
        fprintf(f, "<text class=\"ytick\" x=\"%.1f\" y=\"%.1f\">%.4g</text>\n", ML - 6, y + 4, shown);
    }
}

/* A polyline of n values v(i) at times i / rate; columns of the plot holding many values are
 * drawn as their min and max (so long clips keep their envelope at a bounded size). */
typedef double (*value_fn)(const void *ctx, size_t i);

static void trace(FILE *f, const panel *p, const char *cls, const char *colour, double opacity,
                  const char *dash, value_fn fn, const void *ctx, size_t n, double rate,
                  double duration) {
    fprintf(f, "<path class=\"trace %s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.3\"", cls, colour);
    if (opacity < 1) fprintf(f, " stroke-opacity=\"%.2f\"", opacity);
    if (dash) fprintf(f, " stroke-dasharray=\"%s\"", dash);
    fputs(" d=\"", f);
    int first = 1;
    const size_t cols = (size_t)PW;
    if (n <= 2 * cols) {
        for (size_t i = 0; i < n; i++) {
            double v = fn(ctx, i);
            if (!isfinite(v)) continue;
            fprintf(f, "%s%.1f %.1f", first ? "M" : " L", ML + PW * ((double)i / rate) / duration, y_of(p, v));
            first = 0;
        }
    } else {
        for (size_t c = 0; c < cols; c++) {
            /* values whose time falls in column c */
            size_t a = (size_t)((double)c / cols * duration * rate);
            size_t b = (size_t)((double)(c + 1) / cols * duration * rate);
            if (a >= n) break;
            if (b > n) b = n;
            if (b <= a) b = a + 1;
            double lo = INFINITY, hi = -INFINITY;
            for (size_t i = a; i < b; i++) {
                double v = fn(ctx, i);
                if (isfinite(v)) lo = fmin(lo, v), hi = fmax(hi, v);
            }
            if (!(lo <= hi)) continue;
            double x = ML + PW * (c + 0.5) / cols;
            fprintf(f, "%s%.1f %.1f L%.1f %.1f", first ? "M" : " L", x, y_of(p, lo), x, y_of(p, hi));
            first = 0;
        }
    }
    if (first) fprintf(f, "M%.1f %.1f", ML, y_of(p, 0.5 * (p->lo + p->hi)));  /* nothing finite */
    fputs("\"/>\n", f);
}

/* value accessors */
typedef struct series {
    const float *base;
    int stride, col;
    double scale;
} series;

static double col_value(const void *ctx, size_t i) {
    const series *s = ctx;
    return s->scale * s->base[i * (size_t)s->stride + (size_t)s->col];
}

static double energy_value(const void *ctx, size_t i) {
    const float *e = (const float *)ctx + i * 50;
    double s = 0;
    for (int c = 0; c < 50; c++) s += (double)e[c] * e[c];
    return sqrt(s);
}

static void range_of(value_fn fn, const void *ctx, size_t n, double *lo, double *hi) {
    for (size_t i = 0; i < n; i++) {
        double v = fn(ctx, i);
        if (isfinite(v)) *lo = fmin(*lo, v), *hi = fmax(*hi, v);
    }
}

int cli_write_plot(const char *path, const char *title, const float *samples, size_t n_samples,
                   const dpt_result *res, int fps, cli_err *e) {
    if (fps <= 0) fps = 25;
    const int F = res->n_frames, NR = res->n_repetitions < MAX_REPS ? res->n_repetitions : MAX_REPS;
    const size_t nf = (size_t)(F > 0 ? F : 0);
    const double RAD2DEG = 180.0 / 3.14159265358979323846;
    double duration = fmax((double)n_samples / 16000.0, (double)nf / fps);
    if (!(duration > 0)) duration = 1.0 / fps;
    double tstep = nice_step(duration, 10);

    cli_outfile of;
    if (cli_outfile_begin(&of, path, e)) return 1;
    FILE *f = fopen(of.tmp, "w");
    if (!f) {
        int rc = cli_fail(e, "%s: cannot create: %s", path, strerror(errno));
        cli_outfile_discard(&of);
        return rc;
    }
    errno = 0;

    const double H = TOP + 4 * (GAP + PH) + BOTTOM;
    panel pn[4];
    for (int k = 0; k < 4; k++) pn[k].top = TOP + GAP + k * (GAP + PH);

    /* ranges */
    series wav = {samples, 1, 0, 1.0};
    double lo = INFINITY, hi = -INFINITY;
    range_of(col_value, &wav, n_samples, &lo, &hi);
    finish_range(&pn[0], lo, hi, 1);
    lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < NR; r++) {
        series s = {res->pose + (size_t)r * nf * 6, 6, 3, RAD2DEG};
        range_of(col_value, &s, nf, &lo, &hi);
    }
    finish_range(&pn[1], lo, hi, 0);
    lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < NR; r++) range_of(energy_value, res->exp + (size_t)r * nf * 50, nf, &lo, &hi);
    finish_range(&pn[2], lo, hi, 0);
    lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < NR; r++)
        for (int a = 0; a < 3; a++) {
            series s = {res->pose + (size_t)r * nf * 6, 6, a, RAD2DEG};
            range_of(col_value, &s, nf, &lo, &hi);
        }
    finish_range(&pn[3], lo, hi, 0);

    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\">\n",
            W, H, W, H);
    fputs("<title>", f);
    xml_text(f, title ? title : "dpt-generate");
    fputs("</title>\n", f);
    fputs("<style>\n"
          "text { font-family: sans-serif; font-size: 12px; fill: #222; }\n"
          ".title { font-size: 16px; font-weight: bold; }\n"
          ".panel-title { font-size: 13px; font-weight: bold; }\n"
          ".ytick { text-anchor: end; font-size: 11px; fill: #555; }\n"
          ".xtick { text-anchor: middle; font-size: 11px; fill: #555; }\n"
          ".plot-area { fill: #fafafa; stroke: #999; stroke-width: 1; }\n"
          ".grid { stroke: #e2e2e2; stroke-width: 1; }\n"
          ".zero { stroke: #aaa; stroke-width: 1; }\n"
          ".legend { font-size: 11px; }\n"
          "</style>\n",
          f);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text class=\"title\" x=\"%.1f\" y=\"24\">", ML);
    xml_text(f, title ? title : "dpt-generate");
    fputs("</text>\n", f);
    fprintf(f, "<text class=\"subtitle\" x=\"%.1f\" y=\"42\">%.2f s, %d frames at %d fps", ML,
            (double)n_samples / 16000.0, F, fps);
    if (res->n_repetitions > 1)
        fprintf(f, ", %d repetitions%s", res->n_repetitions,
                res->n_repetitions > NR ? " (the first 8 drawn)" : "");
    fputs("</text>\n", f);

    /* 1: waveform, drawn as its min/max envelope per column (or the samples themselves) */
    fputs("<g id=\"waveform\" class=\"panel\">\n", f);
    panel_frame(f, &pn[0], "Waveform (16 kHz mono)", duration, tstep);
    trace(f, &pn[0], "waveform", "#4a6fa5", 1.0, NULL, col_value, &wav, n_samples, 16000.0, duration);
    fputs("</g>\n", f);

    /* 2: jaw opening */
    fputs("<g id=\"jaw\" class=\"panel\">\n", f);
    panel_frame(f, &pn[1], "Jaw opening: pose[:, 3], jaw rotation about x (degrees)", duration, tstep);
    for (int r = 0; r < NR; r++) {
        series s = {res->pose + (size_t)r * nf * 6, 6, 3, RAD2DEG};
        char cls[48];
        snprintf(cls, sizeof cls, "jaw rep-%d", r);
        trace(f, &pn[1], cls, REP_COLOURS[r], 1.0, NULL, col_value, &s, nf, fps, duration);
    }
    fputs("</g>\n", f);

    /* 3: expression energy */
    fputs("<g id=\"expression-energy\" class=\"panel\">\n", f);
    panel_frame(f, &pn[2], "Expression energy: L2 norm of the 50 expression coefficients per frame",
                duration, tstep);
    for (int r = 0; r < NR; r++) {
        char cls[48];
        snprintf(cls, sizeof cls, "expression-energy rep-%d", r);
        trace(f, &pn[2], cls, REP_COLOURS[r], 1.0, NULL, energy_value, res->exp + (size_t)r * nf * 50, nf,
              fps, duration);
    }
    fputs("</g>\n", f);

    /* 4: head rotation, three axes */
    fputs("<g id=\"head-rotation\" class=\"panel\">\n", f);
    panel_frame(f, &pn[3], "Head rotation: pose[:, 0:3], global axis-angle (degrees)", duration, tstep);
    static const char *const DASH[4] = {NULL, "6 3", "2 2", "8 3 2 3"};
    for (int r = 0; r < NR; r++)
        for (int a = 0; a < 3; a++) {
            series s = {res->pose + (size_t)r * nf * 6, 6, a, RAD2DEG};
            char cls[48];
            snprintf(cls, sizeof cls, "head-rot-%c rep-%d", "xyz"[a], r);
            trace(f, &pn[3], cls, AXIS_COLOURS[a], r ? 0.7 : 1.0, DASH[r % 4], col_value, &s, nf, fps,
                  duration);
        }
    for (int a = 0; a < 3; a++) {
        double x = ML + PW - 3 * 92 + a * 92, y = pn[3].top - 10;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>"
                "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                x, y - 4, x + 18, y - 4, AXIS_COLOURS[a], x + 22, y, AXIS_NAMES[a]);
    }
    fputs("</g>\n", f);

    if (NR > 1) {   /* repetition colours (jaw, energy) */
        for (int r = 0; r < NR; r++) {
            double x = ML + PW - NR * 56 + r * 56, y = pn[1].top - 10;
            fprintf(f,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>"
                    "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">rep %d</text>\n",
                    x, y - 4, x + 14, y - 4, REP_COLOURS[r], x + 17, y, r);
        }
    }

    /* time axis */
    fputs("<g id=\"time-axis\">\n", f);
    double yb = pn[3].top + PH;
    for (int k = 0; k * tstep <= duration + 1e-9 * tstep; k++) {
        double t = k * tstep, x = ML + PW * t / duration;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>", x, yb, x, yb + 5);
        fprintf(f, "<text class=\"xtick\" x=\"%.1f\" y=\"%.1f\">%g</text>\n", x, yb + 18,
                t);
    }
    fprintf(f, "<text class=\"xlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time (s)</text>\n",
            ML + PW / 2, yb + 40);
    fputs("</g>\n</svg>\n", f);

    int bad = ferror(f);
    int rc = fclose(f) != 0 || bad ? cli_fail(e, "%s: write failed: %s", path, strerror(errno ? errno : EIO)) : 0;
    if (!rc) rc = cli_outfile_commit(&of, e);
    cli_outfile_discard(&of);
    return rc;
}
