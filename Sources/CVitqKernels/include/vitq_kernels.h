/// vitq C kernels: fp32 elementwise ops for the transformer forward pass.
///
/// Every kernel has a scalar `_ref` version (the reference, written for clarity)
/// and an AVX2+FMA variant; the integer GEMM also has an AVX-512 VNNI one. The unsuffixed entry
/// points dispatch at run time (see dispatch.c, vitq_kernels_isa); set VITQ_FORCE_SCALAR=1 (or
/// VITQ_ISA=scalar) in the environment to force `_ref`, VITQ_ISA=avx2 to stop at AVX2.
#ifndef VITQ_KERNELS_H
#define VITQ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: CPU features

/// 1 when the CPU and OS support AVX2 and FMA, else 0.
int vitq_cpu_has_avx2(void);
/// 1 when the CPU and OS support AVX-512 F/BW/VL and AVX512_VNNI (zmm state enabled), else 0.
int vitq_cpu_has_avx512vnni(void);
/// 1 when the CPU supports AVX2, FMA and AVX-VNNI (VEX-encoded vpdpbusd on ymm), else 0.
int vitq_cpu_has_avxvnni(void);
/// The kernel level the dispatch chooses: VITQ_ISA_SCALAR, VITQ_ISA_AVX2, VITQ_ISA_AVX_VNNI or
/// VITQ_ISA_AVX512_VNNI. The best the CPU has, capped by the environment:
/// VITQ_ISA=scalar|avx2|avxvnni|avx512vnni (or
/// VITQ_FORCE_SCALAR=1, the same as VITQ_ISA=scalar). Every level computes the same bits for
/// the integer kernels; the fp32 AVX2 kernels approximate exp and erf (Docs/ARCHITECTURE.md).
int vitq_kernels_isa(void);
enum { VITQ_ISA_SCALAR = 0, VITQ_ISA_AVX2 = 1, VITQ_ISA_AVX_VNNI = 2, VITQ_ISA_AVX512_VNNI = 3 };
/// 1 when the dispatched kernels are the AVX2 (or wider) variants.
int vitq_kernels_use_avx2(void);

// MARK: fp32 ops (dispatched)

/// y[r,:] = (x[r,:] - mean) / sqrt(var + eps) * gamma + beta for r in [0, rows). x and y may alias.
void vitq_layernorm_f32(const float *x, float *y, const float *gamma, const float *beta,
                        int64_t rows, int64_t dim, float eps);
/// Row-wise softmax in place over `rows` rows of length n, each at stride `ld` floats.
void vitq_softmax_f32(float *x, int64_t rows, int64_t n, int64_t ld);
/// y = x * 0.5 * (1 + erf(x / sqrt(2))) (exact-erf GELU). x and y may alias.
void vitq_gelu_f32(const float *x, float *y, int64_t n);
/// y += x.
void vitq_add_f32(float *y, const float *x, int64_t n);
/// y[r, :] += bias for r in [0, rows), rows of length n at stride ld.
void vitq_add_bias_f32(float *y, const float *bias, int64_t rows, int64_t n, int64_t ld);

// MARK: fp32 ops, scalar references

void vitq_layernorm_f32_ref(const float *x, float *y, const float *gamma, const float *beta,
                            int64_t rows, int64_t dim, float eps);
void vitq_softmax_f32_ref(float *x, int64_t rows, int64_t n, int64_t ld);
void vitq_gelu_f32_ref(const float *x, float *y, int64_t n);
void vitq_add_f32_ref(float *y, const float *x, int64_t n);
void vitq_add_bias_f32_ref(float *y, const float *bias, int64_t rows, int64_t n, int64_t ld);

// MARK: fp32 ops, AVX2 variants (call only when vitq_cpu_has_avx2())

void vitq_layernorm_f32_avx2(const float *x, float *y, const float *gamma, const float *beta,
                             int64_t rows, int64_t dim, float eps);
void vitq_softmax_f32_avx2(float *x, int64_t rows, int64_t n, int64_t ld);
void vitq_gelu_f32_avx2(const float *x, float *y, int64_t n);
void vitq_add_f32_avx2(float *y, const float *x, int64_t n);
void vitq_add_bias_f32_avx2(float *y, const float *bias, int64_t rows, int64_t n, int64_t ld);

