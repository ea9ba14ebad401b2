// SPDX-License-Identifier: LGPL-2.1-or-later
// The emi-upload debug category: what the actions/upload layer does.
#pragma once

#include "common/debug_category.h"

namespace emi {
EMI_DEBUG_CATEGORY(upload_debug, "emi-upload", "emi upload action: spool and Firehose")
}  // namespace emi
