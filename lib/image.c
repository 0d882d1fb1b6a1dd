/* Images (public dpt_image_*): PNG through libpng, JPEG through libjpeg-turbo's libjpeg API.
 * Read as 8-bit RGB, rows top to bottom: grey, palette and 16-bit PNGs are converted, alpha is
 * dropped (upstream reads textures with cv2.imread, which ignores alpha too); CMYK JPEGs are
 * refused. Every byte of input is untrusted: libpng/libjpeg errors come back through longjmp
 * into one error line naming the file. Built with DPT_NO_IMAGE (make NO_IMAGE=1) there are no
 * libpng/libjpeg: reading and writing return DPT_ERR_UNSUPPORTED. */
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits of images read (textures) and written (frames): the renderer's own 8192 per side
 * (render.c MAX_SIDE); checked from the header, before the pixels are allocated. */
#define MAX_IMAGE_SIDE 8192
#define MAX_IMAGE_PIXELS (1u << 26)

void dpt_image_free(dpt_image *img) {
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

#ifdef DPT_NO_IMAGE

dpt_status dpt_image_read(const char *path, dpt_image *out, dpt_error *err) {
    if (out) memset(out, 0, sizeof *out);
    return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: cannot read images: libdpt was built with NO_IMAGE=1 (no libpng/libjpeg)",
                    path ? path : "(null)");
}

dpt_status dpt_image_write_png(const char *path, const dpt_image *img, dpt_error *err) {
    (void)img;
    return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: cannot write PNG: libdpt was built with NO_IMAGE=1 (no libpng)",
                    path ? path : "(null)");
}

#else

#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>

static dpt_status check_size(const char *path, long w, long h, dpt_error *err) {
    if (w < 1 || h < 1 || w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE || (uint64_t)w * (uint64_t)h > MAX_IMAGE_PIXELS)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: image size %ld x %ld outside 1 ... %d per side and %u pixels",
                        path, w, h, MAX_IMAGE_SIDE, MAX_IMAGE_PIXELS);
    return DPT_OK;
}

/* ---- PNG -------------------------------------------------------------------------------------- */

typedef struct png_err_ctx {
    jmp_buf jmp;
    char message[200];
} png_err_ctx;

static void png_error_fn(png_structp png, png_const_charp msg) {
    png_err_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->message, sizeof ctx->message, "%s", msg);
    longjmp(ctx->jmp, 1);
}

static void png_warning_fn(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;   /* e.g. "iCCP: known incorrect sRGB profile": harmless */
}

static dpt_status read_png(const char *path, FILE *f, dpt_image *out, dpt_error *err) {
    png_err_ctx ctx;
    ctx.message[0] = 0;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_error_fn, png_warning_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
    }
    /* volatile: assigned between setjmp and longjmp */
    uint8_t *volatile rgb = NULL;
    png_bytep *volatile rows = NULL;
    volatile dpt_status st = DPT_OK;
    if (setjmp(ctx.jmp)) {
        free(rgb);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt or truncated PNG: %s", path, ctx.message);
    }
    png_init_io(png, f);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if ((st = check_size(path, (long)w, (long)h, err)) != DPT_OK) {
        png_destroy_read_struct(&png, &info, NULL);
        return st;
    }
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (depth == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 3)
        png_error(png, "unexpected row layout after conversion to RGB");
    rgb = malloc((size_t)w * h * 3);
    rows = malloc((size_t)h * sizeof *rows);
    if (!rgb || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = rgb + (size_t)y * w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->width = (int)w;
    out->height = (int)h;
    out->rgb = rgb;
    return DPT_OK;
}

/* ---- JPEG ------------------------------------------------------------------------------------- */

typedef struct jpeg_err_ctx {
    struct jpeg_error_mgr mgr;
    jmp_buf jmp;
    char message[JMSG_LENGTH_MAX];
    int warned;
} jpeg_err_ctx;

static void jpeg_error_exit(j_common_ptr cinfo) {
    jpeg_err_ctx *ctx = (jpeg_err_ctx *)cinfo->err;
    cinfo->err->format_message(cinfo, ctx->message);
    longjmp(ctx->jmp, 1);
}

/* libjpeg reports a truncated file as a warning ("Premature end of JPEG file") and pads it with
 * grey: treat any corrupt-data warning as an error rather than return a half-grey texture. */
static void jpeg_emit_message(j_common_ptr cinfo, int level) {
    jpeg_err_ctx *ctx = (jpeg_err_ctx *)cinfo->err;
    if (level < 0 && !ctx->warned) {
        ctx->warned = 1;
        cinfo->err->format_message(cinfo, ctx->message);
    }
}

