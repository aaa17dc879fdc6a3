// Quantized ops beyond the GEMM: C declarations and POD structs only (see kernels.h for why).
#ifndef PTQ_QOPS_H_
#define PTQ_QOPS_H_

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

// Depthwise conv over NHWC quint8 (groups == in == out channels), any kernel/stride/pad/dilation.
// Weights [kh][kw][c] int8. Padding reads as the input zero point. Epilogue as in kernels.h.
typedef struct {
  size_t c, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
  uint8_t input_zero_point;
  const int8_t* w;           // [kh*kw][c]
  const int32_t* acc_init;   // [c]
  const float* bias;         // [c]
  const float* multiplier;   // [c]
  int32_t out_zero_point, out_min, out_max;
} ptq_qdwconv_params;

// Rows [oy_begin, oy_end) of image b. Reentrant (no state), so disjoint row ranges may run on
// different threads. The SIMD kernels rearrange the weights on the stack once per call (~30 KB).
typedef void (*ptq_qdwconv_fn)(const ptq_qdwconv_params* p, const uint8_t* x, size_t h, size_t w, uint8_t* y,
                               size_t oh, size_t ow, size_t b, size_t oy_begin, size_t oy_end);
void ptq_qdwconv_u8s8_scalar(const ptq_qdwconv_params* p, const uint8_t* x, size_t h, size_t w,
                             uint8_t* y, size_t oh, size_t ow, size_t b, size_t oy_begin, size_t oy_end);
void ptq_qdwconv_u8s8_avx2(const ptq_qdwconv_params* p, const uint8_t* x, size_t h, size_t w,
                           uint8_t* y, size_t oh, size_t ow, size_t b, size_t oy_begin, size_t oy_end);
void ptq_qdwconv_u8s8_avx512vnni(const ptq_qdwconv_params* p, const uint8_t* x, size_t h, size_t w,
                                 uint8_t* y, size_t oh, size_t ow, size_t b, size_t oy_begin, size_t oy_end);

// Element-wise ops, PyTorch 1.13 x86 numerics (numerics.md A.7, A.9), ranges [begin, end).
// The SIMD versions (avx2 also serves avxvnni) are bit-exact with the scalar ones on any range.
typedef void (*ptq_quantize_fn)(const float* x, uint8_t* y, size_t begin, size_t end, float scale, int32_t zp);
typedef void (*ptq_dequantize_fn)(const uint8_t* x, float* y, size_t begin, size_t end, float scale, int32_t zp);
void ptq_quantize_f32_u8_scalar(const float* x, uint8_t* y, size_t begin, size_t end, float scale, int32_t zp);
void ptq_quantize_f32_u8_avx2(const float* x, uint8_t* y, size_t begin, size_t end, float scale, int32_t zp);
void ptq_quantize_f32_u8_avx512vnni(const float* x, uint8_t* y, size_t begin, size_t end, float scale, int32_t zp);
// hw pixels of an NCHW image of 3 channel planes `plane` floats apart -> NHWC bytes, as
// ptq_quantize_f32_u8_* per plane; stream != 0: non-temporal stores (when y is 16-byte aligned)
// for a destination read much later.
void ptq_quantize_nchw3_f32_u8_avx512vnni(const float* x, uint8_t* y, size_t hw, size_t plane, float scale, int32_t zp,
                                          int stream);
void ptq_dequantize_u8_f32_scalar(const uint8_t* x, float* y, size_t begin, size_t end, float scale, int32_t zp);
void ptq_dequantize_u8_f32_avx2(const uint8_t* x, float* y, size_t begin, size_t end, float scale, int32_t zp);
void ptq_dequantize_u8_f32_avx512vnni(const uint8_t* x, float* y, size_t begin, size_t end, float scale, int32_t zp);

