// Depthwise float32 conv, AVX-512F FMA, direct NHWC: 16 channels per zmm, masked partial blocks.
// - Channel blocks are aligned to x: when C is a multiple of 16 every pixel starts at the same
//   offset mod 64 bytes, so a first partial block up to the next 64-byte boundary makes all later
//   x loads aligned (split loads cost ~1.6x here, and JS typed arrays are rarely 64-byte aligned).
// - 3x3 kernels with stride 1 or 2 (unit dilation along x): interior pixels go 4 (then 2, 1) at a
//   time, all channel blocks of those pixels in turn; each input pixel of a kernel row is loaded
//   once and fed to every (output, tap) pair using it.
// - Other interior pixels go 4 at a time sharing each weight load; border pixels (and rows) sum
//   only their valid taps, 4 channel blocks at a time.
// Each output is an FMA chain over its valid taps in (ky, kx) order starting from the bias, the
// order oneDNN's depthwise conv uses in PyTorch 1.13 (so calibration sees identical activations).
// Compiled with the avx512vnni level's flags only; internal linkage but for the extern "C" entry.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernels.h"

namespace {

constexpr size_t kLanes = 16;

struct Row {
  const float* x;   // image b
  size_t c, cp, w;
  size_t kw, sw, pw, dw;
  size_t ky0, ky1;  // valid kernel rows
  ptrdiff_t iy0;    // input row of ky = 0
  size_t dh;
  const float* wt;
  const float* bias;
  bool relu;
  float* y;         // output row
  size_t peel;      // width of the first channel block (aligns x), 0 = none
};

inline __mmask16 lane_mask(size_t lanes) {
  return lanes >= kLanes ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << lanes) - 1);
}

// Width of the channel block starting at cb.
inline size_t block_width(const Row& r, size_t cb) {
  if (cb == 0 && r.peel) return r.peel;
  return r.c - cb < kLanes ? r.c - cb : kLanes;
}

inline __m512 init(const Row& r, size_t cb) {
  return r.bias ? _mm512_loadu_ps(r.bias + cb) : _mm512_setzero_ps();  // padded, + slack
}

inline __m512 finish(const Row& r, __m512 acc, size_t) {
  if (r.relu) acc = _mm512_max_ps(_mm512_setzero_ps(), acc);        // NaN and -0 pass through
  return acc;
}

// Valid taps [lo, hi) of a kernel axis whose tap t reads input index i0 + t*d in [0, size).
inline void tap_range(ptrdiff_t i0, size_t d, size_t taps, size_t size, size_t* lo, size_t* hi) {
  size_t a = 0;
  if (i0 < 0) a = (static_cast<size_t>(-i0) + d - 1) / d;
  size_t b = 0;
  if (i0 < static_cast<ptrdiff_t>(size)) b = (static_cast<size_t>(static_cast<ptrdiff_t>(size) - 1 - i0)) / d + 1;
  if (b > taps) b = taps;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}

// Channels [c0, c1) of one output pixel, valid taps only, 4 blocks at a time (independent chains).
void pixel_channels(const Row& r, size_t ox, ptrdiff_t ix0, size_t kx0, size_t kx1, size_t c0, size_t c1) {
  for (size_t cb = c0; cb < c1; cb += 4 * kLanes) {
    const size_t left = c1 - cb, nq = left >= 4 * kLanes ? 4 : (left + kLanes - 1) / kLanes;
    __mmask16 m[4];
    __m512 acc[4];
#pragma GCC unroll 4
    for (size_t q = 0; q < 4; q++) {
      m[q] = q < nq ? lane_mask(left - q * kLanes) : 0;
      acc[q] = q < nq ? init(r, cb + q * kLanes) : _mm512_setzero_ps();  // no bias read past the blocks
    }
    for (size_t ky = r.ky0; ky < r.ky1; ky++) {
      const float* xr = r.x + static_cast<size_t>(r.iy0 + static_cast<ptrdiff_t>(ky * r.dh)) * r.w * r.c + cb;
      const float* wr = r.wt + ky * r.kw * r.cp + cb;
      for (size_t kx = kx0; kx < kx1; kx++) {
        const float* xp = xr + static_cast<size_t>(ix0 + static_cast<ptrdiff_t>(kx * r.dw)) * r.c;
        const float* wp = wr + kx * r.cp;
#pragma GCC unroll 4
        for (size_t q = 0; q < 4; q++)
          if (q < nq)
            acc[q] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m[q], xp + q * kLanes),
                                     _mm512_loadu_ps(wp + q * kLanes), acc[q]);
      }
    }
