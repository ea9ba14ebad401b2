// SPDX-License-Identifier: LGPL-2.1-or-later
// The emi-actions debug category: what the actions layer does.
#pragma once

#include "common/debug_category.h"

namespace emi {
EMI_DEBUG_CATEGORY(actions_debug, "emi-actions", "emi rules and the engine that fires them")
}  // namespace emi
