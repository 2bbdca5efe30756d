#include "median_ci.h"

#include <algorithm>
#include <cmath>

namespace mobilebench {
namespace {

double log_binomial_half_pmf(size_t n, size_t j) {
  const double nd = static_cast<double>(n), jd = static_cast<double>(j);
  return std::lgamma(nd + 1) - std::lgamma(jd + 1) - std::lgamma(nd - jd + 1) -
         nd * std::log(2.0);
}

}  // namespace

double binomial_half_cdf(size_t n, size_t k) {
  if (k >= n) return 1.0;
  // By symmetry P(B <= k) = 1 - P(B <= n-k-1); sum the short tail so terms shrink as we go.
  if (2 * k >= n) return 1.0 - binomial_half_cdf(n, n - k - 1);
  // Walk j = k, k-1, ..., 0 with pmf(j-1) = pmf(j) * j / (n - j + 1); below the median the
  // ratio is < 1, so the terms fall geometrically once past ~sqrt(n) of them.
  double term = std::exp(log_binomial_half_pmf(n, k));
  double sum = 0.0;
  for (size_t j = k;; --j) {
    sum += term;
    if (j == 0 || term < sum * 1e-17) break;
    term *= static_cast<double>(j) / static_cast<double>(n - j + 1);
  }
  return std::min(sum, 1.0);
}

std::optional<MedianInterval> median_interval_ranks(size_t n, double confidence) {
  if (n == 0) return std::nullopt;
  const auto coverage_of = [n](size_t k) { return 1.0 - 2.0 * binomial_half_cdf(n, k - 1); };
  if (coverage_of(1) < confidence) return std::nullopt;
  // Start a little below the normal approximation k ~ n/2 - 0.98*sqrt(n) (95%), so a few
  // steps up find the exact answer; the downward walk covers higher confidences.
  const double guess = static_cast<double>(n) / 2.0 - 1.5 * std::sqrt(static_cast<double>(n));
  size_t k = guess < 1.0 ? 1 : static_cast<size_t>(guess);
  k = std::min(k, (n + 1) / 2);
  while (k > 1 && coverage_of(k) < confidence) --k;
  while (k + 1 <= (n + 1) / 2 && coverage_of(k + 1) >= confidence) ++k;
  MedianInterval interval;
  interval.lower_rank = k;
  interval.upper_rank = n + 1 - k;
  interval.coverage = coverage_of(k);
  return interval;
}

SampleSummary summarize_sorted(const std::vector<double>& sorted, double confidence) {
  SampleSummary s;
  s.count = sorted.size();
  if (sorted.empty()) return s;
  const size_t n = sorted.size();
  s.min = sorted.front();
  s.max = sorted.back();
  s.median = (n % 2 == 1) ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  double total = 0.0;
  for (double x : sorted) total += x;
  s.mean = total / static_cast<double>(n);
  double squares = 0.0;
  for (double x : sorted) squares += (x - s.mean) * (x - s.mean);
  s.stddev = n > 1 ? std::sqrt(squares / static_cast<double>(n - 1)) : 0.0;
  if (const auto ranks = median_interval_ranks(n, confidence)) {
    s.has_ci = true;
    s.ci_low = sorted[ranks->lower_rank - 1];
    s.ci_high = sorted[ranks->upper_rank - 1];
    s.ci_coverage = ranks->coverage;
    s.ci_rel_halfwidth =
        s.median > 0 ? std::max(s.median - s.ci_low, s.ci_high - s.median) / s.median : INFINITY;
  }
  return s;
}

bool ci_within(const SampleSummary& summary, double rel_target) {
  return summary.has_ci && summary.ci_rel_halfwidth <= rel_target;
}

}  // namespace mobilebench
