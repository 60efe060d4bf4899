#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/// A PNG being read from memory with libpng's low-level API (no gamma or colour transforms, as
/// PIL does): palettes and 1/2/4-bit grey are expanded to 8 bits, 16-bit samples are kept, and
/// interlaced images are combined. libpng reports errors with longjmp, which Swift cannot catch,
/// so every call into libpng is made here, under setjmp; an error leaves its text in `message`.
///
/// `data` is borrowed: it must stay valid from `vitq_png_open` to `vitq_png_close`.
typedef struct vitq_png_reader {
    png_structp png;
    png_infop info;
    const unsigned char *data;
    size_t size;
    size_t pos;
    char message[256];
    /// Filled by vitq_png_read_header.
    unsigned int width, height;
    /// Samples per pixel after the expansions (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA).
    int channels;
    /// 8 or 16 bits per sample after the expansions.
    int bit_depth;
    /// The file's IHDR colour type (PNG_COLOR_TYPE_*).
    int color_type;
    /// Bytes per row of the expanded image.
    size_t rowbytes;
} vitq_png_reader;

static void vitq_png_error_fn(png_structp png, png_const_charp msg) {
    vitq_png_reader *r = (vitq_png_reader *)png_get_error_ptr(png);
    snprintf(r->message, sizeof r->message, "%s", msg ? msg : "error");
    png_longjmp(png, 1);
}

static void vitq_png_warning_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void vitq_png_read_fn(png_structp png, png_bytep out, size_t n) {
    vitq_png_reader *r = (vitq_png_reader *)png_get_io_ptr(png);
    if (n > r->size - r->pos) png_error(png, "file is truncated");
    memcpy(out, r->data + r->pos, n);
    r->pos += n;
}

/// A reader over `size` bytes at `data`, or NULL when memory runs out.
static inline vitq_png_reader *vitq_png_open(const unsigned char *data, size_t size) {
    vitq_png_reader *r = (vitq_png_reader *)calloc(1, sizeof *r);
    if (!r) return NULL;
    r->data = data;
    r->size = size;
    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, vitq_png_error_fn, vitq_png_warning_fn);
    if (!r->png) { free(r); return NULL; }
    r->info = png_create_info_struct(r->png);
    if (!r->info) { png_destroy_read_struct(&r->png, NULL, NULL); free(r); return NULL; }
    return r;
}

/// Reads the header and sets up the expansions; width and height above `max_side` are refused
/// by libpng before any pixel memory is allocated. 0 on success, -1 with `message` set.
static inline int vitq_png_read_header(vitq_png_reader *r, unsigned int max_side) {
    if (setjmp(png_jmpbuf(r->png))) return -1;
    png_set_read_fn(r->png, r, vitq_png_read_fn);
    png_set_user_limits(r->png, max_side, max_side);
    png_set_chunk_malloc_max(r->png, 16u << 20);
    png_read_info(r->png, r->info);
    int color_type = png_get_color_type(r->png, r->info);
    int depth = png_get_bit_depth(r->png, r->info);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r->png);
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(r->png);
    png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    r->width = png_get_image_width(r->png, r->info);
    r->height = png_get_image_height(r->png, r->info);
    r->channels = png_get_channels(r->png, r->info);
    r->bit_depth = png_get_bit_depth(r->png, r->info);
    r->color_type = color_type;
    r->rowbytes = png_get_rowbytes(r->png, r->info);
    return 0;
}

/// Reads every row into `out` (height × rowbytes bytes). 0 on success, -1 with `message` set.
static inline int vitq_png_read_image(vitq_png_reader *r, unsigned char *out) {
    if (setjmp(png_jmpbuf(r->png))) return -1;
    int passes = png_set_interlace_handling(r->png);
    for (int p = 0; p < passes; p++) {
        for (unsigned int y = 0; y < r->height; y++) png_read_row(r->png, out + (size_t)y * r->rowbytes, NULL);
    }
    return 0;
}

static inline void vitq_png_close(vitq_png_reader *r) {
    if (!r) return;
    png_destroy_read_struct(&r->png, &r->info, NULL);
    free(r);
}
