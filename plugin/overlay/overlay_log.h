// SPDX-License-Identifier: LGPL-2.1-or-later
// The emi-overlay debug category: what the overlay layer does.
#pragma once

#include "common/debug_category.h"

namespace emi {
EMI_DEBUG_CATEGORY(overlay_debug, "emi-overlay", "emi overlay scene and drawing")
}  // namespace emi
