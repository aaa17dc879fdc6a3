// Float32 conv: weight packers and the GEMM-based conv driver (im2col of a block of output pixels,
// then the ISA's SGEMM per group). Baseline code: it only moves floats; the arithmetic runs in the
// SGEMM kernel the plan points to.
#include <string.h>

#include "kernels.h"

namespace {

size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

// Output pixels per im2col block: about 128 KB of scratch (L2 resident), a multiple of the row
// tiles of every SGEMM kernel (6 and 12), at least 24 rows; more for large weights (below).
size_t im2col_block(size_t k, size_t n) {
  size_t mb = 32768 / (k ? k : 1);
  // Weights past L2 (ResNet's layer2-4 3x3 convs): every block streams all of them from L3 or
  // DRAM, so take as many rows as about 1.5 MB of im2col holds (a 512-channel 3x3 conv at 7x7 ran
  // its 49 pixels as blocks of 24, 24 and 1, reading its 9 MB of weights three times).
  if (k * round_up(n, PTQ_SGEMM_NR) * sizeof(float) > (512u << 10)) {
    const size_t big = (1536u << 10) / (k * sizeof(float));
    if (big > mb) mb = big;
  }
  if (mb > 1200) mb = 1200;
  mb = mb / 12 * 12;
  return mb < 24 ? 24 : mb;
}

// Short copies and fills, inline: im2col moves kw*cin floats at a time (9 for a 3-channel stem),
// where a libc call per kernel row costs more than the copy. Loop distribution is off in im2col
// (and so in these, inlined there) so the compiler does not turn the loops back into libc calls;
// the attribute has to be on the caller: GCC does not inline across differing optimize options.
#if defined(__GNUC__) && !defined(__clang__)
#define PTQ_NO_LIBC_PATTERNS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define PTQ_NO_LIBC_PATTERNS
#endif

inline void copy_floats(float* d, const float* s, size_t n) {
  if (n >= 64) {
    memcpy(d, s, n * sizeof(float));
    return;
  }
  // Up to 16 floats (a 3-channel stem's kernel row is 9): two overlapping fixed-size moves.
  if (n >= 8 && n <= 16) {
    memcpy(d, s, 8 * sizeof(float));
    memcpy(d + n - 8, s + n - 8, 8 * sizeof(float));
    return;
  }
  if (n > 16) {
    // 17-63 floats (a 7x7 stem's 21-float kernel rows): 8-float moves, the last one overlapping.
    size_t i = 0;
    for (; i + 8 < n; i += 8) memcpy(d + i, s + i, 8 * sizeof(float));
    memcpy(d + n - 8, s + n - 8, 8 * sizeof(float));
    return;
  }
  if (n >= 4 && n < 8) {
    memcpy(d, s, 4 * sizeof(float));
    memcpy(d + n - 4, s + n - 4, 4 * sizeof(float));
    return;
  }
  size_t i = 0;
  for (; i + 4 <= n; i += 4) memcpy(d + i, s + i, 4 * sizeof(float));  // constant size: inlined
  for (; i < n; i++) d[i] = s[i];
}

inline void zero_floats(float* d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = 0.0f;
}

// Writes `rows` rows of the im2col matrix of group grp, from output pixel p0 on: row t is the
// (ky, kx, ci) patch of pixel p0 + t, zeros where the patch leaves the image.
PTQ_NO_LIBC_PATTERNS void im2col(const ptq_conv2d_geometry* g, const float* x, size_t h, size_t w,
                                 size_t oh, size_t ow, size_t p0, size_t rows, size_t grp,
                                 float* out) {
  const size_t cin = g->in_channels, cpg = cin / g->groups, kh = g->kernel_h, kw = g->kernel_w;
  const size_t dh = g->dilation_h, dw = g->dilation_w, k = kh * kw * cpg;
  size_t ox = p0 % ow, oy = (p0 / ow) % oh, b = p0 / (ow * oh);
  for (size_t t = 0; t < rows; t++, out += k) {
    const ptrdiff_t iy0 = static_cast<ptrdiff_t>(oy * g->stride_h) - static_cast<ptrdiff_t>(g->pad_h);
    const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ox * g->stride_w) - static_cast<ptrdiff_t>(g->pad_w);
    const float* xb = x + b * h * w * cin + grp * cpg;
    // With unit dilation and one group the kw taps of a kernel row are contiguous in NHWC.
    const bool contiguous = dw == 1 && cpg == cin && ix0 >= 0 &&
                            ix0 + static_cast<ptrdiff_t>(kw) <= static_cast<ptrdiff_t>(w);
    float* row = out;
    for (size_t ky = 0; ky < kh; ky++, row += kw * cpg) {
      const ptrdiff_t iy = iy0 + static_cast<ptrdiff_t>(ky * dh);
      if (iy < 0 || iy >= static_cast<ptrdiff_t>(h)) {
        zero_floats(row, kw * cpg);
        continue;
      }
      const float* xr = xb + static_cast<size_t>(iy) * w * cin;
      if (contiguous) {
        copy_floats(row, xr + static_cast<size_t>(ix0) * cin, kw * cin);
        continue;
      }
      for (size_t kx = 0; kx < kw; kx++) {
        const ptrdiff_t ix = ix0 + static_cast<ptrdiff_t>(kx * dw);
        float* dst = row + kx * cpg;
        if (ix < 0 || ix >= static_cast<ptrdiff_t>(w))
          zero_floats(dst, cpg);
        else
          copy_floats(dst, xr + static_cast<size_t>(ix) * cin, cpg);
      }
    }
    if (++ox == ow) {
      ox = 0;
      if (++oy == oh) {
        oy = 0;
        b++;
      }
    }
  }
}

}  // namespace