// MARK: scale-search statistics (portable, contraction off: identical bits on every machine)

/// Statistic kinds of ``vitq_score_columns``.
enum { VITQ_SCORE_MSE = 0, VITQ_SCORE_HESSIAN = 1, VITQ_SCORE_COSINE = 2, VITQ_SCORE_PEARSON = 3,
       VITQ_SCORE_HESSIAN_DPLR = 4 };
/// Statistics per column for `kind`: MSE Σd²; Hessian Σg²d²; Hessian DPLR Σg²d², Σgd; cosine Σoô, Σo², Σô²;
/// Pearson Σo, Σô, Σoô, Σo², Σô².
int vitq_score_stat_count(int kind);
/// Adds, for every column j of the [rows, n] outputs, the statistics of ô (row stride ldh)
/// against o and gradient g (row stride ld; g only read for HESSIAN) to stats[s·n + j], in double.
/// Dispatched among the same body built for SSE2 (_ref), AVX2 and AVX-512F: the same bits on every level.
void vitq_score_columns(const float *ohat, int64_t ldh, const float *o, const float *g, int64_t ld,
                        int64_t rows, int64_t n, int kind, double *stats);
void vitq_score_columns_ref(const float *ohat, int64_t ldh, const float *o, const float *g, int64_t ld,
                            int64_t rows, int64_t n, int kind, double *stats);
void vitq_score_columns_avx2(const float *ohat, int64_t ldh, const float *o, const float *g, int64_t ld,
                             int64_t rows, int64_t n, int kind, double *stats);
void vitq_score_columns_avx512(const float *ohat, int64_t ldh, const float *o, const float *g, int64_t ld,
                               int64_t rows, int64_t n, int kind, double *stats);
/// order[r·n + j]: the indices sorting FP row r of o ascending (ties by index). Rows contiguous.
void vitq_rank_order_rows(const float *o, int64_t rows, int64_t n, int32_t *order);
/// Liu et al.'s ranking loss on attention scores, over neighbours in each row's FP order (which
/// keeps the whole order by transitivity): Σ_rows Σ_j max(θ − (ô[π(j+1)] − ô[π(j)]), 0).
double vitq_rank_loss_rows(const float *ohat, const int32_t *order, int64_t rows, int64_t n, float theta);
/// sum[j] += Σ_rows (ô − o) per column, in double (bias correction).
void vitq_error_columns(const float *ohat, int64_t ldh, const float *o, int64_t ld, int64_t rows, int64_t n, double *sum);

// MARK: dtype conversion

/// IEEE half to float, n values.
void vitq_f16_to_f32(const uint16_t *src, float *dst, int64_t n);
/// bfloat16 to float, n values.
void vitq_bf16_to_f32(const uint16_t *src, float *dst, int64_t n);

#ifdef __cplusplus
}
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

// MARK: quantizers (round half to even; dispatched, with _ref and _avx2 variants)
//
// q = clamp(rne(x · inv) + zero, qmin, qmax) with inv = 1/scale rounded to float, computed in
// float: rne rounds half to even, and the clamp happens before the conversion to integer.

/// Quantizes n floats to int8 with one scale and zero point.
void vitq_quantize_s8(const float *x, int8_t *q, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax);
/// x = (q - zero) · scale.
void vitq_dequantize_s8(const int8_t *q, float *x, int64_t n, float scale, int32_t zero);
/// y = (quantize(x) - zero) · scale: the float image of the quantizer (fake quantization). x and y may alias.
void vitq_fake_quantize_f32(const float *x, float *y, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax);

void vitq_quantize_s8_ref(const float *x, int8_t *q, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax);
void vitq_dequantize_s8_ref(const int8_t *q, float *x, int64_t n, float scale, int32_t zero);
void vitq_fake_quantize_f32_ref(const float *x, float *y, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax);
void vitq_quantize_s8_avx2(const float *x, int8_t *q, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax);
void vitq_dequantize_s8_avx2(const int8_t *q, float *x, int64_t n, float scale, int32_t zero);
void vitq_fake_quantize_f32_avx2(const float *x, float *y, int64_t n, float scale, int32_t zero, int32_t qmin, int32_t qmax);

