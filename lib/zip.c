/* Zip containers (the PKWARE APPNOTE) as NumPy's .npz uses them: reading from the central directory
 * (np.savez writes zip64 extra fields into the local headers, whose size fields are then
 * placeholders), every offset and size checked against the file, entries inflated with zlib and
 * CRC-checked; writing stored or deflated entries the way Python's zipfile does. zip64 archives
 * (entries or offsets of 4 GB and more) are rejected. Every byte of input is untrusted. */
#include "zip.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <zlib.h>

#define ZIP_MAX32 0xFFFFFFFFu
#define ZIP_EOCD_SIZE 22u
#define ZIP_CDH_SIZE 46u
#define ZIP_LFH_SIZE 30u
#define ZIP_SIG_EOCD 0x06054b50u
#define ZIP_SIG_CDH 0x02014b50u
#define ZIP_SIG_LFH 0x04034b50u
#define ZIP_SIG_ZIP64_LOC 0x07064b50u
#define DEFLATE_MAX_RATIO 1032u       /* deflate cannot expand more than ~1032:1 */
#define IO_CHUNK (1u << 16)

/* ---- reading ----------------------------------------------------------------------------- */

void dpt_zip_close(dpt_zip *z) {
    if (z->f) fclose(z->f);
    free(z->cd);
    memset(z, 0, sizeof *z);
}

static int read_at(FILE *f, uint64_t off, void *dst, size_t n) {
    if (off > (uint64_t)LONG_MAX) return 0;
    if (fseeko(f, (off_t)off, SEEK_SET) != 0) return 0;
    return fread(dst, 1, n, f) == n;
}

