// CPU kernels of the fused neuron sequences (IF/LIF, AIA, BPSA, PLIF, MAP-SNN): one forward and one backward per
// family, each looping over T inside.
//
// The sequence [T, N] (N = the elements of one step) is cut into blocks of BLOCK neighbouring elements; a thread
// takes a block and walks it through all T steps with the block's state in a small local array (it stays in L1),
// so every element of x, of the spikes, of what is saved and of the gradients is read or written once.
// The loop over a block's elements is what vectorises. For that it reads and writes through __restrict pointers to
// this step's row of each array (each array is its own tensor; without them the vectoriser needs a run-time alias
// check per pair of arrays and gives up past ten), and it has no select on a flag that is the same for every
// element (such a flag is a template argument, or a mask as in ``fires``).
// Arithmetic follows the step form operation by operation in float32 (built with -ffp-contract=off: no fused
// multiply-add), so spikes and states are bit-identical to it (except where a step takes a transcendental function
// of the state: MAP's SFA pattern and swish filter, see fused_map.py).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <tuple>

namespace {

constexpr int64_t BLOCK = 256;
enum Surrogate : int64_t { RECTANGULAR = 0, SIGMOID = 1, ATAN = 2 };

// exp, log and floor written out so that the compiler vectorises the loops that call them (the C library's are
// calls, one element at a time). exp and log: Cephes' single-precision polynomials, within 2 ulp of the exact
// value; the step form's torch.exp / torch.log round to within 1 ulp, not always to the same float.
inline float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
inline int32_t float_to_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

inline float floor_f(float x) {  // floor for |x| < 2^23 (larger floats are integers already)
  const float t = static_cast<float>(static_cast<int32_t>(x));
  const float f = t > x ? t - 1.0f : t;
  return std::fabs(x) < 8388608.0f ? f : x;
}

inline float exp_f(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest: + 1.5 * 2^23
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  return p * bits_to_float((static_cast<int32_t>(n) + 127) << 23);
}

inline float log_f(float x) {  // x > 0, normal
  const int32_t i = float_to_bits(x);
  int32_t e = ((i >> 23) & 0xff) - 126;
  float m = bits_to_float((i & 0x007fffff) | 0x3f000000);  // x = m 2^e, m in [0.5, 1)
  const bool low = m < 0.707106781186547524f;
  e = low ? e - 1 : e;
  m = low ? (m + m) - 1.0f : m - 1.0f;
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  const float fe = static_cast<float>(e);
  y = y + fe * -2.12194440e-4f;
  y = y - 0.5f * z;
  return (m + y) + fe * 0.693359375f;
}

template <int64_t S>
inline float surrogate_grad(float v, float alpha) {
  if constexpr (S == RECTANGULAR) {
    return std::fabs(v) < alpha / 2.0f ? 1.0f / alpha : 0.0f;
  } else if constexpr (S == SIGMOID) {
    float s = 1.0f / (1.0f + exp_f(-alpha * v));
    return alpha * s * (1.0f - s);
  } else {
    float a = 1.5707963267948966f * alpha * v;
    return alpha / 2.0f / (1.0f + a * a);
  }
}

// strict: u > Vth, else u >= Vth; written with masks, as a select on a flag that is the same for every element
// keeps the loop from vectorising
inline bool fires(float u, float th, bool strict) { return (u > th) | (!strict & (u == th)); }

// dL/du of a hard reset o = H(u - Vth), s = u (1 - o), g the gradient at s (times a leak):
// go sg + g (1 - o) - [not detached] g u sg, in the order of the step form's backward
// (DETACH a template argument: the loop then vectorises, see fires)
template <int64_t S, bool DETACH>
inline float through_reset(float go, float g, float u, float th, bool strict, float alpha) {
  const float sg = surrogate_grad<S>(u - th, alpha);
  const float o = fires(u, th, strict) ? 1.0f : 0.0f;
  const float b = DETACH ? go : go - g * u;
  return (g - g * o) + b * sg;
}

// run(std::integral_constant<int64_t, S>{}) for the surrogate numbered ``surrogate`` (a template argument of the
// backward kernels, so that the choice is made once per call, not per element)
template <typename F>
void dispatch_surrogate(int64_t surrogate, F&& run) {
  if (surrogate == SIGMOID) run(std::integral_constant<int64_t, SIGMOID>{});
  else if (surrogate == ATAN) run(std::integral_constant<int64_t, ATAN>{});
  else run(std::integral_constant<int64_t, RECTANGULAR>{});
}

// run(std::true_type{}) or run(std::false_type{}): a flag as a template argument, so that each loop is compiled
// without the branch (and vectorised)
template <typename F>
void dispatch_bool(bool flag, F&& run) {
  if (flag) run(std::true_type{});
  else run(std::false_type{});
}

inline int64_t steps(const at::Tensor& x) { return x.size(0); }
inline int64_t step_numel(const at::Tensor& x) { return x.size(0) ? x.numel() / x.size(0) : 0; }

template <typename F>
void for_blocks(int64_t n, F&& body) {
  at::parallel_for(0, (n + BLOCK - 1) / BLOCK, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      int64_t j0 = b * BLOCK;
      body(j0, std::min(BLOCK, n - j0));
    }
  });
}

const float* opt_ptr(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() && t->numel() ? t->data_ptr<float>() : nullptr;
}

// the data of ``t``, or of ``fallback`` (same size) where ``t`` is absent: a loop may then read it unconditionally
const float* or_ptr(const std::optional<at::Tensor>& t, const at::Tensor& fallback) {
  const float* p = opt_ptr(t);
  return p ? p : fallback.data_ptr<float>();
}

at::Tensor empty_f32(at::IntArrayRef shape, const at::Tensor& like) {
  return at::empty(shape, like.options().dtype(at::kFloat));
}