static dpt_status read_jpeg(const char *path, FILE *f, dpt_image *out, dpt_error *err) {
    struct jpeg_decompress_struct cinfo;
    jpeg_err_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    cinfo.err = jpeg_std_error(&ctx.mgr);
    ctx.mgr.error_exit = jpeg_error_exit;
    ctx.mgr.emit_message = jpeg_emit_message;
    uint8_t *volatile rgb = NULL;
    if (setjmp(ctx.jmp)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt or truncated JPEG: %s", path, ctx.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: CMYK JPEG images are not supported (convert it to RGB)", path);
    }
    /* the size from the header, before jpeg_start_decompress: for a progressive image that call
     * allocates the whole image's coefficients (a fuzzed 24581 × 51462 header asked for 3.8 GB) */
    dpt_status st = check_size(path, (long)cinfo.image_width, (long)cinfo.image_height, err);
    if (st != DPT_OK) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    cinfo.out_color_space = JCS_RGB;   /* grey is expanded by the library */
    jpeg_start_decompress(&cinfo);
    st = check_size(path, (long)cinfo.output_width, (long)cinfo.output_height, err);
    if (st != DPT_OK || cinfo.output_components != 3) {
        jpeg_destroy_decompress(&cinfo);
        return st != DPT_OK ? st : dpt_fail(err, DPT_ERR_FORMAT, "%s: JPEG decoded to %d components, not RGB",
                                            path, cinfo.output_components);
    }
    size_t w = cinfo.output_width, h = cinfo.output_height;
    rgb = malloc(w * h * 3);
    if (!rgb) {
        jpeg_destroy_decompress(&cinfo);
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory for %zu x %zu pixels", path, w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = rgb + (size_t)cinfo.output_scanline * w * 3;
        jpeg_read_scanlines(&cinfo, &row, 1);
        if (ctx.warned) break;
    }
    if (!ctx.warned) jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (ctx.warned) {
        free(rgb);
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt or truncated JPEG: %s", path, ctx.message);
    }
    out->width = (int)w;
    out->height = (int)h;
    out->rgb = rgb;
    return DPT_OK;
}

/* ---- public ----------------------------------------------------------------------------------- */

dpt_status dpt_image_read(const char *path, dpt_image *out, dpt_error *err) {
    if (!path || !out) return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_image_read: NULL %s", path ? "output" : "path");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return dpt_fail(err, DPT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint8_t magic[8];
    size_t got = fread(magic, 1, sizeof magic, f);
    dpt_status st;
    if (ferror(f)) {
        st = dpt_fail(err, DPT_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    } else if (got == 8 && png_sig_cmp(magic, 0, 8) == 0) {
        rewind(f);
        st = read_png(path, f, out, err);
    } else if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
        rewind(f);
        st = read_jpeg(path, f, out, err);
    } else {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: not a PNG or JPEG image", path);
    }
    fclose(f);
    return st;
}

dpt_status dpt_image_write_png(const char *path, const dpt_image *img, dpt_error *err) {
    if (!path || !img || !img->rgb)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "dpt_image_write_png: NULL %s", !path ? "path" : "image");
    if (img->width < 1 || img->height < 1 || img->width > MAX_IMAGE_SIDE || img->height > MAX_IMAGE_SIDE)
        return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: image size %d x %d outside 1 ... %d", path, img->width,
                        img->height, MAX_IMAGE_SIDE);
    FILE *f = fopen(path, "wb");
    if (!f) return dpt_fail(err, DPT_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    png_err_ctx ctx;
    ctx.message[0] = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_error_fn, png_warning_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
    }
    if (setjmp(ctx.jmp)) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return dpt_fail(err, DPT_ERR_IO, "%s: cannot write PNG: %s", path, ctx.message);
    }
    png_init_io(png, f);
    /* video frames: fast compression (zlib level 1 and the "up" filter are ~5x faster than the
       defaults for a few % more bytes) */
    png_set_compression_level(png, 1);
    png_set_filter(png, 0, PNG_FILTER_UP);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < img->height; y++)
        png_write_row(png, img->rgb + (size_t)y * img->width * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fflush(f) != 0 || ferror(f)) {
        int e = errno;
        fclose(f);
        return dpt_fail(err, DPT_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    }
    if (fclose(f) != 0) return dpt_fail(err, DPT_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return DPT_OK;
}

#endif
