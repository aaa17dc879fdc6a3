// Quantized conv2d executor: direct GEMM for 1x1/stride 1, im2col + GEMM otherwise (per group),
// the depthwise kernel for groups == channels. Work is split into tiles over output pixels so
// the intra-op pool can run them in parallel; each worker has its own im2col scratch. Max pooling
// is split over the pool the same way (by output rows).
#include <string.h>

#include "dispatch.h"
#include "qconv.h"
#include "threadpool.h"

namespace ptq {
namespace {

// im2col of image b, group g: rows [oh*ow] of k = kh*kw*cpg bytes in (ky, kx, ic) order;
// taps outside the image read the input zero point, so they add 0 to sum (x - zx) * w.
// Copies one kernel row of taps (contiguous in the input) exactly: short rows as two overlapping
// fixed-size moves, so there is no call, no over-read and no write past the row.
inline void CopySpan(uint8_t* dst, const uint8_t* src, size_t bytes) {
  if (bytes > 32) {
    memcpy(dst, src, bytes);
  } else if (bytes >= 16) {
    memcpy(dst, src, 16);
    memcpy(dst + bytes - 16, src + bytes - 16, 16);
  } else if (bytes >= 8) {
    memcpy(dst, src, 8);
    memcpy(dst + bytes - 8, src + bytes - 8, 8);
  } else if (bytes >= 4) {
    memcpy(dst, src, 4);
    memcpy(dst + bytes - 4, src + bytes - 4, 4);
  } else {
    for (size_t i = 0; i < bytes; i++) dst[i] = src[i];
  }
}

// n spans of `bytes` bytes, from src + i * sstep to dst + i * dstep. The size test is outside
// the loop (GCC did not hoist it out of an inlined CopySpan), and spans of 33-256 bytes (a 3x3
// conv's kernel row of 11-85 channels) are inline 16-byte moves, not a libc call per span.
void CopySpans(uint8_t* dst, size_t dstep, const uint8_t* src, size_t sstep, size_t bytes, size_t n) {
  if (bytes > 256) {
    for (size_t i = 0; i < n; i++, dst += dstep, src += sstep) memcpy(dst, src, bytes);
  } else if (bytes > 32) {
    for (size_t i = 0; i < n; i++, dst += dstep, src += sstep) {
      size_t j = 0;
      for (; j + 16 < bytes; j += 16) memcpy(dst + j, src + j, 16);
      memcpy(dst + bytes - 16, src + bytes - 16, 16);
    }
  } else if (bytes >= 16) {
    for (size_t i = 0; i < n; i++, dst += dstep, src += sstep) {
      memcpy(dst, src, 16);
      memcpy(dst + bytes - 16, src + bytes - 16, 16);
    }
  } else {
    for (size_t i = 0; i < n; i++, dst += dstep, src += sstep) CopySpan(dst, src, bytes);
  }
}

void Im2col(const PackedQConv& p, const uint8_t* x, size_t h, size_t w, size_t b, size_t g, size_t ow,
            size_t pix_begin, size_t pix_end, uint8_t* col) {
  // Everything in locals: stores through uint8_t* may alias any object, so fields of p would be
  // reloaded after every byte written.
  const size_t cin = p.cin, cpg = cin / p.groups, kh = p.kh, kw = p.kw, sh = p.sh, sw = p.sw, dh = p.dh, dw = p.dw;
  const ptrdiff_t ph = static_cast<ptrdiff_t>(p.ph), pw = static_cast<ptrdiff_t>(p.pw);
  const ptrdiff_t ih = static_cast<ptrdiff_t>(h), iw = static_cast<ptrdiff_t>(w);
  const uint8_t zx = p.zx;
  const size_t row_bytes = kw * cpg, pix_bytes = kh * row_bytes;
  const uint8_t* const img = x + b * h * w * cin + g * cpg;
  // With groups 1 and no dilation the kw taps of a kernel row are one contiguous span of input.
  const bool spans = p.groups == 1 && dw == 1;
  // Output columns whose kw taps are all inside the image: [ox_lo, ox_hi).
  const size_t span_w = (kw - 1) * dw;
  size_t ox_lo = (p.pw + sw - 1) / sw, ox_hi = w + p.pw >= span_w + 1 ? (w + p.pw - span_w - 1) / sw + 1 : 0;
  if (ox_hi > ow) ox_hi = ow;
  if (ox_lo > ox_hi) ox_lo = ox_hi;
  // Border taps read the input zero point, so they add 0 to sum (x - zx) * w.
  uint8_t zrow[32];  // zero points to copy short fills from
  memset(zrow, zx, sizeof zrow);
  auto fill = [&](uint8_t* d, size_t bytes) {
    if (bytes <= 32) CopySpan(d, zrow, bytes);
    else memset(d, zx, bytes);
  };
  auto slow = [&](uint8_t* d, ptrdiff_t iy, size_t ox) {
    const bool row_inside = iy >= 0 && iy < ih;
    const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ox * sw) - pw;
    if (!row_inside) {
      fill(d, row_bytes);
      return;
    }
    if (spans) {
      // The taps inside the image are one contiguous span: zero points, one copy, zero points
      // (the 7x7 stem's border columns had taken a call per 3-byte tap: a quarter of its im2col).
      const ptrdiff_t a = ix0 < 0 ? -ix0 : 0, e = iw - ix0 < static_cast<ptrdiff_t>(kw) ? iw - ix0 : static_cast<ptrdiff_t>(kw);
      if (e <= a) {
        fill(d, row_bytes);
        return;
      }
      if (a > 0) fill(d, static_cast<size_t>(a) * cpg);
      CopySpan(d + a * cpg, img + (iy * iw + ix0 + a) * static_cast<ptrdiff_t>(cin), static_cast<size_t>(e - a) * cpg);
      if (e < static_cast<ptrdiff_t>(kw)) fill(d + e * cpg, (kw - static_cast<size_t>(e)) * cpg);
      return;
    }
    for (size_t kx = 0; kx < kw; kx++) {
      const ptrdiff_t ix = ix0 + static_cast<ptrdiff_t>(kx * dw);
      // Few channels (a 3-channel stem): inline moves, not a libc call per 3-byte tap.
      if (ix < 0 || ix >= iw) {
        fill(d + kx * cpg, cpg);
      } else {
        CopySpan(d + kx * cpg, img + (iy * iw + ix) * static_cast<ptrdiff_t>(cin), cpg);
      }
    }
  };
  uint8_t* dst = col;
  // One run of pixels within an output row at a time; per kernel row, the interior columns are a
  // tight loop of span copies.
  for (size_t pix = pix_begin; pix < pix_end;) {
    const size_t oy = pix / ow, ox0 = pix % ow;
    const size_t ox1 = ox0 + (pix_end - pix) < ow ? ox0 + (pix_end - pix) : ow;
    const size_t a = ox_lo < ox0 ? ox0 : ox_lo > ox1 ? ox1 : ox_lo;
    const size_t z = ox_hi < a ? a : ox_hi > ox1 ? ox1 : ox_hi;
    for (size_t ky = 0; ky < kh; ky++) {
      const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * sh + ky * dh) - ph;
      uint8_t* d = dst + ky * row_bytes;
      size_t ox = ox0;
      if (spans && iy >= 0 && iy < ih) {
        for (; ox < a; ox++, d += pix_bytes) slow(d, iy, ox);
        const uint8_t* src = img + (iy * iw + static_cast<ptrdiff_t>(a * sw) - pw) * static_cast<ptrdiff_t>(cin);
        const size_t step = sw * cin;
        const size_t nspan = z > ox ? z - ox : 0;
        CopySpans(d, pix_bytes, src, step, row_bytes, nspan);
        ox += nspan;
        d += nspan * pix_bytes;
      }
      for (; ox < ox1; ox++, d += pix_bytes) slow(d, iy, ox);
    }
    dst += (ox1 - ox0) * pix_bytes;
    pix += ox1 - ox0;
  }
}

