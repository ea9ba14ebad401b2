// SPDX-License-Identifier: LGPL-2.1-or-later
// The emi-record debug category: what the actions/record layer does.
#pragma once

#include "common/debug_category.h"

namespace emi {
EMI_DEBUG_CATEGORY(record_debug, "emi-record", "emi record action: pre-roll ring and clips")
}  // namespace emi