#pragma GCC unroll 4
    for (size_t q = 0; q < 4; q++)
      if (q < nq) _mm512_mask_storeu_ps(r.y + ox * r.c + cb + q * kLanes, m[q], finish(r, acc[q], cb + q * kLanes));
  }
}

void pixel(const Row& r, size_t ox) {
  const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ox * r.sw) - static_cast<ptrdiff_t>(r.pw);
  size_t kx0, kx1;
  tap_range(ix0, r.dw, r.kw, r.w, &kx0, &kx1);
  if (r.peel) pixel_channels(r, ox, ix0, kx0, kx1, 0, r.peel);
  pixel_channels(r, ox, ix0, kx0, kx1, r.peel, r.c);
}

// Four consecutive interior output pixels (all kx taps valid), any kernel.
void pixels4(const Row& r, size_t ox) {
  const size_t ix0 = ox * r.sw - r.pw, step = r.sw * r.c;
  for (size_t cb = 0, width; cb < r.c; cb += width) {
    width = block_width(r, cb);
    const __mmask16 m = lane_mask(width);
    __m512 a0 = init(r, cb), a1 = a0, a2 = a0, a3 = a0;
    for (size_t ky = r.ky0; ky < r.ky1; ky++) {
      const float* xr = r.x + static_cast<size_t>(r.iy0 + static_cast<ptrdiff_t>(ky * r.dh)) * r.w * r.c + ix0 * r.c + cb;
      const float* wr = r.wt + ky * r.kw * r.cp + cb;
      for (size_t kx = 0; kx < r.kw; kx++) {
        const __m512 wv = _mm512_loadu_ps(wr + kx * r.cp);
        const float* xp = xr + kx * r.dw * r.c;
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xp), wv, a0);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xp + step), wv, a1);
        a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xp + 2 * step), wv, a2);
        a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xp + 3 * step), wv, a3);
      }
    }
    float* yp = r.y + ox * r.c + cb;
    _mm512_mask_storeu_ps(yp, m, finish(r, a0, cb));
    _mm512_mask_storeu_ps(yp + r.c, m, finish(r, a1, cb));
    _mm512_mask_storeu_ps(yp + 2 * r.c, m, finish(r, a2, cb));
    _mm512_mask_storeu_ps(yp + 3 * r.c, m, finish(r, a3, cb));
  }
}

// 3x3, stride S, unit dilation along x: Q interior pixels at a time from ox = lo while ox+Q <= hi,
// every channel block of those pixels before the next Q: the row is read and written as one
// sequential stream (block by block over the whole row, each pass touched every C/16-th cache
// line, and a 32-channel 112x112 layer ran 1.4x slower from L2/L3). Returns where it stopped.
template <int S, int Q>
size_t group3x3(const Row& r, size_t lo, size_t hi) {
  constexpr int kSpan = (Q - 1) * S + 3;  // input pixels of a kernel row the Q outputs read
  const bool valid[3] = {r.ky0 <= 0 && 0 < r.ky1, r.ky0 <= 1 && 1 < r.ky1, r.ky0 <= 2 && 2 < r.ky1};
  const ptrdiff_t rstride = static_cast<ptrdiff_t>(r.dh * r.w * r.c);
  // Kernel row 0 (may lie outside the image: only valid rows are read).
  const float* x0 = r.x + r.iy0 * static_cast<ptrdiff_t>(r.w * r.c);
  size_t ox = lo;
  for (; ox + Q <= hi; ox += Q) {
    const float* xp = x0 + (ox * S - r.pw) * r.c;
    float* yp = r.y + ox * r.c;
    for (size_t cb = 0, width; cb < r.c; cb += width) {
      width = block_width(r, cb);
      const __mmask16 m = lane_mask(width);
      const float* wb = r.wt + cb;
      __m512 acc[Q];
#pragma GCC unroll 8
      for (int j = 0; j < Q; j++) acc[j] = init(r, cb);
#pragma GCC unroll 3
      for (int ky = 0; ky < 3; ky++) {
        if (!valid[ky]) continue;
        const float* q = xp + ky * rstride + cb;
        const float* wk = wb + ky * 3 * r.cp;
        const __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + r.cp), w2 = _mm512_loadu_ps(wk + 2 * r.cp);
#pragma GCC unroll 17
        for (int i = 0; i < kSpan; i++, q += r.c) {
          // Opaque pointer bump: otherwise GCC precomputes all kSpan offsets (i * c), runs out of
          // registers and reloads them from the stack before every load (2x slower here).
          asm("" : "+r"(q));
          const __m512 v = _mm512_maskz_loadu_ps(m, q);
#pragma GCC unroll 8
          for (int j = 0; j < Q; j++) {
            const int kx = i - j * S;  // increasing in i: each output sums kx = 0, 1, 2 in order
            if (kx >= 0 && kx < 3) acc[j] = _mm512_fmadd_ps(v, kx == 0 ? w0 : kx == 1 ? w1 : w2, acc[j]);
          }
        }
      }
#pragma GCC unroll 8
      for (int j = 0; j < Q; j++) _mm512_mask_storeu_ps(yp + j * r.c + cb, m, finish(r, acc[j], cb));
    }
  }
  return ox;
}

