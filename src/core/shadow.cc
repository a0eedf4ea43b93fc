#include "core/shadow.h"

#include <cmath>
#include <cstring>
#include <random>

#include "core/float16.h"

namespace berth {
namespace {

// The floating-point elements of `t` as doubles; empty for other datatypes.
bool FloatValues(const Tensor& t, std::vector<double>* out) {
  const auto& b = t.bytes();
  switch (t.datatype()) {
    case DataType::kFp32: {
      out->resize(b.size() / sizeof(float));
      for (size_t i = 0; i < out->size(); ++i) {
        float v;
        std::memcpy(&v, b.data() + i * sizeof(float), sizeof(float));
        (*out)[i] = v;
      }
      return true;
    }
    case DataType::kFp64: {
      out->resize(b.size() / sizeof(double));
      std::memcpy(out->data(), b.data(), out->size() * sizeof(double));
      return true;
    }
    case DataType::kFp16: {
      out->resize(b.size() / sizeof(uint16_t));
      for (size_t i = 0; i < out->size(); ++i) {
        uint16_t h;
        std::memcpy(&h, b.data() + i * sizeof(uint16_t), sizeof(uint16_t));
        (*out)[i] = HalfToFloat(h);
      }
      return true;
    }
    default: return false;
  }
}

}  // namespace

ShadowComparison CompareOutputs(const InferenceResponse& live, const InferenceResponse& shadow) {
  ShadowComparison out;
  std::vector<double> a, b;
  for (const Tensor& l : live.outputs) {
    const Tensor* s = nullptr;
    for (const Tensor& candidate : shadow.outputs) {
      if (candidate.name() == l.name()) s = &candidate;
    }
    if (s == nullptr || s->datatype() != l.datatype() || s->shape() != l.shape()) {
      out.agree = false;
      continue;
    }
    if (FloatValues(l, &a) && FloatValues(*s, &b) && a.size() == b.size()) {
      for (size_t i = 0; i < a.size(); ++i) {
        const double d = std::fabs(a[i] - b[i]);
        if (std::isnan(d) || d > 1e-5 * std::max(1.0, std::fabs(a[i]))) out.agree = false;
        if (!std::isnan(d)) out.abs_difference_sum += d;
      }
      out.float_elements += a.size();
      continue;
    }
    if (l.bytes() != s->bytes() || l.strings() != s->strings()) out.agree = false;
  }
  return out;
}

bool ShadowDraw(int percent) {
  if (percent <= 0) return false;
  if (percent >= 100) return true;
  thread_local std::mt19937 random{std::random_device{}()};
  return static_cast<int>(random() % 100) < percent;
}

}  // namespace berth
