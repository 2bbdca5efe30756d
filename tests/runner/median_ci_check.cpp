// Test driver for android_app/runner/src/median_ci.cpp, compiled by test_median_ci.py.
// Reads lines "ranks N CONFIDENCE" or "cdf N K" on stdin and answers one line each.
#include <cstdio>
#include <cstring>

#include "median_ci.h"

int main() {
  char command[16];
  while (std::scanf("%15s", command) == 1) {
    if (std::strcmp(command, "ranks") == 0) {
      unsigned long n = 0;
      double confidence = 0;
      if (std::scanf("%lu %lf", &n, &confidence) != 2) return 2;
      const auto ranks = mobilebench::median_interval_ranks(n, confidence);
      if (ranks) {
        std::printf("%lu %zu %zu %.17g\n", n, ranks->lower_rank, ranks->upper_rank, ranks->coverage);
      } else {
        std::printf("%lu none\n", n);
      }
    } else if (std::strcmp(command, "cdf") == 0) {
      unsigned long n = 0, k = 0;
      if (std::scanf("%lu %lu", &n, &k) != 2) return 2;
      std::printf("%.17g\n", mobilebench::binomial_half_cdf(n, k));
    } else {
      return 2;
    }
  }
  return 0;
}