// ---- IF / LIF (and AIA's LIF with a per-element input scale) ------------------------------------------------------
constexpr uint8_t SPIKE_BIT = 1, WINDOW_BIT = 2;  // a saved code, as in fused.py
// u_t = s_{t-1} + scale * x_t ; o_t = [u_t > Vth] (strict) or [u_t >= Vth] ; s_t = (leak * u_t) * (1 - o_t)
// saved: u_t as float32, or with save_codes one byte o_t + 2 * [|u_t - Vth| < alpha / 2]
template <bool CODES, bool SCALE>
void lif_forward_impl(const float* xp, const float* s0p, const float* sc, float* op, float* up, uint8_t* cp,
                      float* sTp, int64_t T, int64_t N, float th, float lk, bool strict, float half_window) {
  for_blocks(N, [&](int64_t j0, int64_t n) {
    float s[BLOCK];
    for (int64_t j = 0; j < n; ++j) s[j] = s0p ? s0p[j0 + j] : 0.0f;
    const float* __restrict sc_b = SCALE ? sc + j0 : nullptr;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t base = t * N + j0;
      const float* __restrict xt_p = xp + base;
      float* __restrict o_p = op + base;
      float* __restrict u_p = CODES ? nullptr : up + base;
      uint8_t* __restrict c_p = CODES ? cp + base : nullptr;
      for (int64_t j = 0; j < n; ++j) {
        const float xt = SCALE ? sc_b[j] * xt_p[j] : xt_p[j];
        const float u = s[j] + xt;
        const bool spike = fires(u, th, strict);
        const float o = spike ? 1.0f : 0.0f;
        o_p[j] = o;
        if constexpr (CODES) {  // selects, not shifts: SSE2 has no byte shifts
          const bool window = std::fabs(u - th) < half_window;
          c_p[j] = static_cast<uint8_t>((spike ? SPIKE_BIT : 0) | (window ? WINDOW_BIT : 0));
        } else {
          u_p[j] = u;
        }
        s[j] = (lk * u) * (1.0f - o);
      }
    }
    for (int64_t j = 0; j < n; ++j) sTp[j0 + j] = s[j];
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lif_forward(const at::Tensor& x, const std::optional<at::Tensor>& s0,
                                                           const std::optional<at::Tensor>& scale, double threshold,
                                                           double leak, bool strict, bool save_codes, double alpha) {
  const int64_t T = steps(x), N = step_numel(x);
  at::Tensor out = at::empty(x.sizes(), x.options());
  at::Tensor saved = at::empty(x.sizes(), x.options().dtype(save_codes ? at::kByte : at::kFloat));
  at::Tensor sT = empty_f32(x.sizes().slice(1), x);
  const float* sc = opt_ptr(scale);
  float* up = save_codes ? nullptr : saved.data_ptr<float>();
  uint8_t* cp = save_codes ? saved.data_ptr<uint8_t>() : nullptr;
  dispatch_bool(save_codes, [&](auto CODES) {
    dispatch_bool(sc != nullptr, [&](auto SCALE) {
      lif_forward_impl<decltype(CODES)::value, decltype(SCALE)::value>(
          x.data_ptr<float>(), opt_ptr(s0), sc, out.data_ptr<float>(), up, cp, sT.data_ptr<float>(), T, N,
          static_cast<float>(threshold), static_cast<float>(leak), strict, static_cast<float>(alpha / 2));
    });
  });
  return {out, saved, sT};
}

// dL/du_t = g_o_t * sg + g_s * leak * (1 - o_t) - [not detach_reset] g_s * leak * u_t * sg ; dL/ds_{t-1} = dL/du_t
// dL/dx_t = scale * dL/du_t ; dL/dscale (per element, summed over t) = sum_t x_t * dL/du_t
// ASSOC (AIA's associative gradient, f(x) = x forward and f'(x) = x backward): dL/dx_t = x_t * dL/du_t
template <int64_t S, bool DETACH, bool CODES, bool SCALE, bool SCALE_GRAD, bool ASSOC>
void lif_backward_impl(const float* go, const float* gsT, const float* up, const uint8_t* cp, const float* xp,
                       const float* sc, float* gx, float* gs0, float* gsc, int64_t T, int64_t N, float th, float lk,
                       bool strict, float alpha) {
  const float inv_alpha = 1.0f / alpha;
  for_blocks(N, [&](int64_t j0, int64_t n) {
    float gs[BLOCK], gscale[BLOCK];
    for (int64_t j = 0; j < n; ++j) {
      gs[j] = gsT ? gsT[j0 + j] : 0.0f;
      gscale[j] = 0.0f;
    }
    const float* __restrict sc_b = SCALE ? sc + j0 : nullptr;
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t base = t * N + j0;
      const float* __restrict go_p = go + base;
      const float* __restrict u_p = CODES ? nullptr : up + base;
      const uint8_t* __restrict c_p = CODES ? cp + base : nullptr;
      const float* __restrict x_p = SCALE_GRAD || ASSOC ? xp + base : nullptr;
      float* __restrict gx_p = gx + base;
      for (int64_t j = 0; j < n; ++j) {
        const float g = gs[j] * lk;
        float gu;
        if constexpr (CODES) {
          const uint8_t c = c_p[j];
          const float o = (c & SPIKE_BIT) ? 1.0f : 0.0f, window = (c & WINDOW_BIT) ? 1.0f : 0.0f;
          gu = (g - g * o) + go_p[j] * (window * inv_alpha);
        } else {
          gu = through_reset<S, DETACH>(go_p[j], g, u_p[j], th, strict, alpha);
        }
        if constexpr (SCALE) {
          if constexpr (SCALE_GRAD) gscale[j] += gu * x_p[j];
          gx_p[j] = gu * sc_b[j];
        } else if constexpr (ASSOC) {
          gx_p[j] = gu * x_p[j];
        } else {
          gx_p[j] = gu;
        }
        gs[j] = gu;
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      gs0[j0 + j] = gs[j];
      if constexpr (SCALE_GRAD) gsc[j0 + j] = gscale[j];
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lif_backward(
    const at::Tensor& g_out, const std::optional<at::Tensor>& g_sT, const at::Tensor& saved,
    const std::optional<at::Tensor>& x, const std::optional<at::Tensor>& scale, double threshold, double leak,
    bool strict, bool detach_reset, int64_t surrogate, double alpha, bool need_scale_grad, bool associative) {
  const int64_t T = steps(g_out), N = step_numel(g_out);
  TORCH_CHECK(!associative || (x.has_value() && !scale.has_value()),
              "lif_backward: the associative gradient needs x and no scale");
  at::Tensor g_x = at::empty(g_out.sizes(), g_out.options());
  at::Tensor g_s0 = empty_f32(g_out.sizes().slice(1), g_out);
  const float* sc = opt_ptr(scale);
  at::Tensor g_scale = empty_f32({need_scale_grad && sc ? N : 0}, g_out);
  const bool codes = saved.scalar_type() == at::kByte;
  const float* up = codes ? nullptr : saved.data_ptr<float>();
  const uint8_t* cp = codes ? saved.data_ptr<uint8_t>() : nullptr;
  float* gsc = g_scale.numel() ? g_scale.data_ptr<float>() : nullptr;
  auto run = [&](auto S, auto DETACH, auto CODES, auto SCALE, auto SCALE_GRAD, auto ASSOC) {
    lif_backward_impl<decltype(S)::value, decltype(DETACH)::value, decltype(CODES)::value, decltype(SCALE)::value,
                      decltype(SCALE_GRAD)::value, decltype(ASSOC)::value>(
        g_out.data_ptr<float>(), opt_ptr(g_sT), up, cp, opt_ptr(x), sc, g_x.data_ptr<float>(), g_s0.data_ptr<float>(),
        gsc, T, N, static_cast<float>(threshold), static_cast<float>(leak), strict, static_cast<float>(alpha));
  };
  // how dL/dx_t comes from dL/du_t: as it is, times the scale (and the scale's gradient, or not), or times x_t
  auto with_scale = [&](auto S, auto DETACH, auto CODES) {
    const std::false_type no{};
    if (associative) run(S, DETACH, CODES, no, no, std::true_type{});
    else if (!sc) run(S, DETACH, CODES, no, no, no);
    else dispatch_bool(gsc != nullptr, [&](auto SG) { run(S, DETACH, CODES, std::true_type{}, SG, no); });
  };
  if (codes) {  // codes are saved only with the rectangular surrogate and a detached reset
    with_scale(std::integral_constant<int64_t, RECTANGULAR>{}, std::true_type{}, std::true_type{});
  } else {
    dispatch_surrogate(surrogate, [&](auto S) {
      dispatch_bool(detach_reset, [&](auto DETACH) { with_scale(S, DETACH, std::false_type{}); });
    });
  }
  return {g_x, g_s0, g_scale};
}

// ---- BPSA / BPSA+BPTA ----------------------------------------------------------------------------------------------
// u_t = s_{t-1} + x_t ; o_t = [u_t >= Vth] ; s_t = (decay * u_t) * (1 - o_t) ; saved: u_t
std::tuple<at::Tensor, at::Tensor, at::Tensor> bpsa_forward(const at::Tensor& x, const std::optional<at::Tensor>& s0,
                                                            double threshold, double decay) {
  const int64_t T = steps(x), N = step_numel(x);
  at::Tensor out = at::empty(x.sizes(), x.options());
  at::Tensor saved = empty_f32(x.sizes(), x);
  at::Tensor sT = empty_f32(x.sizes().slice(1), x);
  const float* xp = x.data_ptr<float>();
  const float* s0p = opt_ptr(s0);
  float *op = out.data_ptr<float>(), *up = saved.data_ptr<float>(), *sTp = sT.data_ptr<float>();
  const float th = static_cast<float>(threshold), dc = static_cast<float>(decay);
  for_blocks(N, [&](int64_t j0, int64_t n) {
    float s[BLOCK];
    for (int64_t j = 0; j < n; ++j) s[j] = s0p ? s0p[j0 + j] : 0.0f;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t base = t * N + j0;
      const float* __restrict x_t = xp + base;
      float *__restrict o_t = op + base, *__restrict u_t = up + base;
      for (int64_t j = 0; j < n; ++j) {
        float u = s[j] + x_t[j];
        float o = u >= th ? 1.0f : 0.0f;
        o_t[j] = o;
        u_t[j] = u;
        s[j] = (dc * u) * (1.0f - o);
      }
    }
    for (int64_t j = 0; j < n; ++j) sTp[j0 + j] = s[j];
  });
  return {out, saved, sT};
}

// dL/du_t = g_o_t * o_t / u_t + g_s * decay * ((1 - o_t) + c * o_t / u_t)
std::tuple<at::Tensor, at::Tensor> bpsa_backward(const at::Tensor& g_out, const std::optional<at::Tensor>& g_sT,
                                                 const at::Tensor& saved, double threshold, double decay,
                                                 double residual) {
  const int64_t T = steps(g_out), N = step_numel(g_out);
  at::Tensor g_x = at::empty(g_out.sizes(), g_out.options());
  at::Tensor g_s0 = empty_f32(g_out.sizes().slice(1), g_out);
  const float *go = g_out.data_ptr<float>(), *gsT = opt_ptr(g_sT), *up = saved.data_ptr<float>();
  float *gx = g_x.data_ptr<float>(), *gs0 = g_s0.data_ptr<float>();
  const float th = static_cast<float>(threshold), dc = static_cast<float>(decay), c = static_cast<float>(residual);
  for_blocks(N, [&](int64_t j0, int64_t n) {
    float gs[BLOCK];
    for (int64_t j = 0; j < n; ++j) gs[j] = gsT ? gsT[j0 + j] : 0.0f;
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t base = t * N + j0;
      const float *__restrict u_t = up + base, *__restrict go_t = go + base;
      float* __restrict gx_t = gx + base;
      for (int64_t j = 0; j < n; ++j) {
        float u = u_t[j];
        bool spike = u >= th;
        float inv_u = spike ? 1.0f / u : 0.0f, o = spike ? 1.0f : 0.0f;
        float g = gs[j] * dc;
        float gu = (g - g * o) + (go_t[j] + c * g) * inv_u;
        gx_t[j] = gu;
        gs[j] = gu;
      }
    }
    for (int64_t j = 0; j < n; ++j) gs0[j0 + j] = gs[j];
  });
  return {g_x, g_s0};
}

// ---- PLIF ----------------------------------------------------------------------------------------------------------
// k = 1 / tau, a 0-dim tensor (read here, so that the caller needs no host synchronisation)
// decay_input: h_t = v_{t-1} + k * (x_t - v_{t-1}) ; else h_t = (1 - k) * v_{t-1} + x_t   (k = 1 / tau)
// o_t = [h_t > Vth] (strict) or [h_t >= Vth] ; v_t = h_t * (1 - o_t) ; saved: h_t
template <bool DECAY_INPUT>
void plif_forward_impl(const float* xp, const float* s0p, float* op, float* hp, float* sTp, int64_t T, int64_t N,
                       float kf, float km, float th, bool strict) {
  for_blocks(N, [&](int64_t j0, int64_t n) {
    float v[BLOCK];
    for (int64_t j = 0; j < n; ++j) v[j] = s0p ? s0p[j0 + j] : 0.0f;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t base = t * N + j0;
      const float* __restrict x_p = xp + base;
      float* __restrict o_p = op + base;
      float* __restrict h_p = hp + base;
      for (int64_t j = 0; j < n; ++j) {
        const float h = DECAY_INPUT ? v[j] + kf * (x_p[j] - v[j]) : km * v[j] + x_p[j];
        const float o = fires(h, th, strict) ? 1.0f : 0.0f;
        o_p[j] = o;
        h_p[j] = h;
        v[j] = h * (1.0f - o);
      }
    }
    for (int64_t j = 0; j < n; ++j) sTp[j0 + j] = v[j];
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> plif_forward(const at::Tensor& x, const std::optional<at::Tensor>& s0,
                                                            const at::Tensor& k_tensor, bool decay_input,
                                                            double threshold, bool strict) {
  const float kf = k_tensor.item<float>();
  const int64_t T = steps(x), N = step_numel(x);
  at::Tensor out = at::empty(x.sizes(), x.options());
  at::Tensor saved = empty_f32(x.sizes(), x);
  at::Tensor sT = empty_f32(x.sizes().slice(1), x);
  dispatch_bool(decay_input, [&](auto DI) {
    plif_forward_impl<decltype(DI)::value>(x.data_ptr<float>(), opt_ptr(s0), out.data_ptr<float>(),
                                           saved.data_ptr<float>(), sT.data_ptr<float>(), T, N, kf, 1.0f - kf,
                                           static_cast<float>(threshold), strict);
  });
  return {out, saved, sT};
}

// dL/dh_t = g_o_t * sg + g_v * (1 - o_t) - [not detach_reset] g_v * h_t * sg
// dL/dx_t = k dL/dh_t (decay_input) or dL/dh_t ; dL/dv_{t-1} = (1 - k) dL/dh_t
// dL/dk (per element, summed over t) = sum_t dL/dh_t * (x_t - v_{t-1})  or  - sum_t dL/dh_t * v_{t-1}
template <int64_t S, bool DETACH, bool DECAY_INPUT>
void plif_backward_impl(const float* go, const float* gsT, const float* hp, const float* xp, const float* s0p,
                        float* gx, float* gs0, float* gk, int64_t T, int64_t N, float kf, float km, float th,
                        bool strict, float alpha) {
  for_blocks(N, [&](int64_t j0, int64_t n) {
    float gv[BLOCK], gks[BLOCK], v0[BLOCK];
    for (int64_t j = 0; j < n; ++j) {
      gv[j] = gsT ? gsT[j0 + j] : 0.0f;
      gks[j] = 0.0f;
      v0[j] = s0p ? s0p[j0 + j] : 0.0f;
    }
    // one step; the state entering it is recomputed from the saved h_{t-1}, or is the initial state (FIRST)
    auto step = [&](int64_t t, auto FIRST) {
      const int64_t base = t * N + j0;
      const float* __restrict go_p = go + base;
      const float* __restrict h_p = hp + base;
      const float* __restrict x_p = DECAY_INPUT ? xp + base : nullptr;
      float* __restrict gx_p = gx + base;
      for (int64_t j = 0; j < n; ++j) {
        const float gh = through_reset<S, DETACH>(go_p[j], gv[j], h_p[j], th, strict, alpha);
        float v_prev;
        if constexpr (decltype(FIRST)::value) {
          v_prev = v0[j];
        } else {
          const float hq = h_p[j - N];
          v_prev = fires(hq, th, strict) ? 0.0f : hq;
        }
        if constexpr (DECAY_INPUT) {
          gks[j] += gh * (x_p[j] - v_prev);
          gx_p[j] = gh * kf;
        } else {
          gks[j] -= gh * v_prev;
          gx_p[j] = gh;
        }
        gv[j] = gh * km;
      }
    };
    for (int64_t t = T - 1; t > 0; --t) step(t, std::false_type{});
    if (T > 0) step(0, std::true_type{});
    for (int64_t j = 0; j < n; ++j) {
      gs0[j0 + j] = gv[j];
      gk[j0 + j] = gks[j];
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> plif_backward(
    const at::Tensor& g_out, const std::optional<at::Tensor>& g_sT, const at::Tensor& saved, const at::Tensor& x,
    const std::optional<at::Tensor>& s0, const at::Tensor& k_tensor, bool decay_input, double threshold,
    bool strict, bool detach_reset, int64_t surrogate, double alpha) {
  const float kf = k_tensor.item<float>();
  const int64_t T = steps(g_out), N = step_numel(g_out);
  at::Tensor g_x = at::empty(g_out.sizes(), g_out.options());
  at::Tensor g_s0 = empty_f32(g_out.sizes().slice(1), g_out);
  at::Tensor g_k = empty_f32({N}, g_out);
  dispatch_surrogate(surrogate, [&](auto S) {
    dispatch_bool(detach_reset, [&](auto DETACH) {
      dispatch_bool(decay_input, [&](auto DI) {
        plif_backward_impl<decltype(S)::value, decltype(DETACH)::value, decltype(DI)::value>(
            g_out.data_ptr<float>(), opt_ptr(g_sT), saved.data_ptr<float>(), x.data_ptr<float>(), opt_ptr(s0),
            g_x.data_ptr<float>(), g_s0.data_ptr<float>(), g_k.data_ptr<float>(), T, N, kf, 1.0f - kf,
            static_cast<float>(threshold), strict, static_cast<float>(alpha));
      });
    });
  });
  return {g_x, g_s0, g_k};
}

// ---- MAP-SNN: SSP, linear MSP, MSP with SFA (snn_repro/neurons/map.py) ------------------------------------------
// Per element, with the effective (clamped) Vth v, q and decay d of its neuron given as step-shaped tensors:
//   x' = x * sigmoid(beta * x) (swish filter) or x ; m_t = u_{t-1} + x'
//   n = log(relu(m) / v * (q - 1) + 1) / log q (SFA) or relu(m) / v ; s = floor(n) [m > 0] (SSP: at most 1)
//   reset = v * (q^s - 1) / (q - 1) (SFA), v * s (linear), m * s (SSP) ; u_t = (m - reset) * d
// saved: m_t (float32); everything else of a step is recomputed from it in the backward.
enum MapPattern : int64_t { MAP_SSP = 0, MAP_LINEAR = 1, MAP_SFA = 2 };

inline float swish_gate(float x, float beta) { return 1.0f / (1.0f + exp_f(-(beta * x))); }

// x' = x * swish_gate, and dx'/dx
inline float swish(float x, float beta) { return x * swish_gate(x, beta); }
inline float swish_slope(float x, float beta) {
  const float sig = swish_gate(x, beta);
  return sig + x * beta * sig * (1.0f - sig);
}

// the spike count and the potential it consumes, in the step form's order of operations
template <int64_t P>
inline void map_spikes(float m, float v, float q, float lq, float& s, float& reset) {
  const float active = m > 0.0f ? 1.0f : 0.0f, relu = m > 0.0f ? m : 0.0f;
  if constexpr (P == MAP_SFA) {
    s = floor_f(log_f(relu / v * (q - 1.0f) + 1.0f) / lq) * active;
    reset = v * (exp_f(s * lq) - 1.0f) / (q - 1.0f);  // q^s
  } else if constexpr (P == MAP_LINEAR) {
    s = floor_f(relu / v) * active;
    reset = v * s;
  } else {
    const float f = floor_f(relu / v);
    s = (f < 1.0f ? f : 1.0f) * active;
    reset = m * s;
  }
}

// SSP and linear MSP: one pass over a step's elements (the SFA pattern has its own two, below)
template <int64_t P, bool SWISH>
void map_forward_impl(const float* xp, const float* s0p, const float* vp, const float* qp, const float* lqp,
                      const float* dp, float* op, float* mp, float* sTp, int64_t T, int64_t N, float beta) {
  for_blocks(N, [&](int64_t j0, int64_t n) {
    float u[BLOCK];
    for (int64_t j = 0; j < n; ++j) u[j] = s0p ? s0p[j0 + j] : 0.0f;
    const float *__restrict v_b = vp + j0, *__restrict q_b = qp + j0, *__restrict lq_b = lqp + j0;
    const float* __restrict d_b = dp + j0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t base = t * N + j0;
      const float* __restrict x_t = xp + base;
      float *__restrict o_t = op + base, *__restrict m_t = mp + base;
      for (int64_t j = 0; j < n; ++j) {
        const float m = u[j] + (SWISH ? swish(x_t[j], beta) : x_t[j]);
        float s, reset;
        map_spikes<P>(m, v_b[j], q_b[j], lq_b[j], s, reset);
        o_t[j] = s;
        m_t[j] = m;
        u[j] = (m - reset) * d_b[j];
      }
    }
    for (int64_t j = 0; j < n; ++j) sTp[j0 + j] = u[j];
  });
}

// Backward, g_u the gradient arriving at u_t, straight-through ds/dn = [m > 0]:
//   g_reset = -g_u d ; g_n = [m > 0] (g_s + g_reset dreset/ds)
//   dL/dm = g_u d + g_n dn/dm (+ g_reset s for SSP) = dL/dx' = dL/du_{t-1} ; dL/dx = dL/dx' dx'/dx
//   dL/dv, dL/dq, dL/dd per element, summed over t: g_n dn/dv + g_reset dreset/dv, the same for q, g_u (m - reset)
// (dL/dv and dL/dq only where VQ: they are zero otherwise)
template <int64_t P, bool SWISH, bool VQ>
void map_backward_impl(const float* go, const float* guT, const float* mp, const float* xp, const float* vp,
                       const float* qp, const float* lqp, const float* dp, float* gx, float* gu0, float* gvp,
                       float* gqp, float* gdp, int64_t T, int64_t N, float beta) {
  static_assert(P != MAP_SFA, "SFA: sfa_backward_impl");
  for_blocks(N, [&](int64_t j0, int64_t n) {
    float gu[BLOCK], gv[BLOCK], gd[BLOCK];
    for (int64_t j = 0; j < n; ++j) {
      gu[j] = guT ? guT[j0 + j] : 0.0f;
      gv[j] = gd[j] = 0.0f;
    }
    const float* __restrict v_b = vp + j0;
    const float* __restrict d_b = dp + j0;
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t base = t * N + j0;
      const float *__restrict m_t = mp + base, *__restrict go_t = go + base;
      const float* __restrict x_t = SWISH ? xp + base : nullptr;
      float* __restrict gx_t = gx + base;
      for (int64_t j = 0; j < n; ++j) {
        const float m = m_t[j], v = v_b[j], d = d_b[j];
        float s, reset;
        map_spikes<P>(m, v, 0.0f, 0.0f, s, reset);
        const bool active = m > 0.0f;
        const float relu = active ? m : 0.0f;
        const float g_s = go_t[j];  // read unconditionally: the select below then vectorises
        const float g_reset = -(gu[j] * d);
        gd[j] += gu[j] * (m - reset);
        float gm = gu[j] * d;
        const float gn = active ? g_s + g_reset * (P == MAP_SSP ? m : v) : 0.0f;
        gm += gn / v;
        if constexpr (P == MAP_SSP) gm += g_reset * s;
        if constexpr (VQ) gv[j] += gn * (-relu / (v * v)) + (P == MAP_LINEAR ? g_reset * s : 0.0f);
        gx_t[j] = SWISH ? gm * swish_slope(x_t[j], beta) : gm;
        gu[j] = gm;
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      gu0[j0 + j] = gu[j];
      gvp[j0 + j] = gv[j];
      gqp[j0 + j] = 0.0f;
      gdp[j0 + j] = gd[j];
    }
  });
}

// SFA. The count needs a log and a power per element and step, but an element with relu(m) / v < SFA_QUIET fires
// nothing: there n < 1 by a margin (relative, at least 7e-5 for any q below 1e6) far above the 2 ulp of the log,
// for every q >= 1.001 that the clamp allows; its reset is exactly 0. Most elements of a step are such. So SFA runs
// a step in two passes: every element as if quiet (s = 0, q^s = 1; vectorised, with neither log nor power), then
// the others, gathered into dense rows (so that the full count vectorises too), in full. Every value is the
// one-pass loop's: the same operations in the same order.
constexpr float SFA_QUIET = 0.999f;

inline bool sfa_quiet(float m, float v) { return (m > 0.0f ? m : 0.0f) / v < SFA_QUIET; }

// the indices j < n where quiet[j] is 0, in order; returns how many. Eight flags at a time (quiet has room for a
// multiple of 8, the flags past n set): a word of eight quiet elements costs one test, the others one step each.
inline int64_t not_quiet(uint8_t* quiet, int64_t n, int32_t* list) {
  constexpr uint64_t ONES = 0x0101010101010101ull;
  for (int64_t j = n; j < (n + 7) / 8 * 8; ++j) quiet[j] = 1;
  int64_t count = 0;
  for (int64_t j = 0; j < n; j += 8) {
    uint64_t word;
    std::memcpy(&word, quiet + j, sizeof word);
    for (uint64_t left = ~word & ONES; left; left &= left - 1)
      list[count++] = static_cast<int32_t>(j + __builtin_ctzll(left) / 8);
  }
  return count;
}

template <bool SWISH>
void sfa_forward_impl(const float* xp, const float* s0p, const float* vp, const float* qp, const float* lqp,
                      const float* dp, float* op, float* mp, float* sTp, int64_t T, int64_t N, float beta) {
  for_blocks(N, [&](int64_t j0, int64_t n) {
    float u[BLOCK];
    uint8_t quiet[BLOCK];
    int32_t list[BLOCK];
    float fm[BLOCK], fv[BLOCK], fq[BLOCK], flq[BLOCK], fs[BLOCK], freset[BLOCK];  // the listed elements
    for (int64_t j = 0; j < n; ++j) u[j] = s0p ? s0p[j0 + j] : 0.0f;
    const float *__restrict v_b = vp + j0, *__restrict q_b = qp + j0, *__restrict lq_b = lqp + j0;
    const float* __restrict d_b = dp + j0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t base = t * N + j0;
      const float* __restrict x_t = xp + base;
      float *__restrict o_t = op + base, *__restrict m_t = mp + base;
      for (int64_t j = 0; j < n; ++j) {  // as if quiet: s = 0, reset = 0
        const float m = u[j] + (SWISH ? swish(x_t[j], beta) : x_t[j]);
        quiet[j] = sfa_quiet(m, v_b[j]);
        o_t[j] = 0.0f;
        m_t[j] = m;
        u[j] = m * d_b[j];
      }
      const int64_t count = not_quiet(quiet, n, list);
      for (int64_t k = 0; k < count; ++k) {
        const int64_t j = list[k];
        fm[k] = m_t[j], fv[k] = v_b[j], fq[k] = q_b[j], flq[k] = lq_b[j];
      }
      for (int64_t k = 0; k < count; ++k) map_spikes<MAP_SFA>(fm[k], fv[k], fq[k], flq[k], fs[k], freset[k]);
      for (int64_t k = 0; k < count; ++k) {
        const int64_t j = list[k];
        o_t[j] = fs[k];
        u[j] = (fm[k] - freset[k]) * d_b[j];
      }
    }
    for (int64_t j = 0; j < n; ++j) sTp[j0 + j] = u[j];
  });
}

// SFA's terms of the backward through the count s (qs = q^s), added to dL/dm (gm) and, where VQ, dL/dv and dL/dq
template <bool VQ>
inline void sfa_count_terms(float m, float v, float q, float lq, float s, float qs, float g_s, float g_reset,
                            float& gm, float& gv, float& gq) {
  const bool active = m > 0.0f;
  const float relu = active ? m : 0.0f;
  const float qm1 = q - 1.0f, y = relu / v * qm1 + 1.0f, inv = 1.0f / (y * lq);
  const float gn = active ? g_s + g_reset * (v * qs * lq / qm1) : 0.0f;
  gm += gn * (inv * qm1 / v);
  if constexpr (VQ) {
    gv += gn * (-inv * qm1 * relu / (v * v)) + g_reset * ((qs - 1.0f) / qm1);
    gq += gn * (inv * (relu / v) - log_f(y) / (lq * lq * q)) +
          g_reset * (v * (s * qs / q * qm1 - (qs - 1.0f)) / (qm1 * qm1));
  }
}

template <bool SWISH, bool VQ>
void sfa_backward_impl(const float* go, const float* guT, const float* mp, const float* xp, const float* vp,
                       const float* qp, const float* lqp, const float* dp, float* gx, float* gu0, float* gvp,
                       float* gqp, float* gdp, int64_t T, int64_t N, float beta) {
  for_blocks(N, [&](int64_t j0, int64_t n) {
    float gu[BLOCK], gu_next[BLOCK], gv[BLOCK], gq[BLOCK], gd[BLOCK], slope[BLOCK];
    uint8_t quiet[BLOCK];
    int32_t list[BLOCK];
    float fm[BLOCK], fv[BLOCK], fq[BLOCK], flq[BLOCK], fd[BLOCK], fgu[BLOCK], fgs[BLOCK];  // the listed elements
    for (int64_t j = 0; j < n; ++j) {
      gu[j] = guT ? guT[j0 + j] : 0.0f;
      gv[j] = gq[j] = gd[j] = 0.0f;
    }
    const float *__restrict v_b = vp + j0, *__restrict q_b = qp + j0, *__restrict lq_b = lqp + j0;
    const float* __restrict d_b = dp + j0;
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t base = t * N + j0;
      const float *__restrict m_t = mp + base, *__restrict go_t = go + base;
      const float* __restrict x_t = SWISH ? xp + base : nullptr;
      float* __restrict gx_t = gx + base;
      for (int64_t j = 0; j < n; ++j) {  // as if quiet: s = 0, q^s = 1, reset = 0
        const float m = m_t[j], d = d_b[j];
        const bool is_quiet = sfa_quiet(m, v_b[j]);
        const float g_reset = -(gu[j] * d);
        float gm = gu[j] * d, gv_t = 0.0f, gq_t = 0.0f;
        sfa_count_terms<VQ>(m, v_b[j], q_b[j], lq_b[j], 0.0f, 1.0f, go_t[j], g_reset, gm, gv_t, gq_t);
        // the sums over t take a quiet element's terms here, the others' below
        gd[j] += is_quiet ? gu[j] * m : 0.0f;
        if constexpr (VQ) {
          gv[j] += is_quiet ? gv_t : 0.0f;
          gq[j] += is_quiet ? gq_t : 0.0f;
        }
        if constexpr (SWISH) slope[j] = swish_slope(x_t[j], beta);
        gx_t[j] = SWISH ? gm * slope[j] : gm;
        gu_next[j] = gm;
        quiet[j] = is_quiet;
      }
      const int64_t count = not_quiet(quiet, n, list);
      for (int64_t k = 0; k < count; ++k) {
        const int64_t j = list[k];
        fm[k] = m_t[j], fv[k] = v_b[j], fq[k] = q_b[j], flq[k] = lq_b[j], fd[k] = d_b[j];
        fgu[k] = gu[j], fgs[k] = go_t[j];
      }
      for (int64_t k = 0; k < count; ++k) {  // in full; then fgu holds dL/dm, fd, fv, fq the step's terms
        float s, reset;
        map_spikes<MAP_SFA>(fm[k], fv[k], fq[k], flq[k], s, reset);
        const float g_reset = -(fgu[k] * fd[k]);
        float gm = fgu[k] * fd[k], gv_t = 0.0f, gq_t = 0.0f;
        sfa_count_terms<VQ>(fm[k], fv[k], fq[k], flq[k], s, exp_f(s * flq[k]), fgs[k], g_reset, gm, gv_t, gq_t);
        fd[k] = fgu[k] * (fm[k] - reset);
        fgu[k] = gm, fv[k] = gv_t, fq[k] = gq_t;
      }
      for (int64_t k = 0; k < count; ++k) {
        const int64_t j = list[k];
        gd[j] += fd[k];
        if constexpr (VQ) gv[j] += fv[k], gq[j] += fq[k];
        gx_t[j] = SWISH ? fgu[k] * slope[j] : fgu[k];
        gu_next[j] = fgu[k];
      }
      std::memcpy(gu, gu_next, sizeof(float) * n);
    }
    for (int64_t j = 0; j < n; ++j) {
      gu0[j0 + j] = gu[j];
      gvp[j0 + j] = gv[j];
      gqp[j0 + j] = gq[j];
      gdp[j0 + j] = gd[j];
    }
  });
}

// run(P, swish, vq) with each as a compile-time constant
template <typename F>
void dispatch_map(int64_t pattern, bool swish, bool vq, F&& run) {
  auto with_flags = [&](auto P) {
    auto with_vq = [&](auto S) {
      if (vq) run(P, S, std::true_type{});
      else run(P, S, std::false_type{});
    };
    if (swish) with_vq(std::true_type{});
    else with_vq(std::false_type{});
  };
  if (pattern == MAP_SFA) with_flags(std::integral_constant<int64_t, MAP_SFA>{});
  else if (pattern == MAP_LINEAR) with_flags(std::integral_constant<int64_t, MAP_LINEAR>{});
  else with_flags(std::integral_constant<int64_t, MAP_SSP>{});
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> map_forward(const at::Tensor& x, const std::optional<at::Tensor>& s0,
                                                           const at::Tensor& v_th, const std::optional<at::Tensor>& q,
                                                           const std::optional<at::Tensor>& log_q,
                                                           const at::Tensor& decay, int64_t pattern, bool swish,
                                                           double filter_beta) {
  const int64_t T = steps(x), N = step_numel(x);
  at::Tensor out = at::empty(x.sizes(), x.options());
  at::Tensor saved = empty_f32(x.sizes(), x);
  at::Tensor sT = empty_f32(x.sizes().slice(1), x);
  dispatch_map(pattern, swish, false, [&](auto P, auto S, auto) {
    constexpr int64_t p = decltype(P)::value;
    constexpr bool sw = decltype(S)::value;
    constexpr auto forward = p == MAP_SFA ? sfa_forward_impl<sw> : map_forward_impl<p == MAP_SFA ? MAP_SSP : p, sw>;
    forward(x.data_ptr<float>(), opt_ptr(s0), v_th.data_ptr<float>(), or_ptr(q, v_th), or_ptr(log_q, v_th),
            decay.data_ptr<float>(), out.data_ptr<float>(), saved.data_ptr<float>(), sT.data_ptr<float>(), T, N,
            static_cast<float>(filter_beta));
  });
  return {out, saved, sT};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> map_backward(
    const at::Tensor& g_out, const std::optional<at::Tensor>& g_sT, const at::Tensor& saved,
    const std::optional<at::Tensor>& x, const at::Tensor& v_th, const std::optional<at::Tensor>& q,
    const std::optional<at::Tensor>& log_q, const at::Tensor& decay, int64_t pattern, bool swish,
    double filter_beta, bool need_vq) {
  const int64_t T = steps(g_out), N = step_numel(g_out);
  at::Tensor g_x = at::empty(g_out.sizes(), g_out.options());
  at::Tensor g_s0 = empty_f32(g_out.sizes().slice(1), g_out);
  at::Tensor g_v = empty_f32({N}, g_out), g_q = empty_f32({N}, g_out), g_d = empty_f32({N}, g_out);
  dispatch_map(pattern, swish, need_vq, [&](auto P, auto S, auto VQ) {
    constexpr int64_t p = decltype(P)::value;
    constexpr bool sw = decltype(S)::value, vq = decltype(VQ)::value;
    constexpr auto backward =
        p == MAP_SFA ? sfa_backward_impl<sw, vq> : map_backward_impl<p == MAP_SFA ? MAP_SSP : p, sw, vq>;
    backward(g_out.data_ptr<float>(), opt_ptr(g_sT), saved.data_ptr<float>(), opt_ptr(x), v_th.data_ptr<float>(),
             or_ptr(q, v_th), or_ptr(log_q, v_th), decay.data_ptr<float>(), g_x.data_ptr<float>(),
             g_s0.data_ptr<float>(), g_v.data_ptr<float>(), g_q.data_ptr<float>(), g_d.data_ptr<float>(), T, N,
             static_cast<float>(filter_beta));
  });
  return {g_x, g_s0, g_v, g_q, g_d};
}

}  // namespace

TORCH_LIBRARY(snn_cpu, m) {
  m.def("lif_forward(Tensor x, Tensor? s0, Tensor? scale, float threshold, float leak, bool strict, "
        "bool save_codes, float alpha) -> (Tensor, Tensor, Tensor)");
  m.def("lif_backward(Tensor g_out, Tensor? g_sT, Tensor saved, Tensor? x, Tensor? scale, float threshold, "
        "float leak, bool strict, bool detach_reset, int surrogate, float alpha, bool need_scale_grad, "
        "bool associative) -> (Tensor, Tensor, Tensor)");
  m.def("bpsa_forward(Tensor x, Tensor? s0, float threshold, float decay) -> (Tensor, Tensor, Tensor)");
  m.def("bpsa_backward(Tensor g_out, Tensor? g_sT, Tensor saved, float threshold, float decay, float residual) "
        "-> (Tensor, Tensor)");
  m.def("plif_forward(Tensor x, Tensor? s0, Tensor k, bool decay_input, float threshold, bool strict) "
        "-> (Tensor, Tensor, Tensor)");
  m.def("plif_backward(Tensor g_out, Tensor? g_sT, Tensor saved, Tensor x, Tensor? s0, Tensor k, bool decay_input, "
        "float threshold, bool strict, bool detach_reset, int surrogate, float alpha) "
        "-> (Tensor, Tensor, Tensor)");
  m.def("map_forward(Tensor x, Tensor? s0, Tensor v_th, Tensor? q, Tensor? log_q, Tensor decay, int pattern, "
        "bool swish, float filter_beta) -> (Tensor, Tensor, Tensor)");
  m.def("map_backward(Tensor g_out, Tensor? g_sT, Tensor saved, Tensor? x, Tensor v_th, Tensor? q, Tensor? log_q, "
        "Tensor decay, int pattern, bool swish, float filter_beta, bool need_vq) "
        "-> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(snn_cpu, CPU, m) {
  m.impl("lif_forward", &lif_forward);
  m.impl("lif_backward", &lif_backward);
  m.impl("bpsa_forward", &bpsa_forward);
  m.impl("bpsa_backward", &bpsa_backward);
  m.impl("plif_forward", &plif_forward);
  m.impl("plif_backward", &plif_backward);
  m.impl("map_forward", &map_forward);
  m.impl("map_backward", &map_backward);
}
