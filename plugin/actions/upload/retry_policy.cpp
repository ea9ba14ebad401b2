// SPDX-License-Identifier: LGPL-2.1-or-later
#include "actions/upload/retry_policy.h"

#include <algorithm>
#include <cstdint>

namespace emi::aws {

using std::chrono::milliseconds;

Backoff::Backoff(milliseconds first_delay, milliseconds max_delay) : first_delay_(first_delay), max_delay_(max_delay) {}

milliseconds Backoff::after_failure() {
  ++failures_;
  const unsigned doublings = std::min(failures_ - 1, 20u);
  const milliseconds ceiling = std::min(max_delay_, first_delay_ * (std::int64_t{1} << doublings));
  const milliseconds half = ceiling / 2;
  std::uniform_int_distribution<milliseconds::rep> extra(0, (ceiling - half).count());
  return half + milliseconds(extra(random_));
}

void RefusalSearch::refused(std::size_t records) {
  if (limit_ == max_records_) delivered_ = false;  // a new search
  limit_ = std::max<std::size_t>(1, records / 2);
}

RefusalSearch::Verdict RefusalSearch::refused_alone(bool oldest, const std::string& problem) {
  if (delivered_ || (!oldest && !suspect_)) {
    end();
    return Verdict::kGiveUpOnIt;
  }
  if (oldest && !suspect_) {
    limit_ = 1;
    suspect_ = problem;
    return Verdict::kTryTheNextAlone;
  }
  end();
  return Verdict::kTheStreamRefuses;
}

void RefusalSearch::end() {
  limit_ = max_records_;
  delivered_ = false;
  suspect_.reset();
}

}  // namespace emi::aws
