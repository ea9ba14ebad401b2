// SPDX-License-Identifier: LGPL-2.1-or-later
// The emi-embed debug category: what the embed layer does.
#pragma once

#include "common/debug_category.h"

namespace emi {
EMI_DEBUG_CATEGORY(embed_debug, "emi-embed", "emi embedded Python: interpreter, scripts, frames")
}  // namespace emi