// MARK: integer GEMM (exact)
//
// C[i,j] = Σ_p A[i,p]·B[j,p] in int32. Operands are held as int16 (int8 values, or q - zero of an
// affine quantizer, |v| ≤ 255) and multiplied with vpmaddwd, whose int16×int16 pair sums go to
// int32 and cannot saturate; with |a|,|b| ≤ 255 the result is exact for every k ≤ 16384.
// (vpmaddubsw's saturating int16 pair sums are never used.) The AVX-512 VNNI kernel repacks into
// u8 × s8 quads for vpdpbusd, which accumulates into int32 without an int16 step, when the
// operands fit (gemm_s8_avx512.c), and otherwise runs vpdpwssd on the int16 pairs.
//
// Packed A: panels of VITQ_QGEMM_MR rows; per panel and per k pair p, MR int32 words, each holding
// the int16 pair (a[r,2p], a[r,2p+1]). Rows past m and the odd k tail are zero.
// Packed B: blocks of VITQ_QGEMM_NR output columns; per block and k pair, NR × 2 int16.

#define VITQ_QGEMM_MR 6
#define VITQ_QGEMM_NR 16

/// int32 words of a packed m×k A.
int64_t vitq_qgemm_packed_a_size(int64_t m, int64_t k);
/// int16 elements of a packed n×k B.
int64_t vitq_qgemm_packed_b_size(int64_t n, int64_t k);
/// Packs int8 A [m, k] (row stride lda).
void vitq_qgemm_pack_a_s8(const int8_t *a, int64_t lda, int64_t m, int64_t k, int32_t *packed);
/// Quantizes float A [m, k] (row stride lda) and packs q - zero (dispatched).
void vitq_qgemm_quantize_pack_a(const float *a, int64_t lda, int64_t m, int64_t k,
                                float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed);
void vitq_qgemm_quantize_pack_a_ref(const float *a, int64_t lda, int64_t m, int64_t k,
                                    float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed);
void vitq_qgemm_quantize_pack_a_avx2(const float *a, int64_t lda, int64_t m, int64_t k,
                                     float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed);
/// Packs int8 B [n, k] (row stride ldb): a weight with one row per output channel.
void vitq_qgemm_pack_b_s8(const int8_t *b, int64_t ldb, int64_t n, int64_t k, int16_t *packed);
/// Quantizes and packs float B given as [n, k] (transposed = 0) or as [k, n] (transposed = 1), row
/// stride ldb (dispatched).
void vitq_qgemm_quantize_pack_b(const float *b, int64_t ldb, int64_t n, int64_t k, int transposed,
                                float scale, int32_t zero, int32_t qmin, int32_t qmax, int16_t *packed);
void vitq_qgemm_quantize_pack_b_ref(const float *b, int64_t ldb, int64_t n, int64_t k, int transposed,
                                    float scale, int32_t zero, int32_t qmin, int32_t qmax, int16_t *packed);
void vitq_qgemm_quantize_pack_b_avx2(const float *b, int64_t ldb, int64_t n, int64_t k, int transposed,
                                     float scale, int32_t zero, int32_t qmin, int32_t qmax, int16_t *packed);
/// The scalar packing of column block jb, k pairs [p0, p1) (the reference's unit; AVX2 uses it for tails).
void vitq_qgemm_quantize_pack_b_block(const float *b, int64_t ldb, int64_t n, int64_t k, int transposed,
                                      float scale, int32_t zero, int32_t qmin, int32_t qmax, int16_t *packed,
                                      int64_t jb, int64_t p0, int64_t p1);

