#pragma once
// The version this binary was built as: the CMake project version, plus `git describe` of the
// source tree when it was configured from a git checkout ("0.1.0 (git 8d7a6c7)").
#include <string_view>

namespace nm {

std::string_view version();

}  // namespace nm