thread_local std::vector<uint8_t> tls_col;

// Below about 8 us of single-thread work a conv runs on the calling thread (a parallel region
// costs a few us even with spinning workers). Work in GEMM MACs (~250 per ns here); a depthwise
// output (taps MACs plus a float epilogue) costs about as much as kDwOutputMacs GEMM MACs.
constexpr double kMinParallelWork = 2e6;
constexpr double kDwOutputMacs = 48;
constexpr size_t kPixelTile = 96;  // output pixels per task: a multiple of every kernel's MR (6 and 8)

}  // namespace

bool QConvOutSize(const PackedQConv& p, size_t h, size_t w, size_t* oh, size_t* ow) {
  const ptrdiff_t eh = static_cast<ptrdiff_t>(h + 2 * p.ph) - static_cast<ptrdiff_t>(p.dh * (p.kh - 1) + 1);
  const ptrdiff_t ew = static_cast<ptrdiff_t>(w + 2 * p.pw) - static_cast<ptrdiff_t>(p.dw * (p.kw - 1) + 1);
  if (eh < 0 || ew < 0) return false;
  *oh = eh / p.sh + 1;
  *ow = ew / p.sw + 1;
  return true;
}

void QConvRun(const PackedQConv& p, const uint8_t* x, size_t n, size_t h, size_t w, uint8_t* y, size_t oh, size_t ow,
              size_t threads, const QConvTileFn* after) {
  ThreadPool& pool = ThreadPool::Global();
  const double outputs = static_cast<double>(n) * oh * ow * p.cout;
  const double work = p.depthwise ? outputs * kDwOutputMacs : outputs * (p.cin / p.groups) * p.kh * p.kw;
  if (work < kMinParallelWork) threads = 1;
  if (p.depthwise) {
    ptq_qdwconv_params dp{p.cin, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, p.zx, p.dw_w.data(), p.dw_acc.data(),
                          p.dw_bias.data(), p.dw_mult.data(), p.zp, p.lo, p.hi};
    // One call per image on one thread: each call rearranges the weights first.
    const size_t rows_per = threads <= 1 ? oh : oh > 8 ? 4 : 1, chunks = (oh + rows_per - 1) / rows_per;
    const ptq_qdwconv_fn dwconv = QDwConvKernel(p.isa);
    pool.ParallelFor(n * chunks, threads, [&](size_t t, size_t) {
      const size_t b = t / chunks, r0 = (t % chunks) * rows_per, r1 = r0 + rows_per < oh ? r0 + rows_per : oh;
      dwconv(&dp, x, h, w, y, oh, ow, b, r0, r1);
      if (after) (*after)((b * oh + r0) * ow, (b * oh + r1) * ow, 0, p.cout);
    });
    return;
  }
  const size_t opg = p.cout / p.groups, k = p.gemms[0].w.k, nb = (opg + PTQ_GEMM_NR - 1) / PTQ_GEMM_NR;
  const bool direct = p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0 && p.groups == 1;
  if (direct) {
    const size_t m = n * h * w, tiles = (m + kPixelTile - 1) / kPixelTile;
    // Few rows (late layers): split the columns too so both cores have work.
    const ColumnSplit cols(nb, tiles, threads, threads);
    const size_t nsplit = cols.parts;
    const ptq_qgemm_io io{x, p.cin, y, p.cout};
    pool.ParallelFor(tiles * nsplit, threads, [&](size_t t, size_t) {
      const size_t mt = t / nsplit, ns = t % nsplit;
      const size_t m0 = mt * kPixelTile, m1 = m0 + kPixelTile < m ? m0 + kPixelTile : m;
      const size_t b0 = cols.Begin(ns), b1 = cols.End(ns);
      p.kernel(&p.gemms[0].w, &io, m0, m1, b0, b1);
      if (after) (*after)(m0, m1, b0 * PTQ_GEMM_NR, b1 * PTQ_GEMM_NR < p.cout ? b1 * PTQ_GEMM_NR : p.cout);
    });
    return;
  }
  const size_t pix = oh * ow, tiles = (pix + kPixelTile - 1) / kPixelTile, row_tasks = n * p.groups * tiles;
  // Few pixel tiles (late layers: a 7x7 output is one tile) split the output columns too, or one
  // thread would run the whole conv; each column part redoes its tile's im2col (cheap next to the
  // GEMM there).
  const ColumnSplit cols(nb, row_tasks, threads, threads);
  const size_t nsplit = cols.parts;
  pool.ParallelFor(row_tasks * nsplit, threads, [&](size_t t, size_t) {
    const size_t rt = t / nsplit, ns = t % nsplit;
    const size_t b = rt / (p.groups * tiles), g = (rt / tiles) % p.groups, tile = rt % tiles;
    const size_t p0 = tile * kPixelTile, p1 = p0 + kPixelTile < pix ? p0 + kPixelTile : pix;
    std::vector<uint8_t>& col = tls_col;
    if (col.size() < kPixelTile * k) col.resize(kPixelTile * k);
    Im2col(p, x, h, w, b, g, ow, p0, p1, col.data());
    const ptq_qgemm_io io{col.data(), k, y + (b * pix + p0) * p.cout + g * opg, p.cout};
    const size_t b0 = cols.Begin(ns), b1 = cols.End(ns);
    p.kernel(&p.gemms[g].w, &io, 0, p1 - p0, b0, b1);
    if (after) (*after)(b * pix + p0, b * pix + p1, g * opg + b0 * PTQ_GEMM_NR, g * opg + (b1 * PTQ_GEMM_NR < opg ? b1 * PTQ_GEMM_NR : opg));
  });
}

void QMaxPool2dRun(const uint8_t* x, uint8_t* y, size_t n, size_t h, size_t w, size_t c, size_t k, size_t stride,
                   size_t pad, size_t oh, size_t ow, size_t threads) {
  const size_t rows = n * oh, per = 8, tasks = (rows + per - 1) / per;
  ThreadPool::Global().ParallelFor(tasks, threads, [&](size_t t, size_t) {
    ptq_qmaxpool2d_u8_scalar(x, y, h, w, c, k, stride, pad, oh, ow, t * per, (t + 1) * per < rows ? (t + 1) * per : rows);
  });
}

}  // namespace ptq