// Interior pixels [lo, hi) of a 3x3 row, all of them (4, then 2, then 1 at a time).
template <int S>
size_t row3x3(const Row& r, size_t lo, size_t hi) {
  size_t ox = group3x3<S, 4>(r, lo, hi);
  ox = group3x3<S, 2>(r, ox, hi);
  return group3x3<S, 1>(r, ox, hi);
}

}  // namespace

extern "C" void ptq_dwconv_f32_avx512vnni(const ptq_dwconv_weights* w, const ptq_dwconv_io* io,
                                          size_t row_begin, size_t row_end) {
  Row r;
  r.c = w->channels;
  r.cp = (r.c + PTQ_SGEMM_NR - 1) / PTQ_SGEMM_NR * PTQ_SGEMM_NR;
  r.w = io->w;
  r.kw = w->kernel_w;
  r.sw = w->stride_w;
  r.pw = w->pad_w;
  r.dw = w->dilation_w;
  r.dh = w->dilation_h;
  r.wt = w->packed_w;
  r.bias = w->bias;
  r.relu = io->relu != 0;
  r.peel = 0;
  const uintptr_t mis = reinterpret_cast<uintptr_t>(io->x) % 64;
  if (r.c % kLanes == 0 && mis % sizeof(float) == 0 && mis != 0) r.peel = (64 - mis) / sizeof(float);
  const size_t oh = io->oh, ow = io->ow, h = io->h;
  // Interior columns: ox*sw - pw >= 0 and ox*sw - pw + (kw-1)*dw <= w-1.
  size_t in_lo = (r.pw + r.sw - 1) / r.sw, in_hi = 0;
  const ptrdiff_t last = static_cast<ptrdiff_t>(r.w) - 1 + static_cast<ptrdiff_t>(r.pw) -
                         static_cast<ptrdiff_t>((r.kw - 1) * r.dw);
  if (last >= 0) in_hi = static_cast<size_t>(last) / r.sw + 1;
  if (in_hi > ow) in_hi = ow;
  if (in_lo > in_hi) in_lo = in_hi;
  const bool k3x3 = w->kernel_h == 3 && w->kernel_w == 3 && r.dw == 1 && r.sw <= 2;
  for (size_t row = row_begin; row < row_end; row++) {
    const size_t b = row / oh, oy = row % oh;
    r.x = io->x + b * h * r.w * r.c;
    r.y = io->y + row * ow * r.c;
    r.iy0 = static_cast<ptrdiff_t>(oy * w->stride_h) - static_cast<ptrdiff_t>(w->pad_h);
    tap_range(r.iy0, r.dh, w->kernel_h, h, &r.ky0, &r.ky1);
    size_t ox = 0;
    for (; ox < in_lo; ox++) pixel(r, ox);
    if (k3x3) ox = r.sw == 1 ? row3x3<1>(r, in_lo, in_hi) : row3x3<2>(r, in_lo, in_hi);
    for (; ox + 4 <= in_hi; ox += 4) pixels4(r, ox);
    for (; ox < ow; ox++) pixel(r, ox);
  }
}