extern "C" size_t ptq_sgemm_packed_floats(size_t k, size_t n) {
  return round_up(n, PTQ_SGEMM_NR) * k;
}

extern "C" void ptq_sgemm_pack(size_t k, size_t n, const float* w, float* packed) {
  const size_t nb = round_up(n, PTQ_SGEMM_NR) / PTQ_SGEMM_NR;
  memset(packed, 0, ptq_sgemm_packed_floats(k, n) * sizeof(float));
  for (size_t b = 0; b < nb; b++)
    for (size_t j = 0; j < PTQ_SGEMM_NR && b * PTQ_SGEMM_NR + j < n; j++) {
      const float* src = w + (b * PTQ_SGEMM_NR + j) * k;
      for (size_t kk = 0; kk < k; kk++) packed[(b * k + kk) * PTQ_SGEMM_NR + j] = src[kk];
    }
}

extern "C" void ptq_conv2d_f32_pack(const ptq_conv2d_geometry* g, const float* w, float* packed) {
  const size_t cpg = g->in_channels / g->groups, opg = g->out_channels / g->groups;
  const size_t kh = g->kernel_h, kw = g->kernel_w, k = kh * kw * cpg;
  const size_t panel = ptq_sgemm_packed_floats(k, opg);
  memset(packed, 0, g->groups * panel * sizeof(float));
  for (size_t grp = 0; grp < g->groups; grp++) {
    float* pg = packed + grp * panel;
    for (size_t j = 0; j < opg; j++) {
      const float* wo = w + (grp * opg + j) * cpg * kh * kw;  // [ci][ky][kx] of output channel
      float* col = pg + (j / PTQ_SGEMM_NR) * k * PTQ_SGEMM_NR + j % PTQ_SGEMM_NR;
      for (size_t ky = 0; ky < kh; ky++)
        for (size_t kx = 0; kx < kw; kx++)
          for (size_t ci = 0; ci < cpg; ci++)
            col[((ky * kw + kx) * cpg + ci) * PTQ_SGEMM_NR] = wo[(ci * kh + ky) * kw + kx];
    }
  }
}