typedef struct {
  float a_scale, b_scale, out_scale;
  int32_t a_zero_point, b_zero_point, out_zero_point;
  int32_t relu;
  size_t total;  // elements of the whole tensor (fixes PyTorch's vector/scalar split point)
} ptq_qadd_params;
typedef void (*ptq_qadd_fn)(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t begin, size_t end, const ptq_qadd_params* p);
void ptq_qadd_u8_scalar(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t begin, size_t end, const ptq_qadd_params* p);
void ptq_qadd_u8_avx2(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t begin, size_t end, const ptq_qadd_params* p);
void ptq_qadd_u8_avx512vnni(const uint8_t* a, const uint8_t* b, uint8_t* y, size_t begin, size_t end, const ptq_qadd_params* p);

// Mean over the hw positions of NHWC [n][hw][c] into [n][c], same qparams in and out.
void ptq_qmean_hw_u8_scalar(const uint8_t* x, uint8_t* y, size_t n, size_t hw, size_t c, float scale, int32_t zp);

// adaptive_avg_pool2d to 1x1 over NHWC [n][hw][c]: PyTorch's integer-sum formula.
void ptq_qadaptive_avgpool_u8_scalar(const uint8_t* x, uint8_t* y, size_t n, size_t hw, size_t c, float multiplier,
                                     int32_t in_zp, int32_t out_zp);

// k x k max pooling, stride, symmetric padding over NHWC quint8: output rows [row_begin, row_end)
// of the n * oh rows (row r = image r / oh, oy = r % oh).
void ptq_qmaxpool2d_u8_scalar(const uint8_t* x, uint8_t* y, size_t h, size_t w, size_t c, size_t k,
                              size_t stride, size_t pad, size_t oh, size_t ow, size_t row_begin, size_t row_end);

// Observer statistics: aminmax with NaN detection, and torch.histc's bin counting
// (bin = trunc(float32((x - left) * bins) / width), values in [left, right], last bin inclusive).
void ptq_minmax_f32_scalar(const float* x, size_t n, float* out_min, float* out_max, int32_t* out_nan);
void ptq_histc_counts_f32_scalar(const float* x, size_t n, float left, float right, float width, int32_t bins, int32_t* counts);

// Float32 ops of the float forward pass (NHWC), bit-exact with the TS loops they replace.
#define PTQ_F32_ADD 0
#define PTQ_F32_ADD_RELU 1
#define PTQ_F32_MUL 2
void ptq_binary_f32_scalar(const float* a, const float* b, float* y, size_t n, int32_t op);
// y[p][ch] = x[p][ch] * alpha[ch] + beta[ch], a float32 multiply then add (eval BatchNorm2d), for
// pixels [p_begin, p_end) of c channels.
void ptq_channel_affine_f32_scalar(const float* x, float* y, size_t c, const float* alpha, const float* beta,
                                   size_t p_begin, size_t p_end);
// y = x > 0 ? (x > max ? max : x) : 0 element-wise (NaN gives 0): ReLU and ReLU6.
void ptq_relu_f32_scalar(const float* x, float* y, size_t n, float max);
// y[b][c] = float(double sum over pixels in order / hw).
void ptq_mean_hw_f32_scalar(const float* x, float* y, size_t n, size_t hw, size_t c);
// One image: pixels [p_begin, p_end) of NCHW x -> NHWC y.
void ptq_nchw_to_nhwc_f32_scalar(const float* x, float* y, size_t c, size_t hw, size_t p_begin, size_t p_end);
// k x k max pooling (running max starts at -inf; NaN never replaces it), output rows
// [oy_begin, oy_end) of each of the n images.
void ptq_maxpool2d_f32_scalar(const float* x, float* y, size_t n, size_t h, size_t w, size_t c, size_t k,
                              size_t stride, size_t pad, size_t dilation, size_t oh, size_t ow, size_t oy_begin,
                              size_t oy_end);

#ifdef __cplusplus
}
#endif

#endif  // PTQ_QOPS_H_
