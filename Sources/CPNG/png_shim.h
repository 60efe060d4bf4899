#include <png.h>
/// PNG_FORMAT_RGBA is a composite macro that Swift cannot import.
static const unsigned int vitq_png_format_rgba = PNG_FORMAT_RGBA;
static const unsigned int vitq_png_image_version = PNG_IMAGE_VERSION;