extern "C" size_t ptq_dwconv_f32_packed_floats(const ptq_conv2d_geometry* g) {
  return g->kernel_h * g->kernel_w * round_up(g->in_channels, PTQ_SGEMM_NR) + PTQ_SGEMM_NR;
}

extern "C" void ptq_dwconv_f32_pack(const ptq_conv2d_geometry* g, const float* w, float* packed) {
  const size_t c = g->in_channels, cp = round_up(c, PTQ_SGEMM_NR), taps = g->kernel_h * g->kernel_w;
  memset(packed, 0, ptq_dwconv_f32_packed_floats(g) * sizeof(float));
  for (size_t ch = 0; ch < c; ch++)
    for (size_t t = 0; t < taps; t++) packed[t * cp + ch] = w[ch * taps + t];
}

extern "C" int ptq_conv2d_f32_is_direct(const ptq_conv2d_geometry* g) {
  return g->kernel_h == 1 && g->kernel_w == 1 && g->stride_h == 1 && g->stride_w == 1 &&
         g->pad_h == 0 && g->pad_w == 0;
}

extern "C" size_t ptq_conv2d_f32_scratch_floats(const ptq_conv2d_f32_plan* plan) {
  if (ptq_conv2d_f32_is_direct(&plan->g)) return 0;
  return im2col_block(plan->k, plan->n) * plan->k;
}

extern "C" void ptq_conv2d_f32(const ptq_conv2d_f32_plan* plan, const float* x, size_t h, size_t w,
                               float* y, size_t oh, size_t ow, int relu, size_t p_begin,
                               size_t p_end, size_t nb_begin, size_t nb_end, float* scratch) {
  const ptq_conv2d_geometry* g = &plan->g;
  const size_t groups = g->groups, cin = g->in_channels, cout = g->out_channels;
  const size_t k = plan->k, n = plan->n, cpg = cin / groups;
  const size_t nb = round_up(n, PTQ_SGEMM_NR) / PTQ_SGEMM_NR, panel = ptq_sgemm_packed_floats(k, n);
  ptq_sgemm_weights wg;
  wg.k = k;
  wg.n = n;
  if (ptq_conv2d_f32_is_direct(g)) {
    // Output pixel p reads input pixel p: a GEMM over x itself (stride cin), per group.
    for (size_t grp = 0; grp < groups; grp++) {
      wg.packed_b = plan->packed_b + grp * panel;
      wg.bias = plan->bias ? plan->bias + grp * round_up(n, PTQ_SGEMM_NR) : NULL;
      const ptq_sgemm_io io{x + grp * cpg, cin, y + grp * n, cout, relu, 1};  // 1x1: bias first (oneDNN)
      plan->gemm(&wg, &io, p_begin, p_end, nb_begin, nb_end < nb ? nb_end : nb);
    }
    return;
  }
  // Blocks of at most mb rows, split evenly (49 rows in blocks of 24: 24 + 24 + 1 streamed the
  // weights a third time for one row).
  const size_t mb = im2col_block(k, n), total = p_end - p_begin, blocks = (total + mb - 1) / mb;
  for (size_t bi = 0, p0 = p_begin; bi < blocks; bi++) {
    const size_t rows = total / blocks + (bi < total % blocks);
    for (size_t grp = 0; grp < groups; grp++) {
      im2col(g, x, h, w, oh, ow, p0, rows, grp, scratch);
      wg.packed_b = plan->packed_b + grp * panel;
      wg.bias = plan->bias ? plan->bias + grp * round_up(n, PTQ_SGEMM_NR) : NULL;
      const ptq_sgemm_io io{scratch, k, y + p0 * cout + grp * n, cout, relu, 0};  // im2col: bias last
      plan->gemm(&wg, &io, 0, rows, nb_begin, nb_end < nb ? nb_end : nb);
    }
    p0 += rows;
  }
}