dpt_status dpt_zip_open(const char *path, dpt_zip *z, dpt_error *err) {
    memset(z, 0, sizeof *z);
    z->path = path;
    z->f = dpt_file_open_read(path, &z->size, err);
    if (!z->f) return err ? err->status : DPT_ERR_IO;
    dpt_status st = DPT_OK;
    if (z->size < ZIP_EOCD_SIZE) {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: not a .npz (zip) file: too short", path);
        goto fail;
    }
    /* the end-of-central-directory record sits in the last 22 + 65535 (comment) bytes */
    size_t tail_len = z->size < ZIP_EOCD_SIZE + 65535u ? (size_t)z->size : ZIP_EOCD_SIZE + 65535u;
    uint64_t tail_off = z->size - tail_len;
    uint8_t *tail = malloc(tail_len);
    if (!tail) {
        st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (!read_at(z->f, tail_off, tail, tail_len)) {
        free(tail);
        st = dpt_fail(err, DPT_ERR_IO, "%s: read error", path);
        goto fail;
    }
    size_t pos = tail_len - ZIP_EOCD_SIZE;
    int found = 0;
    for (;;) {
        if (dpt_rd32(tail + pos) == ZIP_SIG_EOCD && pos + ZIP_EOCD_SIZE + dpt_rd16(tail + pos + 20) <= tail_len) {
            found = 1;
            break;
        }
        if (pos == 0) break;
        pos--;
    }
    if (!found) {
        free(tail);
        st = dpt_fail(err, DPT_ERR_FORMAT,
                      "%s: not a .npz (zip) file: no end-of-central-directory record", path);
        goto fail;
    }
    const uint8_t *e = tail + pos;
    uint32_t disk = dpt_rd16(e + 4), cd_disk = dpt_rd16(e + 6), n_disk = dpt_rd16(e + 8), n_total = dpt_rd16(e + 10);
    uint32_t cd_size = dpt_rd32(e + 12), cd_off = dpt_rd32(e + 16);
    int zip64_loc = pos >= 20 && dpt_rd32(e - 20) == ZIP_SIG_ZIP64_LOC;
    uint64_t eocd_abs = tail_off + pos;
    free(tail);
    if (zip64_loc || n_total == 0xFFFFu || cd_size == ZIP_MAX32 || cd_off == ZIP_MAX32) {
        st = dpt_fail(err, DPT_ERR_UNSUPPORTED,
                      "%s: zip64 archive not supported (over 4 GB or 65535 entries)", path);
        goto fail;
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n_total) {
        st = dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: multi-volume zip not supported", path);
        goto fail;
    }
    if ((uint64_t)cd_off + cd_size > eocd_abs) {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip: central directory out of bounds", path);
        goto fail;
    }
    z->cd = malloc(cd_size ? cd_size : 1);
    if (!z->cd) {
        st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if (cd_size && !read_at(z->f, cd_off, z->cd, cd_size)) {
        st = dpt_fail(err, DPT_ERR_IO, "%s: read error", path);
        goto fail;
    }
    z->cd_size = cd_size;
    z->cd_offset = cd_off;
    z->n_entries = n_total;
    return DPT_OK;
fail:
    dpt_zip_close(z);
    return st;
}

/* Entry at *pos of the central directory; advances *pos. */
static dpt_status zip_next(const dpt_zip *z, size_t *pos, dpt_zip_entry *ze, dpt_error *err) {
    size_t p = *pos;
    if (z->cd_size - p < ZIP_CDH_SIZE || dpt_rd32(z->cd + p) != ZIP_SIG_CDH)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip central directory", z->path);
    const uint8_t *c = z->cd + p;
    size_t nlen = dpt_rd16(c + 28), xlen = dpt_rd16(c + 30), clen = dpt_rd16(c + 32);
    if (z->cd_size - p - ZIP_CDH_SIZE < nlen + xlen + clen)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip central directory", z->path);
    ze->flags = dpt_rd16(c + 8);
    ze->method = dpt_rd16(c + 10);
    ze->crc = dpt_rd32(c + 16);
    ze->csize = dpt_rd32(c + 20);
    ze->usize = dpt_rd32(c + 24);
    ze->local_off = dpt_rd32(c + 42);
    ze->name = (const char *)c + ZIP_CDH_SIZE;
    ze->name_len = nlen;
    *pos = p + ZIP_CDH_SIZE + nlen + xlen + clen;
    return DPT_OK;
}

static int name_is(const dpt_zip_entry *e, const char *s, size_t n) {
    return e->name_len == n && memcmp(e->name, s, n) == 0;
}

int dpt_zip_find(const dpt_zip *z, const char *key, const char *ext, dpt_zip_entry *out,
                 dpt_error *err) {
    size_t klen = strlen(key), elen = strlen(ext);
    int found = 0;
    size_t pos = 0;
    for (uint32_t i = 0; i < z->n_entries; i++) {
        dpt_zip_entry e;
        if (zip_next(z, &pos, &e, err) != DPT_OK) return -1;
        if (e.name_len == klen + elen && memcmp(e.name, key, klen) == 0 &&
            memcmp(e.name + klen, ext, elen) == 0) {
            *out = e;
            return 1;
        }
        if (!found && name_is(&e, key, klen)) {
            *out = e;
            found = 1;
        }
    }
    return found;
}

void dpt_zip_list_keys(const dpt_zip *z, const char *ext, char *buf, size_t cap) {
    size_t pos = 0, n = 0, elen = strlen(ext);
    buf[0] = '\0';
    for (uint32_t i = 0; i < z->n_entries && n + 1 < cap; i++) {
        dpt_zip_entry e;
        if (zip_next(z, &pos, &e, NULL) != DPT_OK) break;
        size_t l = e.name_len;
        if (l >= elen && memcmp(e.name + l - elen, ext, elen) == 0) l -= elen;
        int w = snprintf(buf + n, cap - n, "%s%.*s", i ? ", " : "", (int)(l < 64 ? l : 64), e.name);
        if (w < 0) break;
        n += (size_t)w;
    }
}

static dpt_status inflate_raw(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
                              const char *what, dpt_error *err) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -15) != Z_OK)
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: cannot initialise zlib", what);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)in_len;
    zs.next_out = out;
    zs.avail_out = (uInt)out_len;
    int r = inflate(&zs, Z_FINISH);
    dpt_status st = DPT_OK;
    if (r == Z_STREAM_END) {
        if (zs.total_out != out_len)
            st = dpt_fail(err, DPT_ERR_FORMAT, "%s: inflated size %lu differs from the declared %zu",
                          what, (unsigned long)zs.total_out, out_len);
    } else if (r == Z_DATA_ERROR) {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt deflate data (%s)", what,
                      zs.msg ? zs.msg : "zlib");
    } else if (r == Z_MEM_ERROR) {
        st = dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory inflating", what);
    } else if (zs.avail_out == 0) {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: inflates to more than the declared %zu bytes", what,
                      out_len);
    } else {
        st = dpt_fail(err, DPT_ERR_FORMAT, "%s: deflate data truncated", what);
    }
    inflateEnd(&zs);
    return st;
}

