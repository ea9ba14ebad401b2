// SPDX-License-Identifier: LGPL-2.1-or-later
// The emi-document debug category: what the document layer does.
#pragma once

#include "common/debug_category.h"

namespace emi {
EMI_DEBUG_CATEGORY(document_debug, "emi-document", "emi frame document: meta, results placement, parsing")
}  // namespace emi
