// Summary statistics of latency samples and the distribution-free confidence interval of
// their median, which drives the adaptive stopping rule (--target-rel-ci).
//
// The interval is the classic order-statistics (binomial) one: for n samples sorted as
// x(1) <= ... <= x(n), the number of samples below the true median is Binomial(n, 1/2), so
// [x(k), x(n+1-k)] covers the median with probability 1 - 2 * P(B <= k-1), B ~ Bin(n, 1/2).
// We take the largest k >= 1 whose coverage is still >= the requested confidence (0.95):
// the tightest such interval, with coverage reported exactly, not approximated. It assumes
// only independent, identically distributed samples, no normality. For 95% it needs
// n >= 6 (with n = 6 it is [min, max], coverage 1 - 2/64 = 0.969); below that no interval
// exists and the stopping rule cannot be met.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace mobilebench {

struct MedianInterval {
  size_t lower_rank = 0;  // k, 1-based rank of the lower end in the sorted samples
  size_t upper_rank = 0;  // n + 1 - k
  double coverage = 0.0;  // exact: 1 - 2 * P(Bin(n, 1/2) <= k - 1)
};

// P(Bin(n, 1/2) <= k), exact to double precision for any n (terms summed in log space,
// from k downwards until they no longer change the sum).
double binomial_half_cdf(size_t n, size_t k);

// The ranks of the order-statistics interval for the median of n samples at `confidence`,
// or nothing when n is too small for any interval to reach it.
std::optional<MedianInterval> median_interval_ranks(size_t n, double confidence);

struct SampleSummary {
  size_t count = 0;
  double median = 0, mean = 0, min = 0, max = 0, stddev = 0;  // stddev: sample (n - 1)
  bool has_ci = false;
  double ci_low = 0, ci_high = 0, ci_coverage = 0;
  // max(median - ci_low, ci_high - median) / median: the stopping rule's measure.
  double ci_rel_halfwidth = 0;
};

// `sorted` must be in ascending order.
SampleSummary summarize_sorted(const std::vector<double>& sorted, double confidence);

// The stopping rule: the interval exists and both ends lie within +-rel_target * median.
bool ci_within(const SampleSummary& summary, double rel_target);

}  // namespace mobilebench