static uint32_t crc32_big(uint32_t crc, const uint8_t *p, size_t n) {
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return crc;
}

dpt_status dpt_zip_read_entry(const dpt_zip *z, const dpt_zip_entry *e, uint8_t **data,
                                 size_t *len, const char *what, dpt_error *err) {
    *data = NULL;
    *len = 0;
    if (e->flags & 1u)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: encrypted zip entry not supported", what);
    if (e->csize == ZIP_MAX32 || e->usize == ZIP_MAX32 || e->local_off == ZIP_MAX32)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: zip64 entry (4 GB or more) not supported", what);
    if (e->method != 0 && e->method != 8)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "%s: zip compression method %u not supported (stored or deflate only)",
                        what, (unsigned)e->method);
    uint8_t lfh[ZIP_LFH_SIZE];
    if ((uint64_t)e->local_off + ZIP_LFH_SIZE > z->cd_offset ||
        !read_at(z->f, e->local_off, lfh, ZIP_LFH_SIZE) || dpt_rd32(lfh) != ZIP_SIG_LFH)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip: bad local header", what);
    uint64_t data_off = (uint64_t)e->local_off + ZIP_LFH_SIZE + dpt_rd16(lfh + 26) + dpt_rd16(lfh + 28);
    if (data_off > z->cd_offset || z->cd_offset - data_off < e->csize)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip: entry data out of bounds", what);
    if (e->method == 0 && e->csize != e->usize)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip: stored entry sizes differ", what);
    if ((uint64_t)e->usize > DPT_MAX_NPZ_ENTRY_BYTES)   /* before allocating: no zip bombs */
        return dpt_fail(err, DPT_ERR_UNSUPPORTED,
                        "%s: entry of %u bytes uncompressed is over the limit of %llu bytes "
                        "(DPT_MAX_NPZ_ENTRY_BYTES)",
                        what, e->usize, (unsigned long long)DPT_MAX_NPZ_ENTRY_BYTES);
    if (e->method == 8 && (uint64_t)e->usize > (uint64_t)e->csize * DEFLATE_MAX_RATIO + 1024u)
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: corrupt zip: implausible uncompressed size %u",
                        what, e->usize);

    uint8_t *comp = malloc(e->csize ? e->csize : 1);
    if (!comp) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", what);
    if (e->csize && !read_at(z->f, data_off, comp, e->csize)) {
        free(comp);
        return dpt_fail(err, DPT_ERR_IO, "%s: read error", what);
    }
    uint8_t *raw = comp;
    if (e->method == 8) {
        raw = malloc(e->usize ? e->usize : 1);
        if (!raw) {
            free(comp);
            return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", what);
        }
        dpt_status st = inflate_raw(comp, e->csize, raw, e->usize, what, err);
        free(comp);
        if (st != DPT_OK) {
            free(raw);
            return st;
        }
    }
    if (crc32_big((uint32_t)crc32(0, Z_NULL, 0), raw, e->usize) != e->crc) {
        free(raw);
        return dpt_fail(err, DPT_ERR_FORMAT, "%s: CRC-32 mismatch (data corrupt)", what);
    }
    *data = raw;
    *len = e->usize;
    return DPT_OK;
}

/* ---- writing ----------------------------------------------------------------------------- */

struct dpt_zip_rec {
    const char *name, *ext;
    uint32_t crc, csize, usize, off;
    uint16_t method, flags;
};

