#pragma once
// libldns for C++: its common.h defines bool, true and false as macros unless <stdbool.h> came
// first, which breaks the standard library headers included after it. Include ldns through here.
// clang-format off
#include <stdbool.h>
#include <ldns/ldns.h>
// clang-format on
