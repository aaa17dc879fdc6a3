// Packed quantized conv2d and its executor (baseline code), shared by the per-op N-API function
// and the whole-model plan. Threaded through the intra-op pool by output rows/pixels.
#ifndef PTQ_QCONV_H_
#define PTQ_QCONV_H_

#include <memory>
#include <vector>

#include "function_ref.h"
#include "packed.h"

namespace ptq {

// Output spatial size; false when the input is smaller than the kernel.
bool QConvOutSize(const PackedQConv& p, size_t h, size_t w, size_t* oh, size_t* ow);

// Called on the computing thread once a tile of the output is final: flat output pixels
// [pix0, pix1) (over the n images), output channels [c0, c1).
using QConvTileFn = FunctionRef<void(size_t pix0, size_t pix1, size_t c0, size_t c1)>;

// y (NHWC [n][oh][ow][cout]) = conv(x (NHWC [n][h][w][cin])), on up to `threads` threads of the
// pool; `after` (optional) runs on each finished tile.
void QConvRun(const PackedQConv& p, const uint8_t* x, size_t n, size_t h, size_t w, uint8_t* y, size_t oh, size_t ow,
              size_t threads, const QConvTileFn* after = nullptr);

// k x k max pooling (stride, symmetric padding) of NHWC quint8 [n][h][w][c] into [n][oh][ow][c],
// output rows in tasks of 8 over up to `threads` threads of the pool.
void QMaxPool2dRun(const uint8_t* x, uint8_t* y, size_t n, size_t h, size_t w, size_t c, size_t k, size_t stride,
                   size_t pad, size_t oh, size_t ow, size_t threads);

}  // namespace ptq

#endif  // PTQ_QCONV_H_