/* Deflate hdr then data into f; *csize = compressed bytes. */
static dpt_status deflate_to(FILE *f, const uint8_t *hdr, size_t hlen, const uint8_t *data,
                             size_t n, uint64_t *csize, const char *what, dpt_error *err) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* np.savez_compressed → zipfile ZIP_DEFLATED: zlib level 6 (default), raw stream */
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: cannot initialise zlib", what);
    uint8_t *obuf = malloc(IO_CHUNK);
    if (!obuf) {
        deflateEnd(&zs);
        return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", what);
    }
    dpt_status st = DPT_OK;
    uint64_t total = 0;
    const uint8_t *src[2] = {hdr, data};
    size_t len[2] = {hlen, n};
    for (int part = 0; part < 2 && st == DPT_OK; part++) {
        const uint8_t *p = src[part];
        size_t left = len[part];
        int last = part == 1;
        do {
            uInt k = left > (1u << 30) ? (1u << 30) : (uInt)left;
            zs.next_in = (Bytef *)(uintptr_t)p;
            zs.avail_in = k;
            p += k;
            left -= k;
            int flush = last && left == 0 ? Z_FINISH : Z_NO_FLUSH;
            int r;
            do {
                zs.next_out = obuf;
                zs.avail_out = IO_CHUNK;
                r = deflate(&zs, flush);
                if (r == Z_STREAM_ERROR) {
                    st = dpt_fail(err, DPT_ERR_IO, "%s: deflate failed", what);
                    break;
                }
                size_t have = IO_CHUNK - zs.avail_out;
                total += have;
                if (!dpt_file_write_all(f, obuf, have)) {
                    st = dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", what, strerror(errno));
                    break;
                }
            } while (zs.avail_out == 0 || (flush == Z_FINISH && r != Z_STREAM_END));
        } while (left > 0 && st == DPT_OK);
    }
    free(obuf);
    deflateEnd(&zs);
    *csize = total;
    return st;
}

static const uint32_t dos_time = 0, dos_date = (0u << 9) | (1u << 5) | 1u; /* 1980-01-01 00:00 */