/// Where and how the int32 accumulators are written: to c, or through the float epilogue
/// v = fmaf(acc, col_scale[j], bias[j]) (bias 0 when NULL), then v = GELU(v) when gelu is set
/// (the same lane-wise GELU as vitq_gelu_f32; gelu is not combined with q), to any of:
/// f: f[i,j] (+)= v (+= when accumulate);
/// q: q[i,j] = quantize(v) with scale out_scale[j] and zero point 0 (requantisation);
/// pa: the next GEMM's packed A (k = this GEMM's n) holding quantize(v) − pa_zero with scale
///     pa_scale, exactly what vitq_qgemm_quantize_pack_a writes from the float v; padding rows
///     of the last panel are zeroed. Like f, pa points at the first row's panel.
/// row_scale (per-token inputs): v = fmaf(v, row_scale[i], row_bias[j]) (row_bias 0 when NULL)
///     right after the column scale and before GELU, row_scale indexed like f's rows: exactly
///     vitq_per_token_finish of the stored product, in the same pass (bias is then NULL).
/// When c is non-NULL it is the only output.
typedef struct vitq_qgemm_output {
    int32_t *c; int64_t ldc;
    float *f; int64_t ldf; int accumulate;
    int8_t *q; int64_t ldq; const float *out_scale; int32_t qmin, qmax;
    int32_t *pa; float pa_scale; int32_t pa_zero, pa_qmin, pa_qmax;
    int gelu;
    const float *col_scale;
    const float *bias;
    const float *row_scale;
    const float *row_bias;
    /// Optional: B in the VNNI kernels' u8 × s8 form, as vitq_qgemm_pack_b_quads wrote it from this
    /// call's B (a weight packed once); those kernels then skip their per-call B repacking.
    const int32_t *b_quads;
} vitq_qgemm_output;

/// int32 words of vitq_qgemm_pack_b_quads's output for an n×k B: s8 quads (per 16-column block and
/// group of four k, 16 words), then the padded column sums.
int64_t vitq_qgemm_b_quads_size(int64_t n, int64_t k);
/// The VNNI form of a packed B (vitq_qgemm_output.b_quads): 1 when written, 0 when not (a value beyond
/// int8, or a kernel level below AVX-VNNI, which would not read it). Dispatched.
int vitq_qgemm_pack_b_quads(const int16_t *pb, int64_t n, int64_t k, int32_t *quads);
/// The same form written with AVX-512 instructions, and with plain C (the AVX-VNNI level's); equal.
int vitq_qgemm_pack_b_quads_avx512(const int16_t *pb, int64_t n, int64_t k, int32_t *quads);
int vitq_qgemm_pack_b_quads_portable(const int16_t *pb, int64_t n, int64_t k, int32_t *quads);
/// At least `bytes` of 64-byte-aligned scratch owned by the calling thread (kept between calls,
/// freed when the thread exits), or NULL when memory is short. The VNNI kernels' repacked operands.
void *vitq_thread_scratch(size_t bytes);

/// Rows [0, m) of A·Bᵀ with its epilogue; `pa` points at the first row's panel (m rows from a panel
/// boundary). Single-threaded: callers split m across threads at panel boundaries. Dispatched.
void vitq_qgemm(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k, const vitq_qgemm_output *out);
void vitq_qgemm_scalar(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k, const vitq_qgemm_output *out);
void vitq_qgemm_avx2(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k, const vitq_qgemm_output *out);
/// The AVX-512 VNNI variant (vpdpbusd, or vpdpwssd, on zmm; call only when vitq_cpu_has_avx512vnni()).
void vitq_qgemm_avx512vnni(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k, const vitq_qgemm_output *out);
/// The AVX-VNNI variant (vpdpbusd, or vpdpwssd, on ymm; call only when vitq_cpu_has_avxvnni()).
void vitq_qgemm_avxvnni(const int32_t *pa, const int16_t *pb, int64_t m, int64_t n, int64_t k, const vitq_qgemm_output *out);
/// The reference: plain loops over unpacked int8 operands, int32 out.
void vitq_gemm_s8s8s32_ref(const int8_t *a, int64_t lda, const int8_t *b, int64_t ldb,
                           int64_t m, int64_t n, int64_t k, int32_t *c, int64_t ldc);
/// The epilogue of one accumulator row of `len` columns starting at column j0 of an n-column GEMM
/// (shared by both kernels).
void vitq_qgemm_store_row_ref(const int32_t *acc, int64_t row, int64_t j0, int64_t len, int64_t n, const vitq_qgemm_output *out);
/// Zeroes the padding rows [m, next panel boundary) of out->pa for an n-column GEMM (no-op without pa).
void vitq_qgemm_zero_pa_padding(const vitq_qgemm_output *out, int64_t m, int64_t n);

