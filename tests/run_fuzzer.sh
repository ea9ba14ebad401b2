#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Runs the literal parser fuzzer for a bounded time. New inputs go to a scratch folder in the
# build tree; the committed seed corpus is only read.
set -eu
fuzzer=$1 seconds=$2 seeds=$3 scratch=$4
mkdir -p "$scratch"
exec "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=1024 -print_final_stats=1 "$scratch" "$seeds"