dpt_status dpt_zip_writer_open(dpt_zip_writer *w, const char *path, int max_entries, dpt_error *err) {
    memset(w, 0, sizeof *w);
    w->path = path;
    w->cap = max_entries;
    w->rec = calloc((size_t)(max_entries ? max_entries : 1), sizeof *w->rec);
    if (!w->rec) return dpt_fail(err, DPT_ERR_NOMEM, "%s: out of memory", path);
    w->f = fopen(path, "wb");
    if (!w->f) {
        free(w->rec);
        w->rec = NULL;
        return dpt_fail(err, DPT_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    return DPT_OK;
}

dpt_status dpt_zip_writer_add(dpt_zip_writer *w, const char *name, const char *ext,
                              const uint8_t *hdr, size_t hlen, const uint8_t *data, size_t nbytes,
                              int compress, dpt_error *err) {
    const char *path = w->path;
    FILE *f = w->f;
    const uint64_t off = w->off;
    uint8_t b[ZIP_LFH_SIZE];
    if (w->n >= w->cap) return dpt_fail(err, DPT_ERR_INVALID_ARG, "%s: too many zip entries", path);
    size_t klen = strlen(name), elen = strlen(ext);
    int utf8 = 0;
    for (size_t k = 0; k < klen; k++) utf8 |= (unsigned char)name[k] >= 0x80;
    for (size_t k = 0; k < elen; k++) utf8 |= (unsigned char)ext[k] >= 0x80;
    struct dpt_zip_rec *r = &w->rec[w->n];
    r->name = name;
    r->ext = ext;
    r->method = compress ? 8 : 0;
    r->flags = utf8 ? 0x800 : 0;
    r->usize = (uint32_t)(hlen + nbytes);
    r->crc = crc32_big(crc32_big((uint32_t)crc32(0, Z_NULL, 0), hdr, hlen), data, nbytes);
    if (off > ZIP_MAX32 - 1)
        return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: archive over 4 GB (zip64 not supported)", path);
    r->off = (uint32_t)off;
    memset(b, 0, ZIP_LFH_SIZE);
    dpt_wr32(b, ZIP_SIG_LFH);
    dpt_wr16(b + 4, 20);
    dpt_wr16(b + 6, r->flags);
    dpt_wr16(b + 8, r->method);
    dpt_wr16(b + 10, dos_time);
    dpt_wr16(b + 12, dos_date);
    dpt_wr32(b + 14, r->crc);
    dpt_wr32(b + 18, compress ? 0 : r->usize); /* compressed size: patched below if deflated */
    dpt_wr32(b + 22, r->usize);
    dpt_wr16(b + 26, (uint32_t)(klen + elen));
    dpt_wr16(b + 28, 0);
    if (!dpt_file_write_all(f, b, ZIP_LFH_SIZE) || !dpt_file_write_all(f, name, klen) ||
        !dpt_file_write_all(f, ext, elen))
        return dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
    uint64_t csize = 0;
    if (!compress) {
        if (!dpt_file_write_all(f, hdr, hlen) || !dpt_file_write_all(f, data, nbytes))
            return dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
        csize = r->usize;
    } else {
        dpt_status st = deflate_to(f, hdr, hlen, data, nbytes, &csize, path, err);
        if (st != DPT_OK) return st;
        if (csize >= ZIP_MAX32)
            return dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: entry over 4 GB (zip64 not supported)", path);
        uint8_t c4[4];
        dpt_wr32(c4, (uint32_t)csize);
        if (fseeko(f, (off_t)(off + 18), SEEK_SET) != 0 || !dpt_file_write_all(f, c4, 4) ||
            fseeko(f, 0, SEEK_END) != 0)
            return dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
    }
    r->csize = (uint32_t)csize;
    w->off = off + ZIP_LFH_SIZE + klen + elen + csize;
    w->n++;
    return DPT_OK;
}

dpt_status dpt_zip_writer_close(dpt_zip_writer *w, dpt_status st, dpt_error *err) {
    const char *path = w->path;
    FILE *f = w->f;
    uint64_t off = w->off, cd_off = off;
    uint8_t b[ZIP_CDH_SIZE];
    for (int i = 0; i < w->n && st == DPT_OK; i++) {
        const struct dpt_zip_rec *r = &w->rec[i];
        size_t klen = strlen(r->name), elen = strlen(r->ext);
        memset(b, 0, ZIP_CDH_SIZE);
        dpt_wr32(b, ZIP_SIG_CDH);
        dpt_wr16(b + 4, (3u << 8) | 20u); /* made by: Unix, zip 2.0 */
        dpt_wr16(b + 6, 20);
        dpt_wr16(b + 8, r->flags);
        dpt_wr16(b + 10, r->method);
        dpt_wr16(b + 12, dos_time);
        dpt_wr16(b + 14, dos_date);
        dpt_wr32(b + 16, r->crc);
        dpt_wr32(b + 20, r->csize);
        dpt_wr32(b + 24, r->usize);
        dpt_wr16(b + 28, (uint32_t)(klen + elen));
        dpt_wr32(b + 38, 0644u << 16); /* external attributes: regular file rw-r--r-- */
        dpt_wr32(b + 42, r->off);
        if (!dpt_file_write_all(f, b, ZIP_CDH_SIZE) || !dpt_file_write_all(f, r->name, klen) ||
            !dpt_file_write_all(f, r->ext, elen)) {
            st = dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
            break;
        }
        off += ZIP_CDH_SIZE + klen + elen;
    }
    if (st == DPT_OK && (cd_off >= ZIP_MAX32 || off - cd_off >= ZIP_MAX32))
        st = dpt_fail(err, DPT_ERR_UNSUPPORTED, "%s: archive over 4 GB (zip64 not supported)", path);
    if (st == DPT_OK) {
        memset(b, 0, ZIP_EOCD_SIZE);
        dpt_wr32(b, ZIP_SIG_EOCD);
        dpt_wr16(b + 8, (uint32_t)w->n);
        dpt_wr16(b + 10, (uint32_t)w->n);
        dpt_wr32(b + 12, (uint32_t)(off - cd_off));
        dpt_wr32(b + 16, (uint32_t)cd_off);
        if (!dpt_file_write_all(f, b, ZIP_EOCD_SIZE))
            st = dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
    }
    int regular = dpt_file_is_regular(f);
    if (fclose(f) != 0 && st == DPT_OK)
        st = dpt_fail(err, DPT_ERR_IO, "%s: write error: %s", path, strerror(errno));
    if (st != DPT_OK && regular) remove(path);
    free(w->rec);
    memset(w, 0, sizeof *w);
    return st;
}