/// Row softmax of x [m, n] (row stride ld) in place, as vitq_softmax_f32, and the probabilities
/// quantized and packed as vitq_qgemm_quantize_pack_a packs them, each row while it is in cache (dispatched).
void vitq_softmax_quantize_pack_a(float *x, int64_t m, int64_t n, int64_t ld, float scale, int32_t zero,
                                  int32_t qmin, int32_t qmax, int32_t *packed);
void vitq_softmax_quantize_pack_a_ref(float *x, int64_t m, int64_t n, int64_t ld, float scale, int32_t zero,
                                      int32_t qmin, int32_t qmax, int32_t *packed);
void vitq_softmax_quantize_pack_a_avx2(float *x, int64_t m, int64_t n, int64_t ld, float scale, int32_t zero,
                                       int32_t qmin, int32_t qmax, int32_t *packed);

/// LayerNorm of x [m, dim] (as vitq_layernorm_f32) quantized and packed as vitq_qgemm_quantize_pack_a
/// packs it, without writing the normalised rows (dispatched). `packed` points at row 0's panel.
void vitq_layernorm_quantize_pack_a(const float *x, const float *gamma, const float *beta, int64_t m, int64_t dim, float eps,
                                    float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed);
void vitq_layernorm_quantize_pack_a_ref(const float *x, const float *gamma, const float *beta, int64_t m, int64_t dim, float eps,
                                        float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed);
void vitq_layernorm_quantize_pack_a_avx2(const float *x, const float *gamma, const float *beta, int64_t m, int64_t dim, float eps,
                                         float scale, int32_t zero, int32_t qmin, int32_t qmax, int32_t *packed);

#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
extern "C" {
#endif

// MARK: twin uniform
//
// PTQ4ViT's twin uniform quantizer (ALGORITHMS.md §3), k ≤ 8 bits. A code is one byte: bit k−1
// flags the range (0 = R1, 1 = R2), the low k−1 bits hold the magnitude mag ∈ [0, 2^(k−1)−1].
// Steps Δ1 (R1) and Δ2 = ldexpf(Δ1, shift), shift ∈ [0, 20]; 1/Δ1 and 1/Δ2 are each rounded to
// float once and rounding is half to even, as for the uniform quantizers.
//   softmax: x goes to R1 iff rne(x/Δ1) ≤ 2^(k−1)−1 (negatives clamp to 0 there), value mag·Δ1;
//            otherwise R2, mag = clamp(rne(x/Δ2)), value mag·Δ2.
//   gelu:    x < 0 goes to R1, mag = clamp(rne(−x/Δ1)), value −mag·Δ1;
//            x ≥ 0 goes to R2, mag = clamp(rne(x/Δ2)), value mag·Δ2.
// The integer the GEMM multiplies is the value in units of Δ1: R1 → mag (gelu: −mag), R2 → mag·2^shift.
// Decoded zeros are +0.

#define VITQ_TWIN_SOFTMAX 0
#define VITQ_TWIN_GELU 1

/// One twin uniform quantizer: kind (VITQ_TWIN_SOFTMAX or VITQ_TWIN_GELU), bits k, Δ1 and shift.
typedef struct vitq_twin_params {
    int32_t kind;
    int32_t bits;
    float delta1;
    int32_t shift;
} vitq_twin_params;

/// Codes of n floats (dispatched).
void vitq_twin_encode(const float *x, uint8_t *codes, int64_t n, vitq_twin_params p);
/// Values of n codes (dispatched).
void vitq_twin_decode(const uint8_t *codes, float *x, int64_t n, vitq_twin_params p);
/// y = decode(encode(x)), the float image of the quantizer (dispatched). x and y may alias.
void vitq_twin_fake_quantize(const float *x, float *y, int64_t n, vitq_twin_params p);
/// Quantizes float A [m, k] (row stride lda) and packs it twice in the layout of
/// vitq_qgemm_quantize_pack_a: `lo` gets the R1 integers (0 where an element is in R2), `hi` the R2
/// magnitudes (0 where in R1). A·Bᵀ = (lo·Bᵀ) + (hi·Bᵀ)·2^shift (dispatched).
void vitq_twin_quantize_pack_a(const float *a, int64_t lda, int64_t m, int64_t k, vitq_twin_params p,
                               int32_t *lo, int32_t *hi);
/// f[i,j] = fmaf((float)(c_lo[i,j] + c_hi[i,j]·2^shift), col_scale[j], bias[j]) for i < m, j < n, with
/// the sum in int64 and one round-to-nearest-even conversion to float; bias 0 when NULL (dispatched).
void vitq_twin_combine(const int32_t *c_lo, const int32_t *c_hi, int64_t ldc, int64_t m, int64_t n, int32_t shift,
                       const float *col_scale, const float *bias, float *f, int64_t ldf);

void vitq_twin_encode_ref(const float *x, uint8_t *codes, int64_t n, vitq_twin_params p);
void vitq_twin_decode_ref(const uint8_t *codes, float *x, int64_t n, vitq_twin_params p);
void vitq_twin_fake_quantize_ref(const float *x, float *y, int64_t n, vitq_twin_params p);
void vitq_twin_quantize_pack_a_ref(const float *a, int64_t lda, int64_t m, int64_t k, vitq_twin_params p,
                                   int32_t *lo, int32_t *hi);
void vitq_twin_combine_ref(const int32_t *c_lo, const int32_t *c_hi, int64_t ldc, int64_t m, int64_t n, int32_t shift,
                           const float *col_scale, const float *bias, float *f, int64_t ldf);
void vitq_twin_encode_avx2(const float *x, uint8_t *codes, int64_t n, vitq_twin_params p);
void vitq_twin_decode_avx2(const uint8_t *codes, float *x, int64_t n, vitq_twin_params p);
void vitq_twin_fake_quantize_avx2(const float *x, float *y, int64_t n, vitq_twin_params p);
void vitq_twin_quantize_pack_a_avx2(const float *a, int64_t lda, int64_t m, int64_t k, vitq_twin_params p,
                                    int32_t *lo, int32_t *hi);
void vitq_twin_combine_avx2(const int32_t *c_lo, const int32_t *c_hi, int64_t ldc, int64_t m, int64_t n, int32_t shift,
                            const float *col_scale, const float *bias, float *f, int64_t ldf);

/// glibc: large blocks from the heap and freed memory kept, for reuse across forward passes.
void vitq_reuse_large_blocks(void);

/// Dynamic per-token quantization (per_token.c): steps[r] = max|x_r| / qmax (1 when that maximum
/// is 0 or not finite; NaNs are skipped) and out[r, c] = x[r, c] · (1/steps[r]) dense [rows, cols],
/// what the step-1 quantizer rounds. Dispatched.
void vitq_per_token_scale(const float *x, int64_t ld, int64_t rows, int64_t cols, float qmax, float *steps, float *out);
void vitq_per_token_scale_ref(const float *x, int64_t ld, int64_t rows, int64_t cols, float qmax, float *steps, float *out);
void vitq_per_token_scale_avx2(const float *x, int64_t ld, int64_t rows, int64_t cols, float qmax, float *steps, float *out);
/// The per-token epilogue: t = fmaf(v[r, j], steps[r], bias[j]) (bias 0 when NULL); y[r, j] = t, then
/// GELU of the row as vitq_gelu_f32 when gelu; or y[r, j] += t when accumulate (gelu is not
/// combined with accumulate). v and y may be the same memory. Dispatched.
void vitq_per_token_finish(const float *v, int64_t ldv, int64_t rows, int64_t n, const float *steps, const float *bias,
                           int gelu, int accumulate, float *y, int64_t ldy);
void vitq_per_token_finish_ref(const float *v, int64_t ldv, int64_t rows, int64_t n, const float *steps, const float *bias,
                               int gelu, int accumulate, float *y, int64_t ldy);
void vitq_per_token_finish_avx2(const float *v, int64_t ldv, int64_t rows, int64_t n, const float *steps, const float *bias,
                                int gelu, int accumulate, float *y, int64_t ldy);

#ifdef __cplusplus
}
#endif
